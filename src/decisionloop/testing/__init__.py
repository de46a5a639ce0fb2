"""Conformance suites and fixtures for users' own tests."""
