"""Data: reading sources, profiling, schema validation and content-hashed snapshots."""
