"""Conformance checks of alias history and version lifecycle status."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.lifecycle import TRANSITIONS, VERSION_STATUSES
from decisionloop.errors import Conflict, Invalid, NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    _expect_events,
    _expect_utc,
    _mark,
    _no_new_events,
    _register,
    _uid,
)


def _tick() -> datetime:
    """A moment strictly between two writes (stamps are microseconds; sleep past the clock's
    granularity on either side)."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def check_alias_history_records_every_move(store: MetadataStore) -> None:
    """Every ``set_alias`` and ``delete_alias`` is kept, oldest first, with version, previous
    version, actor, time and reason; other aliases and models have their own history."""
    model = f"model-{_uid()}"
    for _ in range(3):
        _register(store, model)
    start = datetime.now(UTC)
    store.models.set_alias(model, "champion", 1, actor=_ACTOR)
    store.models.set_alias(model, "champion", 3, actor=_ACTOR, reason="better test_auc")
    store.models.set_alias(model, "challenger", 2, actor=_ACTOR)
    store.models.delete_alias(model, "champion", actor=_ACTOR, reason="incident 42")
    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    end = datetime.now(UTC)
    history = store.lifecycle.alias_history(model, "champion")
    _expect_equal(
        [(e.alias, e.version, e.previous_version, e.reason) for e in history],
        [
            ("champion", 1, None, None),
            ("champion", 3, 1, "better test_auc"),
            ("champion", None, 3, "incident 42"),
            ("champion", 2, None, None),
        ],
        "alias_history(champion): (alias, version, previous, reason)",
    )
    for event in history:
        _expect_equal((event.model_name, event.actor), (model, _ACTOR), "event model and actor")
        _expect_utc(event.at, "alias event at", near=(start, end))
    stamps = [event.at for event in history]
    _expect_equal(stamps, sorted(stamps), "alias_history is oldest first")
    everything = store.lifecycle.alias_history(model)
    _expect_equal(len(everything), 5, "alias_history(model) holds every alias's moves")
    _expect_equal(
        [e.alias for e in everything].count("challenger"), 1, "challenger moves in full history"
    )
    _expect_equal(store.lifecycle.alias_history(f"model-{_uid()}", "champion"), [], "unknown")


def check_alias_at_answers_for_any_time(store: MetadataStore) -> None:
    """``alias_at(when)`` is the version the alias pointed at then: None before the first
    assignment and after a deletion, the new version right after each move."""
    model = f"model-{_uid()}"
    for _ in range(2):
        _register(store, model)
    before_first = _tick()
    store.models.set_alias(model, "champion", 1, actor=_ACTOR)
    on_one = _tick()
    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    on_two = _tick()
    store.models.delete_alias(model, "champion", actor=_ACTOR)
    after_delete = _tick()
    store.models.set_alias(model, "champion", 1, actor=_ACTOR)
    back_on_one = _tick()
    answers = [
        store.lifecycle.alias_at(model, "champion", when)
        for when in (before_first, on_one, on_two, after_delete, back_on_one)
    ]
    _expect_equal(answers, [None, 1, 2, None, 1], "alias_at() before, between and after moves")
    # the same moment in another timezone gives the same answer
    elsewhere = on_one.astimezone(timezone(timedelta(hours=5)))
    _expect_equal(store.lifecycle.alias_at(model, "champion", elsewhere), 1, "alias_at(+05:00)")
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    _expect_equal(store.lifecycle.alias_at(model, "champion", long_ago), None, "alias_at(2001)")
    _expect_equal(store.lifecycle.alias_at(model, "staging", back_on_one), None, "other alias")
    with _raises(Invalid, "alias_at() with a naive datetime"):
        store.lifecycle.alias_at(model, "champion", datetime(2030, 1, 1))


def check_version_status_transitions(store: MetadataStore) -> None:
    """New versions are candidates; ``set_status`` follows ``TRANSITIONS`` (one audit event and
    one history row each) and refuses other moves with Conflict, changing nothing."""
    model = f"model-{_uid()}"
    first = _register(store, model)
    _expect_equal(first.status, "candidate", "status of a new version")
    _expect_equal(store.models.get_version(model, 1).status, "candidate", "stored status")
    mark = _mark(store)
    start = datetime.now(UTC)
    change = store.lifecycle.set_status(model, 1, "staging", actor=_ACTOR, reason="shadow ok")
    _expect_equal(
        (change.from_status, change.to_status, change.reason, change.actor),
        ("candidate", "staging", "shadow ok", _ACTOR),
        "the returned change",
    )
    store.lifecycle.set_status(model, 1, "production", actor=_ACTOR)
    store.lifecycle.set_status(model, 1, "archived", actor=_ACTOR, reason="replaced")
    _expect_equal(store.models.get_version(model, 1).status, "archived", "status after moves")
    _expect_equal(store.models.list_versions(model)[0].status, "archived", "listed status")
    history = store.lifecycle.status_history(model, 1)
    _expect_equal(
        [(h.from_status, h.to_status, h.reason) for h in history],
        [
            ("candidate", "staging", "shadow ok"),
            ("staging", "production", None),
            ("production", "archived", "replaced"),
        ],
        "status_history()",
    )
    for entry in history:
        _expect_utc(entry.at, "status change at", near=(start, datetime.now(UTC)))
    _expect_events(store, mark, [("version.status", f"model:{model}/1")] * 3, "set_status()")

    refused = _mark(store)
    with _raises(Conflict, "archived -> production (not a declared transition)"):
        store.lifecycle.set_status(model, 1, "production", actor=_ACTOR)
    with _raises(Conflict, "archived -> archived"):
        store.lifecycle.set_status(model, 1, "archived", actor=_ACTOR)
    with _raises(Invalid, "set_status() to an unknown status"):
        store.lifecycle.set_status(model, 1, "retired", actor=_ACTOR)  # type: ignore[arg-type]  # the wrong value under test
    with _raises(NotFound, "set_status() of an unknown version"):
        store.lifecycle.set_status(model, 9, "staging", actor=_ACTOR)
    _expect_equal(store.models.get_version(model, 1).status, "archived", "status after refusals")
    _expect_equal(len(store.lifecycle.status_history(model, 1)), 3, "history after refusals")
    _no_new_events(store, refused, "refused set_status()")
    _expect_equal(set(TRANSITIONS), set(VERSION_STATUSES), "every status has its transitions")
    _expect(all(s in VERSION_STATUSES for t in TRANSITIONS.values() for s in t), "known targets")
