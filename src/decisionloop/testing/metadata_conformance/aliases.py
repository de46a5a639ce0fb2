"""Conformance checks of the model aliases (and the champion gate) of a metadata store."""

from __future__ import annotations

import contextlib

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.errors import GateFailed, NotFound
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    _expect_events,
    _mark,
    _no_new_events,
    _register,
    _uid,
)


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
