"""Platform: the one object every surface (CLI, HTTP, tests) calls. Built from Settings."""

from __future__ import annotations

import getpass
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.config import Settings, load_settings
from decisionloop.errors import GateFailed
from decisionloop.refs import ModelRef

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from decisionloop.backends.artifacts.base import ArtifactStore
    from decisionloop.backends.metadata.base import MetadataStore
    from decisionloop.backends.metadata.records import (
        AliasEvent,
        MetricFilter,
        MetricPoint,
        ModelVersion,
        RegisteredModel,
        Run,
        RunComparison,
        RunStatus,
        StatusChange,
    )
    from decisionloop.data.service import DataService
    from decisionloop.features.online import OnlineFeatures
    from decisionloop.features.store import FeatureStore
    from decisionloop.pipelines.loop import LoopResult
    from decisionloop.pipelines.reproduce import Reproduction
    from decisionloop.registry.bundle import ModelBundle

#: called with (step, message) as long work advances
ProgressCallback = Callable[[str, str], None]
#: called with a proposed lifecycle change before it is written; raises Forbidden to refuse it
ApprovalHook = Callable[["StatusChange"], None]


@dataclass(frozen=True)
class Predictions:
    """Scores and labels (classification) or values (regression) for a batch, with the
    version that produced them."""

    model_name: str
    version: int
    probabilities: np.ndarray
    labels: list[str]
    threshold: float | None
    # regression (training task): the predicted values; probabilities and labels stay empty
    values: np.ndarray | None = None

    def records(self) -> list[dict[str, Any]]:
        if self.values is not None:
            return [{"value": float(v)} for v in self.values]
        return [
            {"probability": float(p), "label": label}
            for p, label in zip(self.probabilities, self.labels, strict=True)
        ]


