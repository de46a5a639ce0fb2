"""Every metadata store passes the same conformance suite (decisionloop.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import Run, RunStatus
from decisionloop.backends.metadata.repositories import SqlModels, SqlRuns
from decisionloop.backends.metadata.sql import SqlMetadataStore
from decisionloop.errors import Conflict
from decisionloop.testing.metadata_conformance import (
    METADATA_STORE_CHECKS,
    MetadataStoreCheck,
    check_champion_requires_passed_gate,
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


@pytest.mark.parametrize(
    ("broken", "check", "message"),
    [
        (_NoGateStore, check_champion_requires_passed_gate, "did not raise GateFailed"),
        (_LenientStore, check_run_finish_twice_conflicts, "did not raise Conflict"),
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
