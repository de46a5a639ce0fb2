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
    parent_id: str | None = None
    #: the batch files this snapshot reads: [{"id", "key", "sha256", "rows"}]
    batches: list[JsonDict] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A validated batch about to be recorded."""

    origin: str
    verdict: str
    rows_in: int
    rows_stored: int
    rows_quarantined: int
    rows_skipped: int
    report: JsonDict
    artifact_key: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """One ingested batch: its counts (in = stored + quarantined + skipped) and its report."""

    id: str
    dataset: str
    origin: str
    verdict: str
    rows_in: int
    rows_stored: int
    rows_quarantined: int
    rows_skipped: int
    report: JsonDict
    artifact_key: str | None
    sha256: str | None
    created_at: datetime
    snapshot_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewQuarantine:
    """A row (or a whole unreadable or rejected batch) kept aside with why."""

    kind: str
    position: str
    reasons: list[str]
    payload: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    id: int
    dataset: str
    batch_id: str
    kind: str
    position: str
    reasons: list[str]
    payload: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class NewSnapshot:
    """A data set version: the batch files it reads, and the hash over them."""

    content_hash: str
    row_count: int
    columns: JsonDict
    artifact_key: str
    source: str
    batches: list[JsonDict]
    parent_id: str | None = None


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
