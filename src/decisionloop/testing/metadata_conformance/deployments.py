"""Conformance checks of the deployments of a metadata store."""

from __future__ import annotations

from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    Deployment,
)
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    _expect_events,
    _expect_utc,
    _mark,
    _register,
    _uid,
)


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
