"""Conformance checks of the training runs of a metadata store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    Run,
)
from decisionloop.errors import Conflict, NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    RICH_JSON,
    RICH_METRICS,
    _add_snapshot,
    _expect_events,
    _expect_same_json,
    _expect_utc,
    _hash,
    _mark,
    _no_new_events,
    _start_run,
    _uid,
)


def check_run_lifecycle(store: MetadataStore) -> None:
    """``start`` records a running run; ``finish`` stores status, metrics and end time."""
    model = f"model-{_uid()}"
    snapshot = _add_snapshot(store, f"ds-{_uid()}", _hash())
    mark = _mark(store)
    start = datetime.now(UTC)
    run = store.runs.start(
        model,
        params=RICH_JSON,
        tags={"owner": "José", "team": "growth → 東京"},
        snapshot_id=snapshot.id,
        code_version="9f2c1e0",
        actor=_ACTOR,
    )
    _expect(isinstance(run, Run), f"start returned {run!r}")
    _expect_equal(run.model_name, model, "run.model_name")
    _expect_equal(run.status, "running", "run.status after start")
    _expect_same_json(run.params, RICH_JSON, "run.params")
    _expect_equal(run.tags, {"owner": "José", "team": "growth → 東京"}, "run.tags")
    _expect_equal(run.metrics, {}, "run.metrics after start")
    _expect_equal(run.snapshot_id, snapshot.id, "run.snapshot_id")
    _expect_equal(run.code_version, "9f2c1e0", "run.code_version")
    _expect_equal((run.error, run.ended_at), (None, None), "run.error, run.ended_at after start")
    _expect_utc(run.started_at, "run.started_at", near=(start, datetime.now(UTC)))
    _expect_equal(store.runs.get(run.id), run, "get(run_id) of a running run")

    finished = store.runs.finish(run.id, status="finished", metrics=RICH_METRICS, actor=_ACTOR)
    end = datetime.now(UTC)
    _expect_equal(finished.status, "finished", "run.status after finish")
    _expect_same_json(finished.metrics, RICH_METRICS, "run.metrics after finish")
    _expect_equal(finished.error, None, "run.error after a successful finish")
    _expect_utc(finished.ended_at, "run.ended_at", near=(start, end))
    assert finished.ended_at is not None
    _expect(finished.ended_at >= finished.started_at, "run ended before it started")
    _expect_equal(finished.started_at, run.started_at, "started_at changed by finish")
    _expect_same_json(finished.params, RICH_JSON, "run.params after finish")
    stored = store.runs.get(run.id)
    _expect_equal(stored, finished, "get(run_id) of a finished run")
    _expect_same_json(stored.metrics, RICH_METRICS, "get(run_id).metrics")

    failed = _start_run(store, model)
    crashed = store.runs.finish(
        failed.id, status="failed", metrics={}, error="MemoryError: ran out", actor=_ACTOR
    )
    _expect_equal(crashed.status, "failed", "status of a failed run")
    _expect_equal(crashed.error, "MemoryError: ran out", "error of a failed run")
    _expect_equal(store.runs.get(failed.id), crashed, "get(run_id) of a failed run")
    _expect_events(
        store,
        mark,
        [
            ("run.start", f"run:{run.id}"),
            ("run.finished", f"run:{run.id}"),
            ("run.start", f"run:{failed.id}"),
            ("run.failed", f"run:{failed.id}"),
        ],
        "start/finish",
    )


def check_run_finish_twice_conflicts(store: MetadataStore) -> None:
    """A run finishes once: a second ``finish`` raises :class:`Conflict` and changes nothing."""
    run = _start_run(store, f"model-{_uid()}")
    finished = store.runs.finish(run.id, status="finished", metrics={"auc": 0.7}, actor=_ACTOR)
    mark = _mark(store)
    with _raises(Conflict, "finish() of a finished run"):
        store.runs.finish(run.id, status="finished", metrics={"auc": 0.9}, actor=_ACTOR)
    with _raises(Conflict, "finish(failed) of a finished run"):
        store.runs.finish(run.id, status="failed", metrics={}, error="late", actor=_ACTOR)
    _expect_equal(store.runs.get(run.id), finished, "run after the refused finish()")
    _no_new_events(store, mark, "refused finish()")


def check_run_list_and_not_found(store: MetadataStore) -> None:
    """``list(model)`` returns that model's runs newest first; unknown runs are NotFound."""
    model, other = f"model-{_uid()}", f"model-{_uid()}"
    mine = []
    for n in range(3):
        mine.append(_start_run(store, model, params={"n": n}))
        _start_run(store, other, params={"n": n})
    store.runs.finish(mine[0].id, status="finished", metrics={"auc": 0.5}, actor=_ACTOR)
    listed = store.runs.list(model)
    _expect_equal([r.id for r in listed], [r.id for r in reversed(mine)], "list(model) ids")
    _expect_equal({r.model_name for r in listed}, {model}, "model names in list(model)")
    _expect_equal(listed[-1], store.runs.get(mine[0].id), "finished run as listed")
    _expect_equal(
        [r.id for r in store.runs.list(model, limit=2)],
        [mine[2].id, mine[1].id],
        "list(model, limit=2)",
    )
    everything = store.runs.list(limit=6)
    _expect_equal({r.model_name for r in everything}, {model, other}, "models in list()")
    stamps = [r.started_at for r in everything]
    _expect_equal(stamps, sorted(stamps, reverse=True), "list() started_at order")
    _expect_equal(store.runs.list(f"model-{_uid()}"), [], "list(unknown model)")
    mark = _mark(store)
    with _raises(NotFound, "get(unknown run)"):
        store.runs.get(uuid.uuid4().hex)
    # whether an unknown run is "not found" or "not running", it must not be finished
    with _raises((NotFound, Conflict), "finish(unknown run)"):
        store.runs.finish(uuid.uuid4().hex, status="finished", metrics={}, actor=_ACTOR)
    _no_new_events(store, mark, "finish(unknown run)")
