"""A conformance suite for :class:`~decisionloop.backends.metadata.base.MetadataStore` stores.

In the style of scikit-learn's ``check_estimator``: every check is a plain function taking a
migrated store and raising :class:`AssertionError` (or an unexpected exception) when the store
does not behave like the Protocol says. Run them one by one from your own tests::

    import pytest
    from decisionloop.testing.metadata_conformance import METADATA_STORE_CHECKS

    @pytest.fixture
    def store(tmp_path):
        store = MyStore(...)
        store.migrate()
        yield store
        store.close()

    @pytest.mark.parametrize("check", METADATA_STORE_CHECKS, ids=lambda c: c.__name__)
    def test_my_store(check, store):
        check(store)

or all at once with :func:`check_metadata_store`. Each check is meant for a freshly migrated,
empty store, but works on one that already holds data: it uses its own fresh data set, model
and environment names, and compares the audit trail against a mark taken before it writes. It
does need the store to itself while it runs (no other writers).

The audit trail is part of the contract: every write appends exactly one event, in the same
transaction, with the action and resource spelled as in :data:`AUDIT_ACTIONS`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    AuditEvent,
    Deployment,
    ModelVersion,
    NewModelVersion,
    Run,
    Snapshot,
)
from decisionloop.errors import Conflict, GateFailed, NotFound

MetadataStoreCheck = Callable[[MetadataStore], None]

#: The audit vocabulary: action -> how its resource is spelled.
AUDIT_ACTIONS: dict[str, str] = {
    "snapshot.create": "dataset:{dataset}",
    "run.start": "run:{run_id}",
    "run.finished": "run:{run_id}",
    "run.failed": "run:{run_id}",
    "model_version.register": "model:{model}/{version}",
    "alias.set": "model:{model}@{alias}",
    "alias.delete": "model:{model}@{alias}",
    "deployment.create": "deployment:{environment}/{model}",
}

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


# -- helpers ---------------------------------------------------------------------------------


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")


@contextlib.contextmanager
def _raises(
    error: type[BaseException] | tuple[type[BaseException], ...], what: str
) -> Iterator[None]:
    names = " or ".join(e.__name__ for e in error) if isinstance(error, tuple) else error.__name__
    try:
        yield
    except error:
        return
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__}({exc}), expected {names}"
        ) from exc
    raise AssertionError(f"{what}: did not raise {names}")


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


# -- checks ----------------------------------------------------------------------------------


def check_implements_protocol(store: MetadataStore) -> None:
    """The store is a runtime :class:`MetadataStore` with a non-empty string ``url``."""
    _expect(isinstance(store, MetadataStore), f"{store!r} does not implement MetadataStore")
    _expect(isinstance(store.url, str) and bool(store.url), f"url must be a string: {store.url!r}")


def check_migrate_is_idempotent(store: MetadataStore) -> None:
    """``migrate()`` on a migrated store changes nothing and keeps the data; writes still work."""
    dataset = f"ds-{_uid()}"
    snapshot = _add_snapshot(store, dataset, _hash())
    version = _register(store, f"model-{_uid()}")
    before = _mark(store)
    store.migrate()
    store.migrate()
    _no_new_events(store, before, "migrate() twice")
    _expect_equal(store.datasets.get_snapshot(snapshot.id), snapshot, "snapshot after migrate()")
    _expect_equal(
        store.models.get_version(version.model_name, 1), version, "version after migrate()"
    )
    again = _register(store, version.model_name)
    _expect_equal(again.version, 2, "version registered after migrate()")


def check_snapshot_add_get_list(store: MetadataStore) -> None:
    """``add_snapshot`` stores every field; ``get_snapshot`` and ``list_snapshots`` return it."""
    dataset = f"ds-{_uid()}"
    content_hash = _hash()
    mark = _mark(store)
    start = datetime.now(UTC)
    snapshot = store.datasets.add_snapshot(
        dataset,
        content_hash=content_hash,
        row_count=7043,
        columns=RICH_JSON,
        artifact_key=f"datasets/{dataset}/{content_hash}.parquet",
        source="s3://bucket/telco → churn.csv",
        actor=_ACTOR,
    )
    end = datetime.now(UTC)
    _expect(isinstance(snapshot, Snapshot), f"add_snapshot returned {snapshot!r}")
    _expect(isinstance(snapshot.id, str) and bool(snapshot.id), f"snapshot id {snapshot.id!r}")
    _expect_equal(snapshot.dataset, dataset, "snapshot.dataset")
    _expect_equal(snapshot.content_hash, content_hash, "snapshot.content_hash")
    _expect_equal(snapshot.row_count, 7043, "snapshot.row_count")
    _expect_same_json(snapshot.columns, RICH_JSON, "snapshot.columns")
    _expect_equal(snapshot.source, "s3://bucket/telco → churn.csv", "snapshot.source")
    _expect_utc(snapshot.created_at, "snapshot.created_at", near=(start, end))
    _expect_events(
        store, mark, [("snapshot.create", f"dataset:{dataset}")], "add_snapshot (new content)"
    )

    stored = store.datasets.get_snapshot(snapshot.id)
    _expect_equal(stored, snapshot, "get_snapshot(id)")
    _expect_same_json(stored.columns, RICH_JSON, "get_snapshot(id).columns")
    _expect_equal(store.datasets.list_snapshots(dataset), [snapshot], "list_snapshots(dataset)")
    _expect(snapshot in store.datasets.list_snapshots(), "list_snapshots() misses the new snapshot")
    _expect_equal(store.datasets.list_snapshots(f"ds-{_uid()}"), [], "list_snapshots(unknown)")
    with _raises(NotFound, "get_snapshot(unknown id)"):
        store.datasets.get_snapshot(uuid.uuid4().hex)


def check_snapshot_same_hash_is_deduplicated(store: MetadataStore) -> None:
    """The same content of the same data set returns the existing snapshot, without an event."""
    dataset = f"ds-{_uid()}"
    content_hash = _hash()
    first = _add_snapshot(store, dataset, content_hash, row_count=10)
    mark = _mark(store)
    second = _add_snapshot(store, dataset, content_hash, row_count=10)
    _expect_equal(second.id, first.id, "id of a snapshot with the same hash")
    _expect_equal(second, first, "snapshot returned for the same hash")
    _no_new_events(store, mark, "add_snapshot of the same hash")
    _expect_equal(
        [s.id for s in store.datasets.list_snapshots(dataset)], [first.id], "list after dedupe"
    )

    other = f"ds-{_uid()}"
    elsewhere = _add_snapshot(store, other, content_hash, row_count=10)
    _expect(elsewhere.id != first.id, "same hash in another data set reused the snapshot id")
    _expect_equal(elsewhere.dataset, other, "dataset of the same hash in another data set")
    changed = _add_snapshot(store, dataset, _hash(), row_count=11)
    _expect(changed.id != first.id, "new content reused the snapshot id")
    _expect_events(
        store,
        mark,
        [("snapshot.create", f"dataset:{other}"), ("snapshot.create", f"dataset:{dataset}")],
        "add_snapshot of new content",
    )


def check_snapshot_list_newest_first(store: MetadataStore) -> None:
    """``list_snapshots`` returns newest first, filters by data set and honours ``limit``."""
    dataset, other = f"ds-{_uid()}", f"ds-{_uid()}"
    made = []
    for n in range(4):
        made.append(_add_snapshot(store, dataset, _hash(), row_count=n))
        _add_snapshot(store, other, _hash(), row_count=n)
    newest_first = list(reversed(made))
    _expect_equal(store.datasets.list_snapshots(dataset), newest_first, "list_snapshots(dataset)")
    _expect_equal(
        store.datasets.list_snapshots(dataset, limit=2), newest_first[:2], "list(limit=2)"
    )
    everything = store.datasets.list_snapshots(limit=8)
    _expect_equal(len(everything), 8, "list_snapshots(limit=8) over both data sets")
    _expect_equal({s.dataset for s in everything}, {dataset, other}, "data sets in list()")
    stamps = [s.created_at for s in everything]
    _expect_equal(stamps, sorted(stamps, reverse=True), "list_snapshots() created_at order")


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


def check_model_versions_numbered_per_model(store: MetadataStore) -> None:
    """Versions count 1, 2, 3 per model, independently for two interleaved models."""
    first, second = f"model-a-{_uid()}", f"model-b-{_uid()}"
    mark = _mark(store)
    order = [first, second, first, first, second, second]
    got = [(model, _register(store, model).version) for model in order]
    _expect_equal(
        got,
        [(first, 1), (second, 1), (first, 2), (first, 3), (second, 2), (second, 3)],
        "(model, version) of interleaved registrations",
    )
    _expect_equal(_versions(store.models.list_versions(first)), [3, 2, 1], "list_versions(a)")
    _expect_equal(_versions(store.models.list_versions(second)), [3, 2, 1], "list_versions(b)")
    _expect_events(
        store,
        mark,
        [("model_version.register", f"model:{m}/{v}") for m, v in got],
        "register()",
    )


def check_model_version_round_trip(store: MetadataStore) -> None:
    """Every field of a registered version comes back exactly; ``created_at`` is aware UTC."""
    model = f"model-{_uid()}"
    run = _start_run(store, model)
    new = NewModelVersion(
        model_name=model,
        artifact_key=f"models/{model}/1/modèle → 東京.ubj",
        artifact_sha256="ab" * 32,
        signature=RICH_JSON,
        metrics=RICH_METRICS,
        params={"max_depth": 6, "eta": 0.05, "objective": "binary:logistic", "grid": RICH_JSON},
        gate_passed=False,
        gate_report={
            "passed": False,
            "gates": [{"metric": "auc", "min": 0.9, "value": 0.8734512345678901, "blocking": True}],
            "note": "ne passe pas → 不合格",
        },
        run_id=run.id,
        snapshot_hash="cd" * 32,
        code_version="v1.2.3+ü",
    )
    start = datetime.now(UTC)
    registered = store.models.register(new, actor=_ACTOR)
    end = datetime.now(UTC)
    for what, version in (
        ("register()", registered),
        ("get_version()", store.models.get_version(model, 1)),
        ("list_versions()[0]", store.models.list_versions(model)[0]),
    ):
        _expect(isinstance(version, ModelVersion), f"{what} returned {version!r}")
        _expect_equal(version.model_name, model, f"{what}.model_name")
        _expect_equal(version.version, 1, f"{what}.version")
        _expect_equal(version.run_id, run.id, f"{what}.run_id")
        _expect_equal(version.artifact_key, new.artifact_key, f"{what}.artifact_key")
        _expect_equal(version.artifact_sha256, new.artifact_sha256, f"{what}.artifact_sha256")
        _expect_same_json(version.signature, new.signature, f"{what}.signature")
        _expect_same_json(version.metrics, new.metrics, f"{what}.metrics")
        _expect_same_json(version.params, new.params, f"{what}.params")
        _expect_equal(version.snapshot_hash, new.snapshot_hash, f"{what}.snapshot_hash")
        _expect_equal(version.code_version, new.code_version, f"{what}.code_version")
        _expect(version.gate_passed is False, f"{what}.gate_passed: {version.gate_passed!r}")
        _expect_same_json(version.gate_report, new.gate_report, f"{what}.gate_report")
        _expect_utc(version.created_at, f"{what}.created_at", near=(start, end))
        _expect_equal(version.aliases, (), f"{what}.aliases")
    _expect_equal(store.models.get_version(model, 1), registered, "get_version() vs register()")
    passed = _register(store, model, gate_passed=True)
    _expect(store.models.get_version(model, 2).gate_passed is True, "gate_passed=True stored")
    _expect_equal(passed.run_id, None, "run_id left out")
    _expect_equal(store.models.get_version(model, 2), passed, "get_version() of a plain version")


def check_list_models(store: MetadataStore) -> None:
    """``list_models`` shows each model once with its latest version and its aliases."""
    first, second = f"model-a-{_uid()}", f"model-b-{_uid()}"
    for _ in range(3):
        _register(store, first)
    _register(store, second)
    store.models.set_alias(first, "champion", 2, actor=_ACTOR)
    store.models.set_alias(first, "challenger", 3, actor=_ACTOR)
    models = [m for m in store.models.list_models() if m.name in (first, second)]
    _expect_equal(sorted(m.name for m in models), [first, second], "models listed (once each)")
    by_name = {m.name: m for m in models}
    _expect_equal(by_name[first].latest_version, 3, "latest_version of a")
    _expect_equal(
        by_name[first].aliases, {"champion": 2, "challenger": 3}, "aliases of a in list_models()"
    )
    _expect_equal(by_name[second].latest_version, 1, "latest_version of b")
    _expect_equal(by_name[second].aliases, {}, "aliases of b in list_models()")
    for model in models:
        _expect_utc(model.created_at, f"created_at of {model.name}")
    _register(store, second)
    again = {m.name: m for m in store.models.list_models()}
    _expect_equal(again[second].latest_version, 2, "latest_version of b after a registration")


def check_get_version_and_alias(store: MetadataStore) -> None:
    """``get_version`` and ``get_by_alias`` find the version; its ``aliases`` name its aliases."""
    model = f"model-{_uid()}"
    versions = [_register(store, model) for _ in range(3)]
    store.models.set_alias(model, "staging", 2, actor=_ACTOR)
    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    store.models.set_alias(model, "shadow", 3, actor=_ACTOR)
    staged = store.models.get_by_alias(model, "staging")
    _expect_equal(staged.version, 2, "get_by_alias(staging).version")
    _expect_equal(staged.artifact_key, versions[1].artifact_key, "get_by_alias(staging) artifact")
    _expect_equal(sorted(staged.aliases), ["champion", "staging"], "aliases of version 2")
    _expect_equal(store.models.get_by_alias(model, "champion"), staged, "get_by_alias(champion)")
    _expect_equal(store.models.get_version(model, 2), staged, "get_version(2) vs get_by_alias")
    _expect_equal(store.models.get_version(model, 3).aliases, ("shadow",), "aliases of version 3")
    _expect_equal(store.models.get_version(model, 1).aliases, (), "aliases of version 1")
    listed = {v.version: sorted(v.aliases) for v in store.models.list_versions(model)}
    _expect_equal(
        listed, {3: ["shadow"], 2: ["champion", "staging"], 1: []}, "aliases in list_versions()"
    )


def check_unknown_model_version_alias_not_found(store: MetadataStore) -> None:
    """Unknown models, versions and aliases raise :class:`NotFound` and write nothing."""
    model = f"model-{_uid()}"
    unknown = f"model-{_uid()}"
    _register(store, model)
    store.models.set_alias(model, "staging", 1, actor=_ACTOR)
    mark = _mark(store)
    with _raises(NotFound, "get_version(unknown model, 1)"):
        store.models.get_version(unknown, 1)
    with _raises(NotFound, "get_version(model, unknown version)"):
        store.models.get_version(model, 2)
    with _raises(NotFound, "get_by_alias(model, unknown alias)"):
        store.models.get_by_alias(model, "nope")
    with _raises(NotFound, "get_by_alias(unknown model, alias of another model)"):
        store.models.get_by_alias(unknown, "staging")
    with _raises(NotFound, "list_versions(unknown model)"):
        store.models.list_versions(unknown)
    with _raises(NotFound, "set_alias(model, alias, unknown version)"):
        store.models.set_alias(model, "staging", 7, actor=_ACTOR)
    with _raises(NotFound, "set_alias(unknown model, ...)"):
        store.models.set_alias(unknown, "staging", 1, actor=_ACTOR)
    _expect_equal(store.models.get_by_alias(model, "staging").version, 1, "alias after refusal")
    _expect(
        unknown not in {m.name for m in store.models.list_models()},
        "a failed lookup created the model",
    )
    _no_new_events(store, mark, "lookups of unknown models, versions and aliases")


def check_set_alias_moves_and_audits_previous(store: MetadataStore) -> None:
    """``set_alias`` moves an alias; its audit event records the version it pointed at before."""
    model, other = f"model-{_uid()}", f"model-{_uid()}"
    for _ in range(3):
        _register(store, model)
    _register(store, other)
    mark = _mark(store)
    store.models.set_alias(model, "staging", 1, actor=_ACTOR)
    store.models.set_alias(model, "staging", 3, actor=_ACTOR)
    store.models.set_alias(model, "staging", 2, actor=_ACTOR)
    store.models.set_alias(other, "staging", 1, actor=_ACTOR)
    events = _expect_events(
        store,
        mark,
        [("alias.set", f"model:{model}@staging")] * 3 + [("alias.set", f"model:{other}@staging")],
        "set_alias()",
    )
    moves = [(e.details.get("version"), e.details.get("previous")) for e in events]
    _expect_equal(moves, [(1, None), (3, 1), (2, 3), (1, None)], "(version, previous) in details")
    _expect_equal(store.models.get_by_alias(model, "staging").version, 2, "alias after moves")
    _expect_equal(store.models.get_by_alias(other, "staging").version, 1, "other model's alias")
    _expect_equal(store.models.get_version(model, 3).aliases, (), "aliases of the old target")
    _expect_equal(store.models.get_version(model, 1).aliases, (), "aliases of the first target")
    _expect_equal(store.models.get_version(model, 2).aliases, ("staging",), "aliases of target")


def check_champion_requires_passed_gate(store: MetadataStore) -> None:
    """``set_alias('champion')`` on a version that failed its gates raises :class:`GateFailed`
    and changes nothing: no alias, no audit event. Other aliases may point at it."""
    model = f"model-{_uid()}"
    _register(store, model, gate_passed=False)
    _register(store, model, gate_passed=True)
    _register(store, model, gate_passed=False)
    mark = _mark(store)
    with _raises(GateFailed, "set_alias(champion) on a version that failed gates"):
        store.models.set_alias(model, "champion", 1, actor=_ACTOR)
    with _raises(NotFound, "get_by_alias(champion) after the refusal"):
        store.models.get_by_alias(model, "champion")
    _expect_equal(store.models.get_version(model, 1).aliases, (), "aliases after the refusal")
    _no_new_events(store, mark, "refused set_alias(champion)")

    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    after = _mark(store)
    with _raises(GateFailed, "moving champion to a version that failed gates"):
        store.models.set_alias(model, "champion", 3, actor=_ACTOR)
    _expect_equal(store.models.get_by_alias(model, "champion").version, 2, "champion kept")
    _no_new_events(store, after, "refused move of champion")
    listed = {m.name: m for m in store.models.list_models()}[model]
    _expect_equal(listed.aliases, {"champion": 2}, "aliases after refused move")

    store.models.set_alias(model, "challenger", 3, actor=_ACTOR)
    _expect_equal(
        store.models.get_by_alias(model, "challenger").version, 3, "other alias on failed version"
    )
    _expect_events(
        store,
        mark,
        [("alias.set", f"model:{model}@champion"), ("alias.set", f"model:{model}@challenger")],
        "set_alias() around refusals",
    )


def check_delete_alias(store: MetadataStore) -> None:
    """``delete_alias`` removes the alias (one audit event); other aliases stay."""
    model = f"model-{_uid()}"
    _register(store, model)
    _register(store, model)
    store.models.set_alias(model, "staging", 1, actor=_ACTOR)
    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    mark = _mark(store)
    store.models.delete_alias(model, "staging", actor=_ACTOR)
    _expect_events(store, mark, [("alias.delete", f"model:{model}@staging")], "delete_alias()")
    with _raises(NotFound, "get_by_alias() of a deleted alias"):
        store.models.get_by_alias(model, "staging")
    _expect_equal(store.models.get_version(model, 1).aliases, (), "aliases after delete")
    _expect_equal(store.models.get_by_alias(model, "champion").version, 2, "other alias kept")
    listed = {m.name: m for m in store.models.list_models()}[model]
    _expect_equal(listed.aliases, {"champion": 2}, "list_models() aliases after delete")
    _expect_equal(listed.latest_version, 2, "latest_version after delete_alias")

    gone = _mark(store)
    # deleting what is not there is a no-op or NotFound; it is not a write either way
    with contextlib.suppress(NotFound):
        store.models.delete_alias(model, "staging", actor=_ACTOR)
    _no_new_events(store, gone, "delete_alias() of an absent alias")
    store.models.set_alias(model, "staging", 2, actor=_ACTOR)
    _expect_equal(store.models.get_by_alias(model, "staging").version, 2, "alias set again")


def check_deployments_replace_previous_active(store: MetadataStore) -> None:
    """``create`` marks the model's active deployment in that environment as ``replaced``;
    other environments and other models keep theirs."""
    model, other = f"model-{_uid()}", f"model-{_uid()}"
    prod, staging = f"prod-{_uid()}", f"staging-{_uid()}"
    for _ in range(3):
        _register(store, model)
    _register(store, other)
    mark = _mark(store)
    start = datetime.now(UTC)
    first = store.deployments.create(
        environment=prod, model_name=model, version=1, strategy="replace", actor=_ACTOR
    )
    _expect(isinstance(first, Deployment), f"create returned {first!r}")
    _expect(isinstance(first.id, str) and bool(first.id), f"deployment id {first.id!r}")
    _expect_equal(
        (first.environment, first.model_name, first.version, first.strategy, first.status),
        (prod, model, 1, "replace", "active"),
        "first deployment",
    )
    _expect_utc(first.created_at, "deployment.created_at", near=(start, datetime.now(UTC)))
    neighbour = store.deployments.create(
        environment=prod, model_name=other, version=1, strategy="replace", actor=_ACTOR
    )
    staged = store.deployments.create(
        environment=staging, model_name=model, version=3, strategy="shadow", actor=_ACTOR
    )
    second = store.deployments.create(
        environment=prod, model_name=model, version=2, strategy="canary", actor=_ACTOR
    )
    _expect_equal(second.status, "active", "status of the new deployment")
    _expect(second.id != first.id, "a new deployment reused the id")

    in_prod = store.deployments.list(prod)
    _expect_equal(
        [d.id for d in in_prod], [second.id, neighbour.id, first.id], "list(prod), newest first"
    )
    status = {d.id: d.status for d in in_prod}
    _expect_equal(status[first.id], "replaced", "previous active deployment of the model")
    _expect_equal(status[neighbour.id], "active", "other model's deployment in the environment")
    _expect_equal(in_prod[0], second, "the new deployment as listed")
    _expect_equal(store.deployments.list(staging), [staged], "list(staging) untouched")
    everything = store.deployments.list()
    _expect({second.id, staged.id, first.id} <= {d.id for d in everything}, "list() misses some")
    stamps = [d.created_at for d in everything]
    _expect_equal(stamps, sorted(stamps, reverse=True), "list() created_at order")
    _expect_events(
        store,
        mark,
        [
            ("deployment.create", f"deployment:{prod}/{model}"),
            ("deployment.create", f"deployment:{prod}/{other}"),
            ("deployment.create", f"deployment:{staging}/{model}"),
            ("deployment.create", f"deployment:{prod}/{model}"),
        ],
        "deployments.create()",
    )
    third = store.deployments.create(
        environment=prod, model_name=model, version=3, strategy="replace", actor=_ACTOR
    )
    active = [d.id for d in store.deployments.list(prod) if d.model_name == model]
    statuses = [d.status for d in store.deployments.list(prod) if d.model_name == model]
    _expect_equal(active, [third.id, second.id, first.id], "deployments of the model in prod")
    _expect_equal(statuses, ["active", "replaced", "replaced"], "one active deployment")


def check_audit_append_list_count(store: MetadataStore) -> None:
    """``append`` returns the event id; ``list`` is newest first, filters by resource and honours
    ``limit``; ``count`` counts every event."""
    resource, other = f"custom:{_uid()}", f"custom:{_uid()}"
    mark = _mark(store)
    start = datetime.now(UTC)
    ids = []
    for n in range(5):
        ids.append(
            store.audit.append(
                actor=_ACTOR,
                action="custom.event",
                resource=resource if n % 2 == 0 else other,
                details={"n": n, "payload": RICH_JSON},
            )
        )
    end = datetime.now(UTC)
    _expect(all(isinstance(i, int) for i in ids), f"append() returned {ids!r}")
    _expect_equal(ids, sorted(set(ids)), "append() ids are unique and increasing")
    _expect(ids[0] > mark.last_id, "append() id not above the ids before it")
    _expect_equal(store.audit.count(), mark.count + 5, "count() after five appends")

    newest = store.audit.list(limit=5)
    _expect_equal([e.id for e in newest], list(reversed(ids)), "list(limit=5), newest first")
    _expect_equal([e.details["n"] for e in newest], [4, 3, 2, 1, 0], "details of listed events")
    _expect_same_json(newest[0].details["payload"], RICH_JSON, "details round trip")
    for event in newest:
        _expect_equal(
            (event.actor, event.action), (_ACTOR, "custom.event"), "event actor and action"
        )
        _expect_utc(event.at, "event.at", near=(start, end))
    _expect_equal([e.at for e in newest], sorted((e.at for e in newest), reverse=True), "at order")
    mine = store.audit.list(resource=resource)
    _expect_equal([e.id for e in mine], [ids[4], ids[2], ids[0]], "list(resource=...)")
    _expect_equal({e.resource for e in mine}, {resource}, "resources in list(resource=...)")
    _expect_equal(
        [e.id for e in store.audit.list(resource=resource, limit=2)],
        [ids[4], ids[2]],
        "list(resource=..., limit=2)",
    )
    _expect_equal(store.audit.list(resource=f"custom:{_uid()}"), [], "list(unknown resource)")
    _expect_equal(len(store.audit.list(limit=2)), 2, "list(limit=2)")


def check_every_write_is_audited_once(store: MetadataStore) -> None:
    """A whole loop of writes leaves exactly one event per write, in order, and none for reads
    or refused writes."""
    dataset, model = f"ds-{_uid()}", f"model-{_uid()}"
    env = f"prod-{_uid()}"
    mark = _mark(store)
    snapshot = _add_snapshot(store, dataset, "f" * 64)
    _add_snapshot(store, dataset, "f" * 64)  # dedupe: no event
    run = _start_run(store, model, snapshot_id=snapshot.id)
    store.runs.finish(run.id, status="finished", metrics={"auc": 0.9}, actor=_ACTOR)
    with contextlib.suppress(Conflict):
        store.runs.finish(run.id, status="finished", metrics={"auc": 0.9}, actor=_ACTOR)
    _register(store, model, run_id=run.id, snapshot_hash=snapshot.content_hash)
    _register(store, model, gate_passed=False)
    store.models.set_alias(model, "champion", 1, actor=_ACTOR)
    with contextlib.suppress(GateFailed):
        store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    store.models.set_alias(model, "challenger", 2, actor=_ACTOR)
    store.models.delete_alias(model, "challenger", actor=_ACTOR)
    store.deployments.create(
        environment=env, model_name=model, version=1, strategy="replace", actor=_ACTOR
    )
    # reads write nothing
    store.datasets.list_snapshots(dataset)
    store.runs.list(model)
    store.models.list_models()
    store.models.list_versions(model)
    store.models.get_by_alias(model, "champion")
    store.deployments.list(env)
    _expect_events(
        store,
        mark,
        [
            ("snapshot.create", f"dataset:{dataset}"),
            ("run.start", f"run:{run.id}"),
            ("run.finished", f"run:{run.id}"),
            ("model_version.register", f"model:{model}/1"),
            ("model_version.register", f"model:{model}/2"),
            ("alias.set", f"model:{model}@champion"),
            ("alias.set", f"model:{model}@challenger"),
            ("alias.delete", f"model:{model}@challenger"),
            ("deployment.create", f"deployment:{env}/{model}"),
        ],
        "a loop of writes",
    )
    _expect_equal(
        [e.action for e in store.audit.list(resource=f"model:{model}/1")],
        ["model_version.register"],
        "events of version 1 by resource",
    )


#: Every check, in a sensible order; each one needs only a migrated store.
METADATA_STORE_CHECKS: list[MetadataStoreCheck] = [
    check_implements_protocol,
    check_migrate_is_idempotent,
    check_snapshot_add_get_list,
    check_snapshot_same_hash_is_deduplicated,
    check_snapshot_list_newest_first,
    check_run_lifecycle,
    check_run_finish_twice_conflicts,
    check_run_list_and_not_found,
    check_model_versions_numbered_per_model,
    check_model_version_round_trip,
    check_list_models,
    check_get_version_and_alias,
    check_unknown_model_version_alias_not_found,
    check_set_alias_moves_and_audits_previous,
    check_champion_requires_passed_gate,
    check_delete_alias,
    check_deployments_replace_previous_active,
    check_audit_append_list_count,
    check_every_write_is_audited_once,
]


def check_metadata_store(store: MetadataStore) -> None:
    """Run every check against ``store`` (migrated; it may already hold data)."""
    for check in METADATA_STORE_CHECKS:
        check(store)


__all__ = [
    "AUDIT_ACTIONS",
    "METADATA_STORE_CHECKS",
    "RICH_JSON",
    "RICH_METRICS",
    "MetadataStoreCheck",
    "check_audit_append_list_count",
    "check_champion_requires_passed_gate",
    "check_delete_alias",
    "check_deployments_replace_previous_active",
    "check_every_write_is_audited_once",
    "check_get_version_and_alias",
    "check_implements_protocol",
    "check_list_models",
    "check_metadata_store",
    "check_migrate_is_idempotent",
    "check_model_version_round_trip",
    "check_model_versions_numbered_per_model",
    "check_run_finish_twice_conflicts",
    "check_run_lifecycle",
    "check_run_list_and_not_found",
    "check_set_alias_moves_and_audits_previous",
    "check_snapshot_add_get_list",
    "check_snapshot_list_newest_first",
    "check_snapshot_same_hash_is_deduplicated",
    "check_unknown_model_version_alias_not_found",
]
