"""Backends: one Protocol per kind, implementations chosen by URL scheme through entry points."""
