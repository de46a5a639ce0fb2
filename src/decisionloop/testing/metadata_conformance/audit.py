"""Conformance checks of the audit trail of a metadata store."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.errors import Conflict, GateFailed
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    RICH_JSON,
    _add_snapshot,
    _expect_events,
    _expect_same_json,
    _expect_utc,
    _mark,
    _register,
    _start_run,
    _uid,
)

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
    "checkpoint.set": "source:{source}",
    "run.log_params": "run:{run_id}",
    "run.log_metrics": "run:{run_id}",
    "run.set_tags": "run:{run_id}",
    "version.status": "model:{model}/{version}",
    "tag.set": "model:{model} or model:{model}/{version}",
    "tag.delete": "model:{model} or model:{model}/{version}",
    "description.set": "model:{model} or model:{model}/{version}",
}


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
