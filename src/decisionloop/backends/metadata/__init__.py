"""Metadata stores: datasets, runs, model versions, aliases, deployments and audit events."""

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    AliasEvent,
    AuditEvent,
    Deployment,
    MetricFilter,
    MetricPoint,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Run,
    RunComparison,
    Snapshot,
    StatusChange,
    VersionQuery,
)

__all__ = [
    "AliasEvent",
    "AuditEvent",
    "Deployment",
    "MetadataStore",
    "MetricFilter",
    "MetricPoint",
    "ModelVersion",
    "NewModelVersion",
    "RegisteredModel",
    "Run",
    "RunComparison",
    "Snapshot",
    "StatusChange",
    "VersionQuery",
]
