"""Metadata stores: datasets, runs, model versions, aliases, deployments and audit events."""

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    AuditEvent,
    Deployment,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Run,
    Snapshot,
)

__all__ = [
    "AuditEvent",
    "Deployment",
    "MetadataStore",
    "ModelVersion",
    "NewModelVersion",
    "RegisteredModel",
    "Run",
    "Snapshot",
]
