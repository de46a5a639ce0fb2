"""The model registry: versions, aliases, signatures and safe (de)serialization."""
