"""The SQL store's fast paths return what the plain reads return, on SQLite and PostgreSQL.

Searches read versions with their JSON documents still encoded (decoded on first access), fetch
aliases and tags once per search, and reuse statements per search shape; the tracking writes
return the run they wrote instead of reading it back. Each is checked against ``get``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decisionloop.backends.metadata.records import (
    MetricFilter,
    MetricPoint,
    ModelVersion,
    NewModelVersion,
    VersionQuery,
)
from decisionloop.backends.metadata.sql import SqlMetadataStore

ACTOR = "fast-paths"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
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


def _documents(n: int) -> dict[str, Any]:
    return {
        "signature": {"inputs": [{"name": "tenure", "type": "integer"}], "n": n},
        "metrics": {"auc": 0.5 + n / 10, "log_loss": 1 / 3, "whole": 2.0},
        "params": {"n": n, "eta": 0.1, "big": 2**70, "nested": {"a": [1, None, "é"]}},
        "gate_report": {"passed": True, "results": [{"gate": "auc", "value": 0.5 + n / 10}]},
    }


def _register(store: SqlMetadataStore, model: str, n: int) -> ModelVersion:
    docs = _documents(n)
    return store.models.register(
        NewModelVersion(
            model_name=model,
            artifact_key=f"models/{model}/{n}",
            artifact_sha256=f"{n:064x}",
            signature=docs["signature"],
            metrics=docs["metrics"],
            params=docs["params"],
            gate_passed=True,
            gate_report=docs["gate_report"],
            snapshot_hash="s" * 64,
            code_version="abc123",
        ),
        actor=ACTOR,
    )


def test_searches_return_complete_versions(store: SqlMetadataStore) -> None:
    """Whatever statement found a version, it equals ``get_version``'s: documents, aliases,
    tags, status and creation time."""
    model, other = f"m-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    registered = [_register(store, model, n) for n in range(1, 5)]
    _register(store, other, 9)
    store.models.set_alias(model, "champion", 3, actor=ACTOR)
    store.models.set_alias(model, "staging", 3, actor=ACTOR)
    store.models.set_alias(other, "staging", 1, actor=ACTOR)
    for name, version in ((model, 2), (model, 3), (other, 1)):
        store.catalog.set_tag(name, "team", "retention", version=version, actor=ACTOR)
    store.catalog.set_tag(model, "dataset", "march", version=3, actor=ACTOR)
    store.lifecycle.set_status(model, 3, "staging", actor=ACTOR)

    queries = {
        "by name": VersionQuery(name=model),
        "by name, limited": VersionQuery(name=model, limit=2),
        "by tag across models": VersionQuery(tags={"team": "retention"}),
        "by tag and status": VersionQuery(tags={"team": "retention"}, status="staging"),
        "by name and metric": VersionQuery(name=model, metrics=(MetricFilter("auc", ">=", 0.7),)),
        "everything": VersionQuery(limit=10_000),
        "everything, limited": VersionQuery(limit=1),
    }
    expected = {
        "by name": [(model, 4), (model, 3), (model, 2), (model, 1)],
        "by name, limited": [(model, 4), (model, 3)],
        "by tag across models": sorted([(model, 3), (model, 2), (other, 1)]),
        "by tag and status": [(model, 3)],
        "by name and metric": [(model, 4), (model, 3), (model, 2)],
    }
    for label, query in queries.items():
        found = store.catalog.search_versions(query)
        keys = [(v.model_name, v.version) for v in found]
        if label in expected:
            assert sorted(keys) == sorted(expected[label]), label
            assert keys == sorted(keys, key=lambda k: (k[0], -k[1])), f"{label}: order"
        for version in found:
            assert version == store.models.get_version(version.model_name, version.version), label

    champion = store.models.get_by_alias(model, "champion")
    assert champion.aliases == ("champion", "staging")
    assert champion.tags == {"dataset": "march", "team": "retention"}
    assert champion.status == "staging"
    docs = _documents(3)
    for field in ("signature", "metrics", "params", "gate_report"):
        assert getattr(champion, field) == docs[field], field
    assert type(champion.params["big"]) is int
    assert champion.params["big"] == 2**70
    assert all(type(value) is float for value in champion.metrics.values())
    assert champion.created_at == registered[2].created_at
    assert champion.created_at.utcoffset() is not None

    listed = store.models.list_versions(model)
    assert listed == [store.models.get_version(model, v) for v in (4, 3, 2, 1)]


def test_tracking_writes_return_what_get_reads(store: SqlMetadataStore) -> None:
    run = store.runs.start(
        "churn",
        params={"eta": 0.1},
        tags={"a": "1"},
        snapshot_id=None,
        code_version=None,
        actor=ACTOR,
        environment={"python": "3.11", "packages": {"x": "1"}},
    )
    assert run == store.runs.get(run.id)
    # the same (key, step) twice in one call: the last one given is kept
    store.runs.log_metrics(
        run.id,
        [MetricPoint("loss", 0.9, 0), MetricPoint("loss", 0.5, 1), MetricPoint("loss", 0.4, 1)],
        actor=ACTOR,
    )
    store.runs.log_metrics(run.id, [MetricPoint("loss", 0.7, 0)], actor=ACTOR)  # an older step
    assert store.runs.get(run.id).metrics == {"loss": 0.4}
    history = store.runs.metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.7), (1, 0.4)]

    assert store.runs.log_params(run.id, {"best": 7}, actor=ACTOR) == store.runs.get(run.id)
    assert store.runs.set_tags(run.id, {"b": "2"}, actor=ACTOR) == store.runs.get(run.id)
    finished = store.runs.finish(run.id, status="finished", metrics={"auc": 0.8}, actor=ACTOR)
    assert finished == store.runs.get(run.id)
    assert finished.metrics == {"loss": 0.4, "auc": 0.8}
    assert finished.params == {"eta": 0.1, "best": 7}
    assert finished.ended_at is not None
    assert finished.ended_at >= finished.started_at