class Platform:
    """Every DecisionLoop verb for one project; backends are opened lazily and once."""

    def __init__(
        self,
        settings: Settings,
        *,
        actor: str | None = None,
        require_approval: ApprovalHook | None = None,
    ) -> None:
        from decisionloop.backends.metadata.lifecycle import no_approval_required

        self.settings = settings
        self.actor = actor or f"local:{_user()}"
        #: the approval point of lifecycle changes (today: approves everything)
        self.require_approval: ApprovalHook = require_approval or no_approval_required
        self._metadata: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._data: DataService | None = None
        self._datasets: dict[str, DataService] = {}
        self._features: FeatureStore | None = None
        self._models: dict[tuple[str, int, str], ModelBundle] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, project_dir: str | Path | None = None, **overrides: Any) -> Platform:
        """Load the project's Settings (see :func:`load_settings`) and build a Platform."""
        return cls(load_settings(project_dir, **overrides))

    @property
    def metadata(self) -> MetadataStore:
        if self._metadata is None:
            from decisionloop.backends.registry import open_metadata_store

            store = open_metadata_store(self.settings.metadata_url, self.settings)
            store.migrate()
            self._metadata = store
        return self._metadata

    @property
    def data(self) -> DataService:
        """Ingestion, snapshots and the quarantine of this project's data set."""
        if self._data is None:
            from decisionloop.data.service import DataService

            self._data = DataService(self)
        return self._data

    def dataset(self, name: str | None = None) -> DataService:
        """The data verbs of one data set: the project's own (default) or one declared under
        ``datasets``."""
        if name is None or name == self.settings.name:
            return self.data
        if name not in self._datasets:
            from decisionloop.data.service import DataService

            self.settings.dataset_spec(name)  # an undeclared data set is refused here
            self._datasets[name] = DataService(self, name)
        return self._datasets[name]

    @property
    def features(self) -> FeatureStore:
        """The feature store: definitions, training sets, materialization, online features."""
        if self._features is None:
            from decisionloop.features.store import FeatureStore

            self._features = FeatureStore(self)
        return self._features

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            from decisionloop.backends.registry import open_artifact_store

            self._artifacts = open_artifact_store(self.settings.artifacts_url, self.settings)
        return self._artifacts

    # -- the loop -----------------------------------------------------------------------

    def run(self, progress: ProgressCallback | None = None, *, tune: bool = True) -> LoopResult:
        """Ingest, validate, train, evaluate, gate, register and promote: one loop iteration.

        With ``model.tuning`` set, a parameter search comes first (``tune=False`` skips it and
        trains ``model.params`` as given)."""
        from decisionloop.pipelines.loop import run_loop

        return run_loop(self, progress or (lambda step, message: None), tune=tune)

    # -- registry -------------------------------------------------------------------------

    def list_models(self) -> list[RegisteredModel]:
        return self.metadata.models.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.metadata.models.list_versions(name)

    def get_version(self, ref: ModelRef | str) -> ModelVersion:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        alias = ref.resolved_alias()
        if alias is not None:
            return self.metadata.models.get_by_alias(ref.name, alias)
        assert ref.version is not None
        return self.metadata.models.get_version(ref.name, ref.version)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None) -> None:
        """Point ``name@alias`` at a version. ``champion`` is refused (:class:`GateFailed`,
        HTTP 409) for a version whose gate report has a blocking failure: there is no override.
        """
        if alias == "champion":
            target = self.metadata.models.get_version(name, version)
            report = target.gate_report or {}
            if not target.gate_passed or report.get("passed") is False:
                reasons = report.get("blocking_failures") or ["it failed a blocking gate"]
                raise GateFailed(
                    f"{name}/{version} can never be @champion: " + "; ".join(reasons),
                    hint=f"see `decisionloop gates show {name}/{version}`; train a version "
                    "that passes the gates in decisionloop.yaml",
                )
        self.metadata.models.set_alias(name, alias, version, actor=self.actor, reason=reason)

    def gate_report(self, ref: ModelRef | str) -> tuple[ModelVersion, dict[str, Any]]:
        """A version and the gate report stored with it (``passed``, ``blocking_failures``
        and one entry per gate under ``results``; see docs/evaluation.md#gates)."""
        version = self.get_version(ref)
        return version, dict(version.gate_report or {})

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of ``name@alias`` (or of all the model's aliases), oldest first."""
        return self.metadata.lifecycle.alias_history(name, alias)

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """The version ``name@alias`` pointed at at ``when``; None if unset or deleted then."""
        return self.metadata.lifecycle.alias_at(name, alias, when)

    def set_status(
        self, ref: ModelRef | str, status: str, *, reason: str | None = None
    ) -> StatusChange:
        """Move a version along its lifecycle, after :attr:`require_approval` lets it."""
        from decisionloop.backends.metadata.lifecycle import check_transition, parse_status
        from decisionloop.backends.metadata.records import StatusChange

        target = parse_status(status)
        version = self.get_version(ref)
        check_transition(version.model_name, version.version, version.status, target)
        self.require_approval(
            StatusChange(
                version.model_name,
                version.version,
                version.status,
                target,
                self.actor,
                _now(),
                reason,
            )
        )
        return self.metadata.lifecycle.set_status(
            version.model_name, version.version, target, actor=self.actor, reason=reason
        )

    def status_history(self, ref: ModelRef | str) -> list[StatusChange]:
        version = self.get_version(ref)
        return self.metadata.lifecycle.status_history(version.model_name, version.version)

    def set_tag(self, ref: ModelRef | str, key: str, value: str) -> None:
        """Tag the model (``ref`` is a bare name) or a version (``NAME/V`` or ``NAME@ALIAS``)."""
        name, version = self._target(ref)
        self.metadata.catalog.set_tag(name, key, value, version=version, actor=self.actor)

    def delete_tag(self, ref: ModelRef | str, key: str) -> None:
        name, version = self._target(ref)
        self.metadata.catalog.delete_tag(name, key, version=version, actor=self.actor)

    def set_description(self, ref: ModelRef | str, text: str) -> None:
        """Describe the model (``ref`` is a bare name) or a version."""
        name, version = self._target(ref)
        self.metadata.catalog.set_description(name, text, version=version, actor=self.actor)

    def search_versions(
        self,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        metrics: Sequence[MetricFilter | str] = (),
        limit: int = 100,
    ) -> list[ModelVersion]:
        """Versions by model name, tags, status and metric thresholds (``"test_auc>=0.8"``)."""
        from decisionloop.backends.metadata.lifecycle import parse_status
        from decisionloop.backends.metadata.records import VersionQuery
        from decisionloop.refs import parse_metric_filter

        query = VersionQuery(
            name=name,
            tags=dict(tags or {}),
            status=parse_status(status) if status is not None else None,
            metrics=tuple(parse_metric_filter(m) if isinstance(m, str) else m for m in metrics),
            limit=limit,
        )
        return self.metadata.catalog.search_versions(query)

    def search_models(
        self, *, prefix: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[RegisteredModel]:
        return self.metadata.catalog.search_models(prefix=prefix, tags=tags)

    def diff_versions(self, a: ModelRef | str, b: ModelRef | str) -> VersionDiff:
        """What differs between two versions: params, metrics, data, features, signature."""
        first, second = self.get_version(a), self.get_version(b)
        runs: list[Run | None] = []
        for version in (first, second):
            runs.append(self.metadata.runs.get(version.run_id) if version.run_id else None)
        return diff_versions(first, second, runs[0], runs[1])

    def _target(self, ref: ModelRef | str) -> tuple[str, int | None]:
        parsed = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if parsed.alias is None and parsed.version is None:
            return parsed.name, None
        version = self.get_version(parsed)
        return version.model_name, version.version

    @property
    def runs(self) -> Runs:
        """Experiment tracking: start, log, finish, list, get and compare runs."""
        return Runs(self)

    def load_model(self, ref: ModelRef | str) -> tuple[ModelVersion, ModelBundle]:
        """Resolve a reference and load its bundle (hash-verified, cached per version)."""
        from decisionloop.registry.bundle import ModelBundle

        version = self.get_version(ref)
        key = (version.model_name, version.version, version.artifact_sha256)
        with self._lock:
            bundle = self._models.get(key)
        if bundle is None:
            bundle = ModelBundle.load(self.artifacts, version.artifact_key, version.artifact_sha256)
            with self._lock:
                self._models[key] = bundle
        return version, bundle

    def predict_entities(
        self, ref: ModelRef | str, entity_rows: Sequence[Mapping[str, Any]]
    ) -> tuple[Predictions, OnlineFeatures]:
        """Score entities by id: their features come from the online store through the
        feature service the model was trained on (request fields ride along in the rows)."""
        from decisionloop.errors import Invalid

        version, bundle = self.load_model(ref)
        if bundle.features is None:
            raise Invalid(
                f"{version.model_name}/{version.version} was not trained on a feature service, "
                "so it cannot look features up by entity id",
                hint='send its input columns instead: {"instances": [{...}]}',
            )
        online = self.features.get_online_features(bundle.features["service"], entity_rows)
        unknown = online.unknown_entities()
        if unknown:
            from decisionloop.errors import NotFound

            shown = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise NotFound(
                f"no features for {len(unknown)} of {len(entity_rows)} entities ({shown}): "
                "never materialized, or older than their feature view's TTL",
                hint="check the ids, run `decisionloop features materialize`, or send the "
                "input columns themselves",
            )
        missing = [name for name in bundle.preprocessor.input_columns if name not in online.columns]
        if missing:
            raise Invalid(
                f"feature service {bundle.features['service']!r} no longer provides "
                f"{', '.join(missing[:5])}, which {version.model_name}/{version.version} needs",
                hint="restore those features in the service, or retrain the model",
            )
        pinned = ModelRef(version.model_name, version=version.version)
        return self.predict(pinned, online.to_frame()), online

    def predict(self, ref: ModelRef | str, frame: pd.DataFrame) -> Predictions:
        """Score raw rows with the referenced version (default alias ``champion``)."""
        from decisionloop.errors import Invalid

        if len(frame) == 0:
            raise Invalid("no rows to score", hint="send at least one row")
        version, bundle = self.load_model(ref)
        if bundle.task == "regression":  # training task: a regression model predicts values
            import numpy as np

            return Predictions(
                model_name=version.model_name,
                version=version.version,
                probabilities=np.empty(0),
                labels=[],
                threshold=None,
                values=bundle.predict_value(frame),
            )
        proba = bundle.predict_proba(frame)
        return Predictions(
            model_name=version.model_name,
            version=version.version,
            probabilities=proba,
            labels=bundle.labels(proba),
            threshold=bundle.threshold,
        )

    def close(self) -> None:
        if self._features is not None:
            self._features.close()
            self._features = None
        if self._metadata is not None:
            self._metadata.close()
            self._metadata = None

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Runs:
    """``platform.runs``: the run repository with this platform's actor and project filled in."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def start(
        self,
        model_name: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        snapshot_id: str | None = None,
        code_version: str | None = None,
        parent_run_id: str | None = None,
        feature_versions: dict[str, Any] | None = None,
        capture_environment: bool = True,
    ) -> Run:
        """Start a run of ``model_name`` (default: the project's model), recording the Python
        version, package versions and lock hash unless ``capture_environment`` is false."""
        from decisionloop.backends.metadata.environment import capture_environment as capture

        settings = self.platform.settings
        return self.platform.metadata.runs.start(
            model_name or settings.name,
            params=params or {},
            tags=tags or {},
            snapshot_id=snapshot_id,
            code_version=code_version,
            actor=self.platform.actor,
            parent_run_id=parent_run_id,
            environment=capture(settings.project_dir) if capture_environment else None,
            feature_versions=feature_versions,
        )

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> Run:
        return self.platform.metadata.runs.log_params(run_id, params, actor=self.platform.actor)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float] | Sequence[MetricPoint], *, step: int = 0
    ) -> None:
        self.platform.metadata.runs.log_metrics(
            run_id, metrics, step=step, actor=self.platform.actor
        )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> Run:
        return self.platform.metadata.runs.set_tags(run_id, tags, actor=self.platform.actor)

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus = "finished",
        metrics: dict[str, float] | None = None,
        error: str | None = None,
    ) -> Run:
        return self.platform.metadata.runs.finish(
            run_id, status=status, metrics=metrics or {}, error=error, actor=self.platform.actor
        )

    def get(self, run_id: str) -> Run:
        return self.platform.metadata.runs.get(run_id)

    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]:
        return self.platform.metadata.runs.metric_history(run_id, key)

    def compare(self, run_ids: Sequence[str]) -> RunComparison:
        return self.platform.metadata.runs.compare(run_ids)

    def reproduce(
        self,
        run_id: str,
        progress: ProgressCallback | None = None,
        *,
        tolerance: float = 1e-9,
    ) -> Reproduction:
        """Retrain a finished run from its recorded snapshot, parameters, seed and split as a
        new run tagged ``reproduction_of`` (no version is registered); compare its metrics."""
        from decisionloop.pipelines.reproduce import reproduce_run

        return reproduce_run(
            self.platform, run_id, progress or (lambda step, message: None), tolerance=tolerance
        )

    def list(
        self,
        model_name: str | None = None,
        *,
        status: RunStatus | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        return self.platform.metadata.runs.list(
            model_name, limit, status=status, parent_run_id=parent_run_id
        )


@dataclass(frozen=True)
class VersionDiff:
    """Two versions side by side; only what differs is listed (metrics: every key)."""

    a: ModelVersion
    b: ModelVersion
    #: param -> (value in a, value in b), for params that differ
    params: dict[str, tuple[Any, Any]]
    #: metric -> (a, b, b - a), for every metric of either
    metrics: dict[str, tuple[float | None, float | None, float | None]]
    #: (a's, b's) data snapshot hash, or None when the same
    snapshot: tuple[str | None, str | None] | None
    features_added: list[str]
    features_removed: list[str]
    #: feature -> (a's version, b's version), from the runs, for those that differ
    feature_versions: dict[str, tuple[Any, Any]]
    #: signature keys (inputs aside) whose values differ, e.g. threshold or classes
    signature_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def same_data(self) -> bool:
        return self.snapshot is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": f"{self.a.model_name}/{self.a.version}",
            "b": f"{self.b.model_name}/{self.b.version}",
            "params": {k: list(v) for k, v in self.params.items()},
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "snapshot": list(self.snapshot) if self.snapshot else None,
            "features_added": self.features_added,
            "features_removed": self.features_removed,
            "feature_versions": {k: list(v) for k, v in self.feature_versions.items()},
            "signature_changes": {k: list(v) for k, v in self.signature_changes.items()},
        }


def diff_versions(
    a: ModelVersion, b: ModelVersion, run_a: Run | None = None, run_b: Run | None = None
) -> VersionDiff:
    """The differences between two versions (and the runs that made them, when known)."""
    params = {
        key: (a.params.get(key), b.params.get(key))
        for key in sorted(set(a.params) | set(b.params))
        if a.params.get(key) != b.params.get(key)
    }
    metrics: dict[str, tuple[float | None, float | None, float | None]] = {}
    for key in sorted(set(a.metrics) | set(b.metrics)):
        first, second = a.metrics.get(key), b.metrics.get(key)
        delta = second - first if first is not None and second is not None else None
        metrics[key] = (first, second, delta)
    inputs_a, inputs_b = _input_names(a.signature), _input_names(b.signature)
    versions_a = (run_a.feature_versions if run_a else None) or {}
    versions_b = (run_b.feature_versions if run_b else None) or {}
    signature_keys = (set(a.signature) | set(b.signature)) - {"inputs"}
    return VersionDiff(
        a=a,
        b=b,
        params=params,
        metrics=metrics,
        snapshot=None if a.snapshot_hash == b.snapshot_hash else (a.snapshot_hash, b.snapshot_hash),
        features_added=[name for name in inputs_b if name not in inputs_a],
        features_removed=[name for name in inputs_a if name not in inputs_b],
        feature_versions={
            key: (versions_a.get(key), versions_b.get(key))
            for key in sorted(set(versions_a) | set(versions_b))
            if versions_a.get(key) != versions_b.get(key)
        },
        signature_changes={
            key: (a.signature.get(key), b.signature.get(key))
            for key in sorted(signature_keys)
            if a.signature.get(key) != b.signature.get(key)
        },
    )


def _input_names(signature: dict[str, Any]) -> list[str]:
    inputs = signature.get("inputs") or []
    return [str(item.get("name")) if isinstance(item, dict) else str(item) for item in inputs]


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
