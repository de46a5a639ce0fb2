"""The aggregates the metadata store keeps, as frozen records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

RunStatus = Literal["running", "finished", "failed"]
#: a model version's lifecycle stage; the allowed moves are in ``lifecycle.TRANSITIONS``
VersionStatus = Literal["candidate", "staging", "production", "archived"]
JsonDict = dict[str, Any]
#: what a feature store definition is
FeatureKind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
FEATURE_KINDS: tuple[FeatureKind, ...] = (
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
)
#: a full materialization rewrites the window; an incremental one continues after the watermark
MaterializationMode = Literal["full", "incremental"]


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
    #: the tuning run this one is a trial of
    parent_run_id: str | None = None
    #: {"python": "3.12.1", "packages": {name: version}, "lock_hash": sha256} when recorded
    environment: JsonDict | None = None
    #: feature name (or feature view) -> the version the run trained on
    feature_versions: JsonDict | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end; ``None`` while the run is running."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of a run's metric at a step (a boosting round, an epoch...)."""

    key: str
    value: float
    step: int = 0
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs side by side: every param and metric key, with each run's value (``None`` if absent)."""

    runs: list[Run]
    params: dict[str, list[Any]]
    metrics: dict[str, list[float | None]]

    @property
    def changed_params(self) -> list[str]:
        """The param keys whose values are not all the same."""
        return [key for key, values in self.params.items() if len({repr(v) for v in values}) > 1]


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
    """A registered model version and everything needed to trace and load it.

    A store may hand over the JSON documents (``signature``, ``metrics``, ``params``,
    ``gate_report``) still encoded: each is decoded the first time it is read (:class:`Encoded`).
    """

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
    status: VersionStatus = "candidate"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class Encoded:
    """A JSON document as the store returned it, decoded the first time its field is read.

    A store passes ``Encoded(text, decode)`` for a :class:`ModelVersion` document field: a
    search returns hundreds of versions whose documents are seldom all read, and decoding
    them is most of the cost. Reading the field returns (and keeps) ``decode(text)``, so every
    record is complete when accessed; equality, ``repr`` and pickling see decoded values."""

    __slots__ = ("decode", "text")

    def __init__(self, text: str, decode: Callable[[str], Any]) -> None:
        self.text = text
        self.decode = decode


class _DecodedOnRead:
    """Wraps a slot of a frozen dataclass: an :class:`Encoded` value is decoded once, on read."""

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.slot.__get__(instance, owner)
        if type(value) is Encoded:
            value = value.decode(value.text)
            self.slot.__set__(instance, value)
        return value

    def __set__(self, instance: object, value: Any) -> None:
        self.slot.__set__(instance, value)

    def __delete__(self, instance: object) -> None:
        self.slot.__delete__(instance)


#: ModelVersion's JSON documents, which a store may hand over still encoded
DEFERRED_FIELDS = ("signature", "metrics", "params", "gate_report")
for _name in DEFERRED_FIELDS:
    setattr(ModelVersion, _name, _DecodedOnRead(ModelVersion.__dict__[_name]))
#: each field's slot setter, in field order
_MODEL_VERSION_SETTERS: tuple[Callable[[object, Any], None], ...] = tuple(
    getattr(ModelVersion.__dict__[f.name], "slot", ModelVersion.__dict__[f.name]).__set__
    for f in fields(ModelVersion)
)


def stored_model_version(*values: Any) -> ModelVersion:
    """``ModelVersion(*values)``, every field in order, for a store building many records:
    it skips the frozen dataclass's ``__init__``, whose ``object.__setattr__`` per field is
    3 of the 5 µs a search spends on each version it returns. Values are taken as given."""
    record = object.__new__(ModelVersion)
    for set_field, value in zip(_MODEL_VERSION_SETTERS, values, strict=True):
        set_field(record, value)
    return record


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    aliases: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AliasEvent:
    """One move of an alias: ``version`` is ``None`` when the alias was deleted."""

    model_name: str
    alias: str
    version: int | None
    previous_version: int | None
    actor: str
    at: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One lifecycle move of a version (``from_status`` is ``None`` for the first record)."""

    model_name: str
    version: int
    from_status: VersionStatus | None
    to_status: VersionStatus
    actor: str
    at: datetime
    reason: str | None


#: how a :class:`MetricFilter` compares
MetricOp = Literal[">", ">=", "<", "<=", "="]


@dataclass(frozen=True, slots=True)
class MetricFilter:
    """``auc>=0.8``: a version's metric compared with a threshold."""

    key: str
    op: MetricOp
    value: float


@dataclass(frozen=True, slots=True)
class VersionQuery:
    """What :meth:`search_versions` matches; every given condition must hold."""

    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    status: VersionStatus | None = None
    metrics: tuple[MetricFilter, ...] = ()
    limit: int = 100


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


@dataclass(frozen=True, slots=True)
class NewFeatureDefinition:
    """A feature store definition about to be applied; ``version`` hashes its ``spec``."""

    kind: FeatureKind
    name: str
    version: str
    spec: JsonDict


@dataclass(frozen=True, slots=True)
class FeatureDefinition:
    """One applied version of a definition (``removed_at`` set once a later apply removed it)."""

    kind: FeatureKind
    name: str
    version: str
    spec: JsonDict
    applied_at: datetime
    applied_by: str
    removed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeatureApplyResult:
    """What one apply did, each list sorted by kind then name (``changed``: the new versions)."""

    added: list[FeatureDefinition]
    changed: list[FeatureDefinition]
    unchanged: list[FeatureDefinition]
    removed: list[FeatureDefinition]


@dataclass(frozen=True, slots=True)
class NewMaterialization:
    """A finished materialization of a feature view's event-time window ``(start, end]``;
    ``view_version`` is whatever version of the view the caller keys materializations by."""

    view: str
    view_version: str
    mode: MaterializationMode
    start: datetime | None
    end: datetime
    #: the newest event time written so far for this view: the next incremental run starts here
    watermark: datetime | None
    rows_read: int
    rows_written: int
    store_url: str
    started_at: datetime
    #: the data set snapshot the rows were read from, when they came from one
    snapshot_id: str | None = None


@dataclass(frozen=True, slots=True)
class Materialization:
    """A recorded materialization of a feature view into a store, with who recorded it when."""

    id: int
    view: str
    view_version: str
    mode: MaterializationMode
    start: datetime | None
    end: datetime
    watermark: datetime | None
    rows_read: int
    rows_written: int
    store_url: str
    started_at: datetime
    finished_at: datetime
    actor: str
    snapshot_id: str | None = None
