"""Every metadata store passes the same conformance suite (decisionloop.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.feature_repository import SqlFeatures
from decisionloop.backends.metadata.records import (
    FeatureDefinition,
    FeatureKind,
    Materialization,
    Run,
    RunStatus,
)
from decisionloop.backends.metadata.repositories import SqlModels, SqlRuns
from decisionloop.backends.metadata.sql import SqlMetadataStore
from decisionloop.errors import Conflict
from decisionloop.testing.metadata_conformance import (
    METADATA_STORE_CHECKS,
    MetadataStoreCheck,
    check_champion_requires_passed_gate,
    check_feature_history_keeps_every_version,
    check_last_materialization_per_view_and_version,
    check_metadata_store,
    check_run_finish_twice_conflicts,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    """A freshly migrated, empty store: a SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'metadata.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    sql_store = SqlMetadataStore(url)
    sql_store.migrate()
    try:
        yield sql_store
    finally:
        sql_store.close()


@pytest.mark.parametrize("check", METADATA_STORE_CHECKS, ids=lambda check: check.__name__)
def test_metadata_store(check: MetadataStoreCheck, store: MetadataStore) -> None:
    check(store)


def test_checks_share_one_store(tmp_path: Path) -> None:
    """The whole suite runs twice against one store: checks do not need an empty store."""
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'shared.db'}")
    store.migrate()
    try:
        check_metadata_store(store)
        check_metadata_store(store)
    finally:
        store.close()


def test_checks_cover_the_suite() -> None:
    names = [check.__name__ for check in METADATA_STORE_CHECKS]
    assert len(names) == len(set(names))
    assert all(name.startswith("check_") for name in names)
    assert len(names) >= 15


# -- the suite notices broken stores ---------------------------------------------------------


class _NoGateModels(SqlModels):
    """Lets a version that failed its gates become champion (under another name, since the
    table refuses nothing): the suite must notice."""

    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> None:
        alias = "champion-unchecked" if alias == "champion" else alias
        super().set_alias(name, alias, version, actor=actor)


class _NoGateStore(SqlMetadataStore):
    @property
    def models(self) -> SqlModels:
        return _NoGateModels(self)


class _LenientRuns(SqlRuns):
    """Finishing a finished run quietly returns it: the suite must notice."""

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        metrics: dict[str, float],
        error: str | None = None,
        actor: str,
    ) -> Run:
        try:
            return super().finish(run_id, status=status, metrics=metrics, error=error, actor=actor)
        except Conflict:
            return self.get(run_id)


class _LenientStore(SqlMetadataStore):
    @property
    def runs(self) -> SqlRuns:
        return _LenientRuns(self)


class _ForgetfulFeatures(SqlFeatures):
    """Keeps one history entry per version (A -> B -> A shows two): the suite must notice."""

    def definition_history(self, kind: FeatureKind, name: str) -> list[FeatureDefinition]:
        by_version = {d.version: d for d in super().definition_history(kind, name)}
        return list(by_version.values())


class _VersionBlindFeatures(SqlFeatures):
    """Answers ``last_materialization`` for the view whatever version is asked for."""

    def last_materialization(
        self, view: str, *, view_version: str | None = None
    ) -> Materialization | None:
        return super().last_materialization(view)


class _ForgetfulStore(SqlMetadataStore):
    @property
    def features(self) -> SqlFeatures:
        return _ForgetfulFeatures(self)


class _VersionBlindStore(SqlMetadataStore):
    @property
    def features(self) -> SqlFeatures:
        return _VersionBlindFeatures(self)


@pytest.mark.parametrize(
    ("broken", "check", "message"),
    [
        (_NoGateStore, check_champion_requires_passed_gate, "did not raise GateFailed"),
        (_LenientStore, check_run_finish_twice_conflicts, "did not raise Conflict"),
        (_ForgetfulStore, check_feature_history_keeps_every_version, "after A -> B -> A"),
        (
            _VersionBlindStore,
            check_last_materialization_per_view_and_version,
            "last of v1",
        ),
    ],
)
def test_checks_can_fail(
    tmp_path: Path, broken: type[SqlMetadataStore], check: MetadataStoreCheck, message: str
) -> None:
    store = broken(f"sqlite:///{tmp_path / 'broken.db'}")
    store.migrate()
    try:
        with pytest.raises(AssertionError, match=message):
            check(store)
    finally:
        store.close()


def test_references_to_missing_records_are_typed_errors(store: SqlMetadataStore) -> None:
    from decisionloop.backends.metadata.records import NewModelVersion
    from decisionloop.errors import Conflict, NotFound

    with pytest.raises(NotFound):
        store.runs.finish("0" * 32, status="finished", metrics={}, actor="t")
    with pytest.raises(NotFound):
        store.deployments.create(
            environment="prod", model_name="ghost", version=1, strategy="direct", actor="t"
        )
    new = NewModelVersion("m", "k", "a" * 64, {}, {"auc": 1e20}, {}, True, {}, run_id="f" * 32)
    with pytest.raises(Conflict):
        store.models.register(new, actor="t")
    ok = store.models.register(
        NewModelVersion("m", "k", "a" * 64, {}, {"big": 1e20}, {}, True, {}), actor="t"
    )
    assert isinstance(store.models.get_version("m", ok.version).metrics["big"], float)


