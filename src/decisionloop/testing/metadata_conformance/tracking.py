"""Conformance checks of experiment tracking: params, per-step metrics, tags, parents, compare."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import MetricPoint
from decisionloop.errors import Conflict, Invalid, NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    RICH_JSON,
    _expect_events,
    _expect_same_json,
    _expect_utc,
    _mark,
    _no_new_events,
    _start_run,
    _uid,
)

ENVIRONMENT = {
    "python": "3.12.4",
    "packages": {"xgboost": "2.1.0", "pandas": "2.2.2"},
    "lock_hash": "ab" * 32,
}


def check_run_records_environment_features_and_parent(store: MetadataStore) -> None:
    """``start`` keeps the environment, feature versions and parent run; trials list by parent;
    a parent that does not exist is NotFound."""
    model = f"model-{_uid()}"
    features = {"customer_profile": 3, "usage_7d": "2026-03-01"}
    parent = _start_run(store, model, environment=ENVIRONMENT, feature_versions=features)
    _expect_same_json(store.runs.get(parent.id).environment, ENVIRONMENT, "run.environment")
    _expect_same_json(store.runs.get(parent.id).feature_versions, features, "feature_versions")
    _expect_equal(parent.parent_run_id, None, "parent of a top-level run")
    trials = [
        _start_run(store, model, parent_run_id=parent.id, params={"eta": eta}) for eta in (0.1, 0.3)
    ]
    _expect_equal(store.runs.get(trials[0].id).parent_run_id, parent.id, "trial's parent")
    _expect_equal(
        [r.id for r in store.runs.list(parent_run_id=parent.id)],
        [trials[1].id, trials[0].id],
        "list(parent_run_id=...) newest first",
    )
    _expect_equal(_start_run(store, model).environment, None, "environment when not given")
    mark = _mark(store)
    with _raises(NotFound, "start() with an unknown parent run"):
        _start_run(store, model, parent_run_id=uuid.uuid4().hex)
    _no_new_events(store, mark, "refused start()")


def check_run_log_params_metrics_and_tags(store: MetadataStore) -> None:
    """``log_params`` adds params (a changed value is Conflict); ``log_metrics`` keeps every
    step and the run's metrics keep each key's last step; ``set_tags`` merges; one audit event
    per call; a finished run takes no more params or metrics."""
    run = _start_run(store, f"model-{_uid()}", params={"max_depth": 4})
    mark = _mark(store)
    start = datetime.now(UTC)
    store.runs.log_params(run.id, {"eta": 0.1, "nested": RICH_JSON}, actor=_ACTOR)
    store.runs.log_params(run.id, {"max_depth": 4}, actor=_ACTOR)  # same value: fine
    store.runs.log_metrics(run.id, {"val_auc": 0.70, "val_loss": 0.60}, step=0, actor=_ACTOR)
    store.runs.log_metrics(
        run.id,
        [MetricPoint("val_auc", 0.75, 1), MetricPoint("val_auc", 0.81, 2)],
        actor=_ACTOR,
    )
    store.runs.log_metrics(run.id, {"val_auc": 0.79}, step=1, actor=_ACTOR)  # replaces step 1
    store.runs.set_tags(run.id, {"trial": "7"}, actor=_ACTOR)
    store.runs.set_tags(run.id, {"sampler": "tpe", "trial": "8"}, actor=_ACTOR)
    events = _expect_events(
        store,
        mark,
        [("run.log_params", f"run:{run.id}")] * 2
        + [("run.log_metrics", f"run:{run.id}")] * 3
        + [("run.set_tags", f"run:{run.id}")] * 2,
        "logging",
    )
    _expect_equal(events[3].details.get("points"), 2, "points in the log_metrics event")
    current = store.runs.get(run.id)
    _expect_equal(current.params["eta"], 0.1, "logged param")
    _expect_same_json(current.params["nested"], RICH_JSON, "logged nested param")
    _expect_equal(current.params["max_depth"], 4, "param from start")
    _expect_equal(current.metrics, {"val_auc": 0.81, "val_loss": 0.60}, "last value per key")
    _expect_equal(current.tags, {"trial": "8", "sampler": "tpe"}, "merged tags")
    history = store.runs.metric_history(run.id, "val_auc")
    _expect_equal(
        [(p.key, p.step, p.value) for p in history],
        [("val_auc", 0, 0.70), ("val_auc", 1, 0.79), ("val_auc", 2, 0.81)],
        "metric_history(val_auc) by step, step 1 replaced",
    )
    for point in history:
        _expect_utc(point.timestamp, "metric timestamp", near=(start, datetime.now(UTC)))
    _expect_equal(len(store.runs.metric_history(run.id)), 4, "metric_history() of every key")

    refused = _mark(store)
    with _raises(Conflict, "log_params() changing a param"):
        store.runs.log_params(run.id, {"eta": 0.2}, actor=_ACTOR)
    with _raises(Invalid, "log_metrics() of NaN"):
        store.runs.log_metrics(run.id, {"val_auc": float("nan")}, step=9, actor=_ACTOR)
    _no_new_events(store, refused, "refused log_params()")
    _expect_equal(store.runs.get(run.id).params["eta"], 0.1, "param after the refusal")
    finished = store.runs.finish(run.id, status="finished", metrics={"test_auc": 0.8}, actor=_ACTOR)
    _expect_equal(
        finished.metrics,
        {"val_auc": 0.81, "val_loss": 0.60, "test_auc": 0.8},
        "finish() merges its metrics over the logged ones",
    )
    _expect(finished.duration_seconds is not None, "duration of a finished run")
    assert finished.duration_seconds is not None
    _expect(finished.duration_seconds >= 0, "non-negative duration")
    after = _mark(store)
    with _raises(Conflict, "log_metrics() on a finished run"):
        store.runs.log_metrics(run.id, {"val_auc": 0.9}, step=3, actor=_ACTOR)
    with _raises(Conflict, "log_params() on a finished run"):
        store.runs.log_params(run.id, {"late": 1}, actor=_ACTOR)
    with _raises(NotFound, "log_metrics() on an unknown run"):
        store.runs.log_metrics(uuid.uuid4().hex, {"x": 1.0}, actor=_ACTOR)
    with _raises(NotFound, "metric_history() of an unknown run"):
        store.runs.metric_history(uuid.uuid4().hex)
    store.runs.set_tags(run.id, {"note": "kept"}, actor=_ACTOR)  # tags annotate ended runs too
    _expect_equal(store.runs.get(run.id).tags["note"], "kept", "tag on a finished run")
    _expect_equal(len(store.runs.metric_history(run.id, "val_auc")), 3, "history unchanged")
    _expect_events(store, after, [("run.set_tags", f"run:{run.id}")], "after finishing")


def check_run_list_filters_and_compare(store: MetadataStore) -> None:
    """``list`` filters by model and status; ``compare`` lines runs up key by key, in the order
    asked, and an unknown id is NotFound."""
    model = f"model-{_uid()}"
    first = _start_run(store, model, params={"eta": 0.1, "depth": 4})
    second = _start_run(store, model, params={"eta": 0.3, "depth": 4, "subsample": 0.8})
    third = _start_run(store, model, params={"eta": 0.3})
    store.runs.finish(first.id, status="finished", metrics={"auc": 0.7}, actor=_ACTOR)
    store.runs.finish(second.id, status="failed", metrics={}, error="boom", actor=_ACTOR)
    _expect_equal([r.id for r in store.runs.list(model, status="finished")], [first.id], "done")
    _expect_equal([r.id for r in store.runs.list(model, status="failed")], [second.id], "failed")
    _expect_equal([r.id for r in store.runs.list(model, status="running")], [third.id], "running")
    comparison = store.runs.compare([second.id, first.id])
    _expect_equal([r.id for r in comparison.runs], [second.id, first.id], "compare() order")
    _expect_equal(
        comparison.params,
        {"depth": [4, 4], "eta": [0.3, 0.1], "subsample": [0.8, None]},
        "compare() params",
    )
    _expect_equal(comparison.metrics, {"auc": [None, 0.7]}, "compare() metrics")
    _expect_equal(comparison.changed_params, ["eta", "subsample"], "changed params")
    with _raises(NotFound, "compare() with an unknown run"):
        store.runs.compare([first.id, uuid.uuid4().hex])
