"""Conformance checks of the feature repository: definitions, their history, materializations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    FeatureDefinition,
    FeatureKind,
    Materialization,
    MaterializationMode,
    NewFeatureDefinition,
    NewMaterialization,
)
from decisionloop.errors import Invalid, NotFound
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
    _uid,
)

_PARIS = timezone(timedelta(hours=2))
_NEW_YORK = timezone(timedelta(hours=-5))


def _new(kind: FeatureKind, name: str, version: str, **spec: Any) -> NewFeatureDefinition:
    return NewFeatureDefinition(kind=kind, name=name, version=version, spec={"name": name, **spec})


def _keys(records: Sequence[FeatureDefinition]) -> list[tuple[str, str, str]]:
    return [(record.kind, record.name, record.version) for record in records]


def check_feature_apply_classifies_changes(store: MetadataStore) -> None:
    """``apply`` sorts each definition into added, changed (the new version) or unchanged, keeps
    specs exactly, and audits each change once as ``feature.apply`` with its version."""
    token = _uid()
    entity, view, service = f"customer-{token}", f"churn-{token}", f"svc-{token}"
    features = store.features
    mark = _mark(store)
    start = datetime.now(UTC)
    first = features.apply(
        [
            _new("feature_view", view, "v1", ttl_days=30, schema=RICH_JSON),
            _new("entity", entity, "e1", join_keys=["customer_id"]),
        ],
        actor=_ACTOR,
    )
    end = datetime.now(UTC)
    _expect_equal(
        _keys(first.added),
        [("entity", entity, "e1"), ("feature_view", view, "v1")],
        "first apply: added, sorted by kind then name",
    )
    _expect_equal((first.changed, first.unchanged, first.removed), ([], [], []), "first apply")
    for record in first.added:
        _expect_equal((record.applied_by, record.removed_at), (_ACTOR, None), "added record")
        _expect_utc(record.applied_at, "applied_at", near=(start, end))
    _expect_same_json(
        features.get_definition("feature_view", view).spec,
        {"name": view, "ttl_days": 30, "schema": RICH_JSON},
        "spec of the applied view",
    )

    second = features.apply(
        [
            _new("entity", entity, "e1", join_keys=["customer_id"]),
            _new("feature_view", view, "v2", ttl_days=7, schema=RICH_JSON),
            _new("feature_service", service, "s1", views=[view]),
        ],
        actor=_ACTOR,
    )
    _expect_equal(_keys(second.added), [("feature_service", service, "s1")], "second: added")
    _expect_equal(_keys(second.changed), [("feature_view", view, "v2")], "second: changed")
    _expect_equal(_keys(second.unchanged), [("entity", entity, "e1")], "second: unchanged")
    _expect_equal(second.removed, [], "second: removed")
    _expect_equal(second.unchanged[0], first.added[0], "an unchanged definition keeps its record")
    _expect_equal(second.changed[0].spec["ttl_days"], 7, "spec of the changed version")
    _expect_equal(features.get_definition("feature_view", view).version, "v2", "current version")

    events = _expect_events(
        store,
        mark,
        [
            ("feature.apply", f"entity:{entity}"),
            ("feature.apply", f"feature_view:{view}"),
            ("feature.apply", f"feature_service:{service}"),
            ("feature.apply", f"feature_view:{view}"),
        ],
        "two applies (the unchanged entity is not audited again)",
    )
    _expect_equal(
        [event.details.get("version") for event in events],
        ["e1", "v1", "s1", "v2"],
        "versions in the feature.apply details",
    )
    again = _mark(store)
    same = features.apply([_new("feature_view", view, "v2", ttl_days=7)], actor=_ACTOR)
    _expect_equal(_keys(same.unchanged), [("feature_view", view, "v2")], "re-apply: unchanged")
    _no_new_events(store, again, "applying the current version again")


def check_feature_history_keeps_every_version(store: MetadataStore) -> None:
    """A -> B -> A leaves A current and three history entries, oldest first; each version can
    be read by name, the newest entry of a repeated version answering."""
    view = f"orders-{_uid()}"
    features = store.features
    _expect_equal(features.definition_history("feature_view", view), [], "history of a new name")
    for version, ttl in (("A", 1), ("B", 2), ("A", 3)):
        features.apply([_new("feature_view", view, version, ttl=ttl)], actor=_ACTOR)
    history = features.definition_history("feature_view", view)
    _expect_equal(
        [(record.version, record.spec["ttl"]) for record in history],
        [("A", 1), ("B", 2), ("A", 3)],
        "definition_history after A -> B -> A",
    )
    _expect(
        history[0].applied_at <= history[1].applied_at <= history[2].applied_at,
        f"history not oldest first: {[r.applied_at for r in history]}",
    )
    current = features.get_definition("feature_view", view)
    _expect_equal((current.version, current.spec["ttl"]), ("A", 3), "current after A -> B -> A")
    _expect_equal(features.get_definition("feature_view", view, "B").spec["ttl"], 2, "version B")
    _expect_equal(features.get_definition("feature_view", view, "A"), history[2], "version A")
    _expect_equal(
        _keys([d for d in features.list_definitions("feature_view") if d.name == view]),
        [("feature_view", view, "A")],
        "list_definitions holds one current entry per name",
    )


def check_feature_remove_and_reapply(store: MetadataStore) -> None:
    """A removed definition leaves the list (unless asked for), keeps its history, is audited
    as ``feature.remove``; applied again it is added again. A failed apply records nothing."""
    token = _uid()
    entity, view = f"driver-{token}", f"trips-{token}"
    features = store.features
    features.apply([_new("entity", entity, "e1"), _new("feature_view", view, "v1")], actor=_ACTOR)
    mark = _mark(store)
    result = features.apply([], remove=[("feature_view", view)], actor=_ACTOR)
    _expect_equal(_keys(result.removed), [("feature_view", view, "v1")], "removed")
    _expect_equal((result.added, result.changed, result.unchanged), ([], [], []), "remove only")
    _expect_utc(result.removed[0].removed_at, "removed_at")
    names = [d.name for d in features.list_definitions() if d.name in (entity, view)]
    _expect_equal(names, [entity], "list_definitions() leaves removed definitions out")
    kept = [d for d in features.list_definitions(include_removed=True) if d.name == view]
    _expect_equal(len(kept), 1, "list_definitions(include_removed=True) holds the removed view")
    _expect(kept[0].removed_at is not None, "removed_at of a listed removed definition")
    with _raises(NotFound, "get_definition(removed view)"):
        features.get_definition("feature_view", view)
    _expect(features.get_definition("feature_view", view, "v1").removed_at is not None, "by ver")
    _expect_events(store, mark, [("feature.remove", f"feature_view:{view}")], "one removal")

    quiet = _mark(store)
    again = features.apply([], remove=[("feature_view", view)], actor=_ACTOR)
    _expect_equal(again.removed, [], "removing a removed definition")
    with _raises(NotFound, "apply(remove=[a name never applied])"):
        features.apply(
            [_new("entity", f"ghost-{token}", "g1")],
            remove=[("entity", f"never-{token}")],
            actor=_ACTOR,
        )
    with _raises(Invalid, "apply(the same name twice)"):
        features.apply([_new("entity", entity, "e2"), _new("entity", entity, "e3")], actor=_ACTOR)
    with _raises(Invalid, "apply(unknown kind)"):
        features.apply([_new("table", f"t-{token}", "t1")], actor=_ACTOR)  # type: ignore[arg-type]
    _expect_equal(features.definition_history("entity", f"ghost-{token}"), [], "failed apply")
    _expect_equal(features.get_definition("entity", entity).version, "e1", "after failed applies")
    _no_new_events(store, quiet, "a no-op removal and refused applies")

    back = features.apply([_new("feature_view", view, "v1")], actor=_ACTOR)
    _expect_equal(_keys(back.added), [("feature_view", view, "v1")], "re-applied: added")
    _expect_equal(features.get_definition("feature_view", view).removed_at, None, "re-applied")
    history = features.definition_history("feature_view", view)
    _expect_equal(
        [(r.version, r.removed_at is not None) for r in history],
        [("v1", True), ("v1", False)],
        "history after remove and re-apply",
    )
    _expect_events(
        store,
        mark,
        [("feature.remove", f"feature_view:{view}"), ("feature.apply", f"feature_view:{view}")],
        "remove, refused writes, re-apply",
    )


def check_feature_list_filters_and_sort(store: MetadataStore) -> None:
    """``list_definitions`` filters by kind and sorts by kind then name (by code point), whatever
    order the definitions were applied in."""
    token = _uid()
    names = [f"{token}-b", f"{token}-B", f"{token}-a", f"{token}_z"]
    kinds: list[FeatureKind] = ["on_demand_feature_view", "entity", "feature_view"]
    for kind in sorted(kinds, reverse=True):
        for name in sorted(names, reverse=True):
            store.features.apply([_new(kind, name, f"{kind}-{name}")], actor=_ACTOR)
    mine = [d for d in store.features.list_definitions() if d.name.startswith(token)]
    _expect_equal(
        [(d.kind, d.name) for d in mine],
        [(kind, name) for kind in sorted(kinds) for name in sorted(names)],
        "list_definitions() order",
    )
    for kind in kinds:
        listed = [d for d in store.features.list_definitions(kind) if d.name.startswith(token)]
        _expect_equal(
            _keys(listed),
            [(kind, name, f"{kind}-{name}") for name in sorted(names)],
            f"list_definitions({kind!r})",
        )
    services = store.features.list_definitions("feature_service")
    _expect_equal([d for d in services if d.name.startswith(token)], [], "no services listed")


def check_feature_get_definition_not_found(store: MetadataStore) -> None:
    """Unknown names and versions raise NotFound (with a hint); an unknown kind is Invalid."""
    view = f"payments-{_uid()}"
    store.features.apply([_new("feature_view", view, "v1")], actor=_ACTOR)
    mark = _mark(store)
    with _raises(NotFound, "get_definition(unknown name)"):
        store.features.get_definition("feature_view", f"ghost-{_uid()}")
    with _raises(NotFound, "get_definition(unknown version)"):
        store.features.get_definition("feature_view", view, "v2")
    with _raises(NotFound, "get_definition(right name, other kind)"):
        store.features.get_definition("entity", view)
    try:
        store.features.get_definition("feature_view", view, "v9")
    except NotFound as exc:
        _expect(bool(exc.hint), "NotFound of get_definition carries a hint")
    with _raises(Invalid, "list_definitions(unknown kind)"):
        store.features.list_definitions("table")  # type: ignore[arg-type]
    _expect_equal(store.features.get_definition("feature_view", view).version, "v1", "known")
    _no_new_events(store, mark, "reads")


def _materialization(
    view: str,
    version: str,
    end: datetime,
    *,
    mode: MaterializationMode = "incremental",
    start: datetime | None = None,
    watermark: datetime | None = None,
    rows: int = 10,
    snapshot_id: str | None = None,
) -> NewMaterialization:
    return NewMaterialization(
        view=view,
        view_version=version,
        mode=mode,
        start=start,
        end=end,
        watermark=watermark,
        rows_read=rows,
        rows_written=rows - 1,
        store_url=f"sqlite:///online/{view}.db",
        started_at=datetime(2026, 3, 1, 9, 30, tzinfo=_NEW_YORK),
        snapshot_id=snapshot_id,
    )


def check_materialization_round_trip(store: MetadataStore) -> None:
    """Every field comes back (times as the same instants, in UTC; None start, watermark and
    snapshot kept); audited as ``feature.materialize``; naive times and bad windows refused."""
    view = f"clicks-{_uid()}"
    mark = _mark(store)
    end = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=_PARIS)
    full = _materialization(view, "v1", end, mode="full", rows=1000)
    before = datetime.now(UTC)
    recorded = store.features.record_materialization(full, actor=_ACTOR)
    after = datetime.now(UTC)
    window_start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    snapshot_id = _uid() * 2
    later = _materialization(
        view,
        "v1",
        end + timedelta(hours=1),
        start=end,
        watermark=window_start,
        rows=5,
        snapshot_id=snapshot_id,
    )
    incremental = store.features.record_materialization(later, actor=_ACTOR)
    _expect(incremental.id > recorded.id, f"ids not increasing: {recorded.id}, {incremental.id}")
    for what, got in (
        ("record_materialization()", recorded),
        ("list_materializations()[1]", store.features.list_materializations(view)[1]),
    ):
        _expect_equal(
            (got.view, got.view_version, got.mode, got.start, got.watermark, got.snapshot_id),
            (view, "v1", "full", None, None, None),
            f"{what}: view, version, mode, start, watermark, snapshot_id",
        )
        _expect_equal((got.rows_read, got.rows_written), (1000, 999), f"{what}: row counts")
        _expect_equal(got.store_url, f"sqlite:///online/{view}.db", f"{what}: store_url")
        _expect_equal((got.end, got.actor), (end, _ACTOR), f"{what}: end, actor")
        _expect_equal(got.end.hour, 10, f"{what}: end in UTC")
        _expect_utc(got.end, f"{what}: end")
        _expect_equal(got.started_at, full.started_at, f"{what}: started_at")
        _expect_utc(got.started_at, f"{what}: started_at")
        _expect_utc(got.finished_at, f"{what}: finished_at", near=(before, after))
    stored = store.features.last_materialization(view)
    _expect(stored is not None, "last_materialization() after two records")
    assert stored is not None
    _expect_equal(stored, incremental, "last_materialization() is the newest")
    _expect_equal(
        (stored.start, stored.watermark, stored.snapshot_id),
        (end, window_start, snapshot_id),
        "start, watermark and snapshot_id",
    )
    _expect_utc(stored.start, "start")
    _expect_utc(stored.watermark, "watermark")
    _expect_events(
        store,
        mark,
        [("feature.materialize", f"feature_view:{view}")] * 2,
        "two materializations",
    )

    quiet = _mark(store)
    with _raises(Invalid, "record_materialization(naive end)"):
        naive = _materialization(view, "v1", end.replace(tzinfo=None))
        store.features.record_materialization(naive, actor=_ACTOR)
    with _raises(Invalid, "record_materialization(start after end)"):
        backwards = _materialization(view, "v1", end, start=end + timedelta(seconds=1))
        store.features.record_materialization(backwards, actor=_ACTOR)
    _expect_equal(len(store.features.list_materializations(view)), 2, "after refused records")
    _no_new_events(store, quiet, "refused materializations")


def check_last_materialization_per_view_and_version(store: MetadataStore) -> None:
    """``last_materialization`` answers per view and per view version; None when there is none."""
    token = _uid()
    view, other = f"sessions-{token}", f"carts-{token}"
    features = store.features
    _expect_equal(features.last_materialization(view), None, "before any materialization")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    first = features.record_materialization(_materialization(view, "v1", base), actor=_ACTOR)
    second = features.record_materialization(
        _materialization(view, "v2", base + timedelta(days=1), start=base), actor=_ACTOR
    )
    elsewhere = features.record_materialization(
        _materialization(other, "o1", base + timedelta(days=2)), actor=_ACTOR
    )
    _expect_equal(features.last_materialization(view), second, "last of the view")
    _expect_equal(features.last_materialization(view, view_version="v1"), first, "last of v1")
    _expect_equal(features.last_materialization(view, view_version="v2"), second, "last of v2")
    _expect_equal(features.last_materialization(other), elsewhere, "last of the other view")
    _expect_equal(
        features.last_materialization(view, view_version="o1"), None, "another view's version"
    )
    _expect_equal(features.last_materialization(f"ghost-{token}"), None, "an unknown view")


def check_list_materializations_order_and_limit(store: MetadataStore) -> None:
    """``list_materializations`` is newest first, filters by view and honours ``limit``."""
    token = _uid()
    view, other = f"ratings-{token}", f"reviews-{token}"
    base = datetime(2026, 2, 1, tzinfo=UTC)
    recorded: list[Materialization] = []
    for n, name in enumerate([view, other, view, view, other]):
        new = _materialization(name, "v1", base + timedelta(hours=n), rows=n + 1)
        recorded.append(store.features.record_materialization(new, actor=_ACTOR))
    ids = [m.id for m in recorded]
    _expect_equal(ids, sorted(set(ids)), "ids are unique and increasing")
    _expect_equal(
        [m.id for m in store.features.list_materializations(view)],
        [ids[3], ids[2], ids[0]],
        "list_materializations(view), newest first",
    )
    _expect_equal(
        [m.id for m in store.features.list_materializations(view, limit=2)],
        [ids[3], ids[2]],
        "list_materializations(view, limit=2)",
    )
    _expect_equal(
        store.features.list_materializations(limit=2),
        [recorded[4], recorded[3]],
        "list_materializations(limit=2) of all views",
    )
    _expect_equal(
        [m.rows_read for m in store.features.list_materializations(other)],
        [5, 2],
        "list_materializations(other view)",
    )
    _expect_equal(store.features.list_materializations(f"ghost-{token}"), [], "unknown view")
