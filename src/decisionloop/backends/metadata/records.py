"""The aggregates the metadata store keeps, as frozen records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RunStatus = Literal["running", "finished", "failed"]
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable, content-hashed copy of a data set as ingested."""

    id: str
    dataset: str
    content_hash: str
    row_count: int
    columns: JsonDict
    artifact_key: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One training run: its inputs, outcome and timing."""

    id: str
    model_name: str
    status: RunStatus
    params: JsonDict
    metrics: dict[str, float]
    tags: dict[str, str]
    snapshot_id: str | None
    code_version: str | None
    error: str | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewModelVersion:
    """What registering a version needs; the store allocates the version number."""

    model_name: str
    artifact_key: str
    artifact_sha256: str
    signature: JsonDict
    metrics: dict[str, float]
    params: JsonDict
    gate_passed: bool
    gate_report: JsonDict
    run_id: str | None = None
    snapshot_hash: str | None = None
    code_version: str | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A registered model version and everything needed to trace and load it."""

    model_name: str
    version: int
    run_id: str | None
    artifact_key: str
    artifact_sha256: str
    signature: JsonDict
    metrics: dict[str, float]
    params: JsonDict
    snapshot_hash: str | None
    code_version: str | None
    gate_passed: bool
    gate_report: JsonDict
    created_at: datetime
    aliases: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    aliases: dict[str, int]


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    environment: str
    model_name: str
    version: int
    strategy: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    resource: str
    details: JsonDict
