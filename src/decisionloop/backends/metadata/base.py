"""The metadata store Protocol: one narrow repository per aggregate.

Every write appends its audit event in the same transaction, so a state change and its record
are never separated, even by a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from decisionloop.backends.metadata.records import (
    AliasEvent,
    AuditEvent,
    Batch,
    Deployment,
    FeatureApplyResult,
    FeatureDefinition,
    FeatureKind,
    JsonDict,
    Materialization,
    MetricPoint,
    ModelVersion,
    NewBatch,
    NewFeatureDefinition,
    NewMaterialization,
    NewModelVersion,
    NewQuarantine,
    NewSnapshot,
    Quarantined,
    RegisteredModel,
    Run,
    RunComparison,
    RunStatus,
    Snapshot,
    StatusChange,
    VersionQuery,
    VersionStatus,
)


class DatasetRepository(Protocol):
    def add_snapshot(
        self,
        dataset: str,
        *,
        content_hash: str,
        row_count: int,
        columns: dict[str, Any],
        artifact_key: str,
        source: str,
        actor: str,
    ) -> Snapshot:
        """Record a snapshot; the same content of the same data set returns the existing one."""
        ...

    def get_snapshot(self, snapshot_id: str) -> Snapshot: ...

    def list_snapshots(self, dataset: str | None = None, limit: int = 100) -> list[Snapshot]: ...


class RunRepository(Protocol):
    """Experiment tracking: a run's inputs (params, data snapshot, feature versions, code and
    environment), its metrics per step, tags, status and timing; trials point at a parent run."""

    def start(
        self,
        model_name: str,
        *,
        params: dict[str, Any],
        tags: dict[str, str],
        snapshot_id: str | None,
        code_version: str | None,
        actor: str,
        parent_run_id: str | None = None,
        environment: JsonDict | None = None,
        feature_versions: JsonDict | None = None,
    ) -> Run: ...

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        metrics: dict[str, float],
        error: str | None = None,
        actor: str,
    ) -> Run:
        """End a running run (once); ``metrics`` are merged over the logged ones."""
        ...

    def get(self, run_id: str) -> Run: ...

    def log_params(self, run_id: str, params: Mapping[str, Any], *, actor: str) -> Run: ...

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float] | Sequence[MetricPoint],
        *,
        step: int = 0,
        actor: str,
    ) -> None:
        """Record values per step in one write; a (key, step) logged again is replaced."""
        ...

    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]: ...

    def set_tags(self, run_id: str, tags: Mapping[str, str], *, actor: str) -> Run: ...

    def compare(self, run_ids: Sequence[str]) -> RunComparison: ...

    def list(
        self,
        model_name: str | None = None,
        limit: int = 100,
        *,
        status: RunStatus | None = None,
        parent_run_id: str | None = None,
    ) -> list[Run]: ...


class ModelRepository(Protocol):
    def register(self, new: NewModelVersion, *, actor: str) -> ModelVersion:
        """Store a new version numbered one past the model's highest, atomically."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def get_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    def list_models(self) -> list[RegisteredModel]: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> None:
        """Point ``alias`` at ``version`` (kept in the alias history); refuses ``champion`` for
        a version that failed gates."""
        ...

    def delete_alias(
        self, name: str, alias: str, *, actor: str, reason: str | None = None
    ) -> None: ...


class LifecycleRepository(Protocol):
    """Where versions stand and stood: lifecycle status and alias history."""

    def set_status(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        *,
        actor: str,
        reason: str | None = None,
    ) -> StatusChange:
        """Move along ``lifecycle.TRANSITIONS``; any other move raises Conflict."""
        ...

    def status_history(self, name: str, version: int) -> list[StatusChange]: ...

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]: ...

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """The version ``name@alias`` pointed at at ``when`` (None: unset or deleted then)."""
        ...


