"""Evaluation: metrics and the gates a version must pass."""
