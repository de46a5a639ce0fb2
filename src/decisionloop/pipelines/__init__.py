"""Pipelines: the loop as steps."""