class CatalogRepository(Protocol):
    """Descriptions and tags of models (``version=None``) and versions, and search."""

    def set_description(
        self, name: str, text: str, *, version: int | None = None, actor: str
    ) -> None: ...

    def set_tag(
        self, name: str, key: str, value: str, *, version: int | None = None, actor: str
    ) -> None: ...

    def delete_tag(
        self, name: str, key: str, *, version: int | None = None, actor: str
    ) -> None: ...

    def search_versions(self, query: VersionQuery) -> list[ModelVersion]: ...

    def search_models(
        self,
        *,
        prefix: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> list[RegisteredModel]: ...


class DeploymentRepository(Protocol):
    def create(
        self,
        *,
        environment: str,
        model_name: str,
        version: int,
        strategy: str,
        actor: str,
    ) -> Deployment: ...

    def list(self, environment: str | None = None) -> list[Deployment]: ...


class AuditRepository(Protocol):
    def append(self, *, actor: str, action: str, resource: str, details: dict[str, Any]) -> int: ...

    def list(self, *, resource: str | None = None, limit: int = 100) -> list[AuditEvent]: ...

    def count(self) -> int: ...


class IngestionRepository(Protocol):
    def record_batch(
        self,
        dataset: str,
        batch: NewBatch,
        *,
        quarantined: Sequence[NewQuarantine],
        snapshot: NewSnapshot | None,
        actor: str,
        replayed: Sequence[int] = (),
    ) -> tuple[Batch, Snapshot | None]:
        """Record a batch (in = stored + quarantined + skipped), its quarantine and snapshot."""
        ...

    def get_batch(self, batch_id: str) -> Batch: ...

    def list_batches(self, dataset: str | None = None, limit: int = 100) -> list[Batch]: ...

    def has_origin(self, dataset: str, origin: str) -> bool: ...

    def current_snapshot_id(self, dataset: str) -> str | None: ...

    def quarantined_positions(self, dataset: str, positions: Sequence[str]) -> set[str]: ...

    def list_quarantine(
        self, dataset: str | None = None, *, status: str | None = "open", limit: int = 100
    ) -> list[Quarantined]: ...

    def count_quarantine(
        self, dataset: str | None = None, *, status: str | None = "open"
    ) -> int: ...

    def get_quarantined(self, entry_id: int) -> Quarantined: ...

    def resolve(self, ids: Sequence[int], status: str, resolution: str, *, actor: str) -> int: ...

    def get_checkpoints(self, source: str) -> dict[str, str]:
        """Partition -> position where a stream source resumes (``{}`` for a new source)."""
        ...

    def set_checkpoints(self, source: str, positions: Mapping[str, str], *, actor: str) -> None:
        """Upsert these partitions' positions (others are kept) in one write transaction,
        audited as ``checkpoint.set`` on ``source:<source>``; nothing for an empty mapping."""
        ...


class FeatureRepository(Protocol):
    """Feature store definitions, every version ever applied, and feature view
    materializations."""

    def apply(
        self,
        definitions: Sequence[NewFeatureDefinition],
        *,
        remove: Sequence[tuple[FeatureKind, str]] = (),
        actor: str,
    ) -> FeatureApplyResult:
        """Record the definitions in one transaction: a (kind, name) whose current version equals
        the given one is unchanged; a new (kind, name) is added; another version becomes current
        (the old one stays in history); every (kind, name) in ``remove`` is marked removed. A
        removed definition applied again is added again. Audited per change as ``feature.apply``
        / ``feature.remove`` on resource ``<kind>:<name>`` with the version. Removing a name never
        applied raises NotFound; removing a removed one changes nothing."""
        ...

    def list_definitions(
        self, kind: FeatureKind | None = None, *, include_removed: bool = False
    ) -> list[FeatureDefinition]:
        """The current version of each (kind, name), sorted by kind then name."""
        ...

    def get_definition(
        self, kind: FeatureKind, name: str, version: str | None = None
    ) -> FeatureDefinition:
        """The current version, or the newest entry of ``version`` (removed or not); NotFound
        for an unknown name or version, and without ``version`` for a removed definition."""
        ...

    def definition_history(self, kind: FeatureKind, name: str) -> list[FeatureDefinition]:
        """Every version ever applied, oldest first (A, B, A again: three entries)."""
        ...

    def record_materialization(self, new: NewMaterialization, *, actor: str) -> Materialization:
        """Record a materialization, audited as ``feature.materialize`` on
        ``feature_view:<view>``; its times must be timezone-aware (Invalid otherwise)."""
        ...

    def last_materialization(
        self, view: str, *, view_version: str | None = None
    ) -> Materialization | None:
        """The newest materialization of ``view`` (optionally of one of its versions)."""
        ...

    def list_materializations(
        self, view: str | None = None, limit: int = 100
    ) -> list[Materialization]:
        """Materializations (of one view), newest first."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """Datasets, runs, models, deployments, features and the audit trail, behind one URL."""

    url: str

    @property
    def datasets(self) -> DatasetRepository: ...

    @property
    def runs(self) -> RunRepository: ...

    @property
    def models(self) -> ModelRepository: ...

    @property
    def lifecycle(self) -> LifecycleRepository: ...

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def deployments(self) -> DeploymentRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def ingestion(self) -> IngestionRepository: ...

    @property
    def features(self) -> FeatureRepository: ...

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent, safe from several processes)."""
        ...

    def close(self) -> None: ...
