"""Artifact stores: content-addressed, hash-verified blobs (local folder, S3)."""

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore, validate_key

__all__ = ["ArtifactInfo", "ArtifactStore", "validate_key"]
