"""The feature store verbs the Platform exposes (``platform.features``): plan and apply
definitions, build point-in-time correct training sets, materialize, and serve online."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Conflict, DecisionLoopError, Invalid, NotFound
from decisionloop.features.materialize import Materialized, MaterializeProgress
from decisionloop.features.planning import FeaturePlan
from decisionloop.features.repo import FeatureRepo, Kind, ResolvedService, load_repo

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from decisionloop.backends.metadata.records import Materialization
    from decisionloop.backends.online.base import OnlineStore
    from decisionloop.features.definitions import FeatureView
    from decisionloop.features.feature_log import FeatureLog
    from decisionloop.features.offline import ViewInput
    from decisionloop.features.online import OnlineFeatures
    from decisionloop.features.skew import SkewReport
    from decisionloop.platform import Platform


@dataclass(frozen=True)
class TrainingSet:
    """A point-in-time correct training set and the lineage it was built from."""

    table: pa.Table
    service: str | None
    #: view / on-demand view name -> definition version, and each view's source snapshot
    feature_versions: dict[str, Any]

    def to_pandas(self) -> pd.DataFrame:
        frame: pd.DataFrame = self.table.to_pandas()
        return frame


class FeatureStore:
    """Feature definitions, training sets, materialization and online retrieval."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._repo: FeatureRepo | None = None
        self._online: OnlineStore | None = None
        self._plans: dict[str, tuple[ResolvedService, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._log: FeatureLog | None = None

    # -- definitions ----------------------------------------------------------------------

    @property
    def repo(self) -> FeatureRepo:
        """The project's definitions, read once per FeatureStore."""
        if self._repo is None:
            self._repo = load_repo(self.platform.settings)
        return self._repo

    def plan(self) -> FeaturePlan:
        """Compare the project's definitions with the ones applied (recorded in metadata)."""
        from decisionloop.features.planning import plan_changes

        return plan_changes(self.repo, self.platform.metadata.features.list_definitions())

    def apply(self) -> FeaturePlan:
        """Record the project's definitions; online rows of a view whose stored values changed
        meaning (source, columns, key) or that was removed are dropped, to be rebuilt."""
        from decisionloop.features.planning import apply_changes

        plan = apply_changes(self)
        self._plans.clear()
        return plan

    def require_applied(self, names: Sequence[tuple[Kind, str]]) -> None:
        """Refuse to serve or train on definitions that differ from the applied ones."""
        repo = self.repo
        current = {
            (d.kind, d.name): d.version for d in self.platform.metadata.features.list_definitions()
        }
        for kind, name in names:
            definition = _lookup(repo, kind, name)
            if current.get((kind, name)) != repo.version(kind, definition):
                raise Conflict(
                    f"{kind.replace('_', ' ')} {name!r} is not applied as defined",
                    hint="run `decisionloop features plan` to see the change, then "
                    "`decisionloop features apply`",
                )

    def _service_names(
        self, plan: ResolvedService, *, with_service: bool
    ) -> list[tuple[Kind, str]]:
        names: list[tuple[Kind, str]] = [("feature_view", view.name) for view, _ in plan.views]
        names += [("entity", view.entity) for view, _ in plan.views]
        names += [("on_demand_feature_view", odfv.name) for odfv in plan.on_demand]
        if with_service:
            names.append(("feature_service", plan.name))
        return names

    # -- offline ----------------------------------------------------------------------------

    def view_input(
        self, view: FeatureView, features: Sequence[str] | None = None
    ) -> tuple[ViewInput, Any]:
        """The view's current source files (verified) and its snapshot."""
        from decisionloop.data.ingest import latest_snapshot
        from decisionloop.features.offline import ViewInput

        snapshot = latest_snapshot(self.platform, view.source)
        if snapshot is None:
            raise NotFound(
                f"feature view {view.name!r}: data set {view.source!r} has no snapshot yet",
                hint=f"ingest it: decisionloop ingest --dataset {view.source}",
            )
        files = self._files(snapshot)
        join_key = self.repo.entities[view.entity].join_key
        chosen = list(view.features) if features is None else list(features)
        unique = _unique_times(self.platform.settings, view, join_key)
        data = ViewInput(view, join_key, files, chosen, unique_times=unique)
        return data, snapshot

    def get_historical_features(
        self,
        entity: pa.Table | pd.DataFrame,
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        timestamp: str = "event_timestamp",
    ) -> TrainingSet:
        """Join ``entity`` rows (join keys, ``timestamp``, anything else) with a service's or a
        list of ``view[:feature]`` features, point in time; see features/offline.py. The
        result records its lineage: each definition's version and each source snapshot."""
        from decisionloop.features.offline import point_in_time_join

        if (service is None) == (features is None):
            raise Invalid("pass either a feature service or a list of features")
        repo = self.repo
        plan = (
            repo.service(service) if service is not None else repo.features_of(list(features or []))
        )
        self.require_applied(self._service_names(plan, with_service=service is not None))
        inputs, views = [], {}
        for view, wanted in plan.views:
            data, snapshot = self.view_input(view, wanted)
            inputs.append(data)
            views[view.name] = {
                "version": view.version,
                "data_version": view.data_version,
                "join_key": data.join_key,
                "source": view.source,
                "snapshot": snapshot.content_hash,
                "snapshot_id": snapshot.id,
                "features": list(wanted),
            }
        on_demand = [(odfv, repo.functions.get(odfv.name)) for odfv in plan.on_demand]
        table = point_in_time_join(
            entity,
            timestamp=timestamp,
            views=inputs,
            outputs=list(plan.outputs),
            on_demand=on_demand,
        )
        lineage: dict[str, Any] = {
            "service": {"name": plan.name, "version": plan.version} if service else None,
            "views": views,
            "on_demand": {
                odfv.name: {"version": plan.versions[odfv.name]} for odfv in plan.on_demand
            },
            "outputs": dict(plan.outputs),
            "timestamp": timestamp,
        }
        return TrainingSet(table=table, service=service, feature_versions=lineage)

    def rebuild_training_set(
        self, entity: pa.Table | pd.DataFrame, lineage: Mapping[str, Any]
    ) -> TrainingSet:
        """The training set a run used, again: the recorded definitions (by version) over the
        recorded source snapshots, so later data or definition changes do not alter it."""
        from decisionloop.features.definitions import FeatureView, OnDemandFeatureView
        from decisionloop.features.offline import ViewInput, point_in_time_join

        repository = self.platform.metadata.features
        inputs = []
        for name, entry in lineage["views"].items():
            recorded = repository.get_definition("feature_view", name, entry["version"])
            view = FeatureView(**recorded.spec)
            snapshot = self.platform.metadata.datasets.get_snapshot(entry["snapshot_id"])
            if snapshot.content_hash != entry["snapshot"]:
                raise Conflict(
                    f"the snapshot of feature view {name!r} does not match the recorded hash",
                    hint="the offline store was changed; restore it from a backup",
                )
            files = self._files(snapshot)
            inputs.append(ViewInput(view, entry["join_key"], files, list(entry["features"])))
        on_demand = []
        for name, entry in lineage.get("on_demand", {}).items():
            recorded = repository.get_definition("on_demand_feature_view", name, entry["version"])
            odfv = OnDemandFeatureView(**recorded.spec)
            function = None
            if odfv.function is not None:
                current = self.repo.on_demand.get(name)
                function = self.repo.functions.get(name)
                if (
                    current is None
                    or self.repo.version("on_demand_feature_view", current) != entry["version"]
                ):
                    raise Conflict(
                        f"on-demand view {name!r} changed since the run: its function cannot be "
                        "recomputed as it was",
                        hint="check out the project's code of that run (its code version)",
                    )
            on_demand.append((odfv, function))
        table = point_in_time_join(
            entity,
            timestamp=lineage["timestamp"],
            views=inputs,
            outputs=list(lineage["outputs"]),
            on_demand=on_demand,
        )
        service = lineage.get("service") or {}
        return TrainingSet(table=table, service=service.get("name"), feature_versions=dict(lineage))

    def _files(self, snapshot: Any) -> list[str]:
        from decisionloop.data.offline import local_files

        return local_files(
            self.platform.artifacts, snapshot, self.platform.settings.state_dir / "cache"
        )

    # -- materialization ----------------------------------------------------------------------

    @property
    def online_store(self) -> OnlineStore:
        if self._online is None:
            with self._lock:
                if self._online is None:
                    from decisionloop.backends.registry import open_online_store

                    self._online = open_online_store(
                        self.platform.settings.online_url, self.platform.settings
                    )
        return self._online

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        full: bool = False,
        progress: MaterializeProgress | None = None,
    ) -> list[Materialized]:
        """Load each online view's newest rows into the online store: incrementally (only the
        batch files ingested since its last materialization) unless ``full`` or the data set
        was replaced or the view's stored meaning changed."""
        from decisionloop.features.materialize import materialize_views

        repo = self.repo
        names = list(views) if views else [n for n, v in sorted(repo.views.items()) if v.online]
        for name in names:
            repo.view(name)  # an unknown view is refused before anything runs
        self.require_applied([("feature_view", name) for name in names])
        return [materialize_views(self, repo.view(name), full, progress) for name in names]

    def snapshot_files(self, snapshot_id: str) -> list[str] | None:
        try:
            snapshot = self.platform.metadata.datasets.get_snapshot(snapshot_id)
        except NotFound:
            return None
        return self._files(snapshot)

    def materializations(self, view: str | None = None, limit: int = 50) -> list[Materialization]:
        return self.platform.metadata.features.list_materializations(view, limit=limit)

    # -- online -----------------------------------------------------------------------------

    def online_plan(self, service: str) -> tuple[ResolvedService, dict[str, str]]:
        """The resolved service and each view's join key, checked as applied once."""
        cached = self._plans.get(service)
        if cached is not None:
            return cached
        plan = self.repo.service(service)
        self.require_applied(self._service_names(plan, with_service=True))
        for view, _ in plan.views:
            if not view.online:
                raise Invalid(
                    f"feature view {view.name!r} is offline only (online: false)",
                    hint="set online: true and materialize it to serve this service",
                )
        join_keys = {view.name: self.repo.entities[view.entity].join_key for view, _ in plan.views}
        self._plans[service] = (plan, join_keys)
        return plan, join_keys

    def get_online_features(
        self, service: str, entity_rows: Sequence[Mapping[str, Any]]
    ) -> OnlineFeatures:
        """The service's features for each entity row (join keys plus request fields)."""
        from decisionloop.features.online import retrieve

        plan, join_keys = self.online_plan(service)
        now_us = time.time_ns() // 1000
        found = retrieve(
            plan, self.online_store, join_keys, entity_rows, self.repo.functions, now_us=now_us
        )
        self.feature_log.record(service, entity_rows, found, now_us)
        return found

    @property
    def feature_log(self) -> FeatureLog:
        """The sampled log of online lookups (``features.log_sample_rate``)."""
        if self._log is None:
            from decisionloop.features.feature_log import FeatureLog

            settings = self.platform.settings
            self._log = FeatureLog(settings.event_log_url, settings.features.log_sample_rate)
        return self._log

    # -- skew ---------------------------------------------------------------------------------

    def check_skew(self, service: str, *, sample: int = 1000) -> SkewReport:
        """Recompute up to ``sample`` logged online lookups offline, point in time at the
        moment each was served, and compare every feature."""
        from decisionloop.features.feature_log import read_logged
        from decisionloop.features.skew import SERVED_AT, compare, entity_table

        self.feature_log.flush()
        logged = read_logged(self.platform.settings.event_log_url, service, sample)
        if not logged:
            raise NotFound(
                f"no logged online lookups of {service!r}",
                hint="set features.log_sample_rate (e.g. 0.01) and serve some lookups first",
            )
        plan = self.repo.service(service)
        entity = entity_table(logged, plan.join_keys, list(plan.request))
        offline = self.get_historical_features(entity, service=service, timestamp=SERVED_AT)
        return compare(service, logged, offline.table, plan.outputs, plan.join_keys)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._online is not None:
            self._online.close()
            self._online = None


def _unique_times(settings: Any, view: FeatureView, join_key: str) -> bool:
    """Whether the view's data set cannot hold two rows of one entity at one event time: its
    contract key (unique per batch, and appends skip stored keys) is within (key, time), and
    the view has no created_timestamp tie-break to apply."""
    if view.created_timestamp is not None:
        return False
    try:
        spec = settings.dataset_spec(view.source)
    except DecisionLoopError:
        return False
    key = set(spec.contract.key)
    # a time kept as text is unique as text: two spellings of one instant would tie
    typed = (
        view.timestamp not in key
        or getattr(spec.columns.get(view.timestamp), "type", None) == "datetime"
    )
    return bool(key) and key <= {join_key, view.timestamp} and typed


def _lookup(repo: FeatureRepo, kind: Kind, name: str) -> Any:
    section = repo.section(kind)
    if name not in section:
        raise NotFound(f"no {kind.replace('_', ' ')} {name!r}")
    return section[name]