# -- the 0003 -> 0004 migration keeps data and backfills history and search ---------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def test_migration_from_0003_keeps_registry_and_runs(empty_url: str) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from decisionloop.backends.metadata.records import MetricFilter, NewModelVersion, VersionQuery
    from decisionloop.backends.metadata.sql import HEAD_REVISION, MIGRATIONS

    old = SqlMetadataStore(empty_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    assert old.current_revision() == "0003"
    set_at = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with old.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, model_name, status, params, metrics, tags, started_at,"
                " ended_at) VALUES ('r1', 'churn', 'finished', :params, :metrics, '{}', :at, :at)"
            ),
            {"params": '{"eta": 0.1}', "metrics": '{"auc": 0.84}', "at": set_at},
        )
        conn.execute(
            sa.text(
                "INSERT INTO registered_models (name, description, created_at)"
                " VALUES ('churn', 'old', :at)"
            ),
            {"at": set_at},
        )
        for version, auc in ((1, 0.71), (2, 0.84)):
            conn.execute(
                sa.text(
                    "INSERT INTO model_versions (model_name, version, run_id, artifact_key,"
                    " artifact_sha256, signature, metrics, params, gate_passed, gate_report,"
                    " created_at) VALUES ('churn', :v, 'r1', 'k', :sha, '{}', :metrics, '{}',"
                    " true, '{}', :at)"
                ),
                {"v": version, "sha": "a" * 64, "metrics": f'{{"auc": {auc}}}', "at": set_at},
            )
        conn.execute(
            sa.text(
                "INSERT INTO model_aliases (model_name, alias, version, updated_at)"
                " VALUES ('churn', 'champion', 2, :at)"
            ),
            {"at": set_at},
        )
    old.close()

    store = SqlMetadataStore(empty_url)
    store.migrate()
    try:
        assert store.current_revision() == HEAD_REVISION
        run = store.runs.get("r1")
        assert (run.params, run.metrics, run.parent_run_id, run.environment) == (
            {"eta": 0.1},
            {"auc": 0.84},
            None,
            None,
        )
        version = store.models.get_version("churn", 2)
        assert (version.status, version.description, version.tags) == ("candidate", "", {})
        assert version.aliases == ("champion",)
        # the alias set before 0004 has a history row at its updated_at
        history = store.lifecycle.alias_history("churn", "champion")
        assert [(e.version, e.actor, e.at) for e in history] == [(2, "migration:0004", set_at)]
        assert (
            store.lifecycle.alias_at("churn", "champion", datetime(2025, 1, 1, tzinfo=UTC)) is None
        )
        assert store.lifecycle.alias_at("churn", "champion", datetime(2025, 7, 1, tzinfo=UTC)) == 2
        # old versions' metrics are searchable
        found = store.catalog.search_versions(
            VersionQuery(name="churn", metrics=(MetricFilter("auc", ">=", 0.8),))
        )
        assert [v.version for v in found] == [2]
        # and the new tables take writes next to the old rows
        trial = store.runs.start(
            "churn",
            params={},
            tags={},
            snapshot_id=None,
            code_version=None,
            actor="t",
            parent_run_id="r1",
        )
        store.runs.log_metrics(trial.id, {"auc": 0.9}, step=1, actor="t")
        assert store.runs.get(trial.id).metrics == {"auc": 0.9}
        assert [r.parent_run_id for r in store.runs.list("churn", parent_run_id="r1")] == ["r1"]
        new = store.models.register(
            NewModelVersion("churn", "k3", "b" * 64, {}, {"auc": 0.9}, {}, True, {}), actor="t"
        )
        assert new.version == 3
        store.lifecycle.set_status("churn", 3, "staging", actor="t")
        store.models.set_alias("churn", "champion", 3, actor="t", reason="after migration")
        assert [e.previous_version for e in store.lifecycle.alias_history("churn", "champion")] == [
            None,
            2,
        ]
    finally:
        store.close()


# -- the 0004 -> 0005 migration adds the feature repository, and downgrades -------------------


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from decisionloop.backends.metadata.sql import MIGRATIONS

    store = SqlMetadataStore(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        store.close()


def test_migration_from_0004_adds_features_and_downgrades(empty_url: str) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from decisionloop.backends.metadata.records import (
        NewFeatureDefinition,
        NewMaterialization,
        NewModelVersion,
    )

    feature_tables = {"feature_names", "feature_definitions", "feature_materializations"}
    _migrate_to(empty_url, "0004")
    old = SqlMetadataStore(empty_url)
    try:
        assert old.current_revision() == "0004"
        old.models.register(
            NewModelVersion("churn", "k", "a" * 64, {}, {}, {}, True, {}), actor="t"
        )
        with old.read() as conn:
            assert not feature_tables & set(sa.inspect(conn).get_table_names())
    finally:
        old.close()

    store = SqlMetadataStore(empty_url)
    store.migrate()
    try:
        assert store.current_revision() == "0005"
        assert store.models.get_version("churn", 1).artifact_key == "k"
        view = NewFeatureDefinition("feature_view", "churn_stats", "v1", {"ttl": 30})
        applied = store.features.apply([view], actor="t")
        assert [d.version for d in applied.added] == ["v1"]
        end = datetime(2026, 1, 1, tzinfo=UTC)
        store.features.record_materialization(
            NewMaterialization("churn_stats", "v1", "full", None, end, end, 3, 3, "x", end),
            actor="t",
        )
        assert store.features.last_materialization("churn_stats") is not None
    finally:
        store.close()

    _migrate_to(empty_url, "0004", down=True)
    down = SqlMetadataStore(empty_url)
    try:
        assert down.current_revision() == "0004"
        with down.read() as conn:
            assert not feature_tables & set(sa.inspect(conn).get_table_names())
        assert down.models.get_version("churn", 1).artifact_key == "k"
    finally:
        down.close()
    again = SqlMetadataStore(empty_url)
    again.migrate()
    try:
        assert again.features.list_definitions() == []
        assert again.features.apply([view], actor="t").added[0].version == "v1"
    finally:
        again.close()
