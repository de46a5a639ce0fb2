"""Shared data and assertion helpers of the metadata store conformance checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    AuditEvent,
    ModelVersion,
    NewModelVersion,
    Run,
    Snapshot,
)
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal

MetadataStoreCheck = Callable[[MetadataStore], None]

#: JSON that must survive a round trip exactly: nesting, floats, unicode, null, empties.
RICH_JSON: dict[str, Any] = {
    "columns": [
        {"name": "tenure", "dtype": "int64", "nullable": False},
        {"name": "monthly_charges", "dtype": "float64", "nullable": True},
    ],
    "target": {"name": "churn", "classes": [0, 1], "positive": 1},
    "thresholds": [0.1, 1 / 3, 2.0, -2.5e-8, 1e-7, 123456.789],
    "nested": {"a": {"b": {"c": [1, [2, [3, {"d": None}]]]}}},
    "unicode": "Zürich → 東京 → Ελλάδα → 🚀",
    "ключ": "значение",
    "flags": [True, False, None],
    "empty_dict": {},
    "empty_list": [],
    "empty_string": "",
    "big_int": 2**53 + 1,
}

#: Float metrics that must come back as the very same floats.
RICH_METRICS: dict[str, float] = {
    "auc": 0.8734512345678901,
    "log_loss": 1 / 3,
    "accuracy": 0.1,
    "lift": 2.0,
    "tiny": -2.5e-8,
    "latency_ms": 123456.789,
    "zero": 0.0,
}

_ACTOR = "conformance-actor"
_CLOCK_SLACK = timedelta(minutes=5)


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _expect_utc(value: object, what: str, *, near: tuple[datetime, datetime] | None = None) -> None:
    """``value`` is a timezone-aware datetime in UTC (and, with ``near``, about then)."""
    if not isinstance(value, datetime):
        raise AssertionError(f"{what}: {value!r} is not a datetime")
    _expect(value.tzinfo is not None, f"{what}: {value!r} is naive, expected timezone-aware UTC")
    _expect_equal(value.utcoffset(), timedelta(0), f"{what}: UTC offset")
    if near is not None:
        low, high = near
        _expect(
            low - _CLOCK_SLACK <= value <= high + _CLOCK_SLACK,
            f"{what}: {value.isoformat()} is not between {low.isoformat()} and {high.isoformat()}",
        )


def _expect_same_json(actual: object, expected: object, what: str) -> None:
    """Equal, and of the same types all the way down (a float stays a float, not an int)."""
    _expect_equal(type(actual), type(expected), f"{what}: type")
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        _expect_equal(sorted(actual), sorted(expected), f"{what}: keys")
        for key, value in expected.items():
            _expect_same_json(actual[key], value, f"{what}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(actual, list)
        _expect_equal(len(actual), len(expected), f"{what}: length")
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            _expect_same_json(got, want, f"{what}[{index}]")
    else:
        _expect_equal(actual, expected, what)


@dataclass(frozen=True)
class _Mark:
    """The audit trail as it was before a check wrote anything."""

    count: int
    last_id: int


def _mark(store: MetadataStore) -> _Mark:
    newest = store.audit.list(limit=1)
    return _Mark(count=store.audit.count(), last_id=newest[0].id if newest else 0)


def _events_since(store: MetadataStore, mark: _Mark) -> list[AuditEvent]:
    """The events written after ``mark``, oldest first; checks they are all there is."""
    added = store.audit.count() - mark.count
    _expect(added >= 0, f"audit count() went down by {-added}")
    events = store.audit.list(limit=added + 10) if added else []
    new = [event for event in events if event.id > mark.last_id]
    _expect_equal(len(new), added, "audit events newer than the mark vs. growth of count()")
    return list(reversed(new))


def _expect_events(
    store: MetadataStore, mark: _Mark, expected: Sequence[tuple[str, str]], what: str
) -> list[AuditEvent]:
    """Exactly ``expected`` ``(action, resource)`` events were written since ``mark``, in order,
    each by the conformance actor."""
    events = _events_since(store, mark)
    _expect_equal(
        [(event.action, event.resource) for event in events],
        list(expected),
        f"{what}: audit events (action, resource), oldest first",
    )
    for event in events:
        _expect_equal(event.actor, _ACTOR, f"{what}: actor of audit event {event.action}")
        _expect_utc(event.at, f"{what}: audit event {event.action} at")
        _expect(isinstance(event.details, dict), f"{what}: details of {event.action} not a dict")
    return events


def _no_new_events(store: MetadataStore, mark: _Mark, what: str) -> None:
    _expect_events(store, mark, [], what)


def _new_version(model: str, *, gate_passed: bool = True, **overrides: Any) -> NewModelVersion:
    token = _uid()
    values: dict[str, Any] = {
        "model_name": model,
        "artifact_key": f"models/{model}/{token}/model.ubj",
        "artifact_sha256": (token * 6)[:64].ljust(64, "0"),
        "signature": {"inputs": [{"name": "tenure", "dtype": "int64"}], "output": "float64"},
        "metrics": {"auc": 0.81},
        "params": {"max_depth": 4},
        "gate_passed": gate_passed,
        "gate_report": {"passed": gate_passed, "gates": []},
        "run_id": None,
        "snapshot_hash": None,
        "code_version": None,
    }
    values.update(overrides)
    return NewModelVersion(**values)


def _register(store: MetadataStore, model: str, **kwargs: Any) -> ModelVersion:
    return store.models.register(_new_version(model, **kwargs), actor=_ACTOR)


def _add_snapshot(store: MetadataStore, dataset: str, content_hash: str, **kwargs: Any) -> Snapshot:
    values: dict[str, Any] = {
        "row_count": 100,
        "columns": {"tenure": "int64"},
        "artifact_key": f"datasets/{dataset}/{content_hash}.parquet",
        "source": f"file:///data/{dataset}.csv",
    }
    values.update(kwargs)
    return store.datasets.add_snapshot(dataset, content_hash=content_hash, actor=_ACTOR, **values)


def _start_run(store: MetadataStore, model: str, **kwargs: Any) -> Run:
    values: dict[str, Any] = {
        "params": {"max_depth": 4},
        "tags": {},
        "snapshot_id": None,
        "code_version": None,
    }
    values.update(kwargs)
    return store.runs.start(model, actor=_ACTOR, **values)


def _hash() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def _versions(records: Sequence[ModelVersion]) -> list[int]:
    return [record.version for record in records]
