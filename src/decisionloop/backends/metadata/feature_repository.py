"""The SQL feature repository: feature store definitions (every applied version kept) and the
materializations of feature views."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import _audit, _insert_ignore, _Repo, _utc, now
from decisionloop.backends.metadata.records import (
    FEATURE_KINDS,
    FeatureApplyResult,
    FeatureDefinition,
    FeatureKind,
    Materialization,
    MaterializationMode,
    NewFeatureDefinition,
    NewMaterialization,
)
from decisionloop.errors import Invalid, NotFound

MATERIALIZATION_MODES: tuple[MaterializationMode, ...] = ("full", "incremental")
_MAX_NAME, _MAX_VERSION = 200, 128

_defs = t.feature_definitions
_mats = t.feature_materializations


class SqlFeatures(_Repo):
    def apply(
        self,
        definitions: Sequence[NewFeatureDefinition],
        *,
        remove: Sequence[tuple[FeatureKind, str]] = (),
        actor: str,
    ) -> FeatureApplyResult:
        """Record the definitions and removals in one transaction (see the Protocol)."""
        new_by_key = _check_apply(definitions, remove)
        removals = sorted(set(remove))
        added: list[FeatureDefinition] = []
        changed: list[FeatureDefinition] = []
        unchanged: list[FeatureDefinition] = []
        removed: list[FeatureDefinition] = []
        at = now()
        with self.store.write() as conn:
            # Lock every touched name in one global order, so concurrent applies take turns
            # per name and never deadlock.
            for kind, name in sorted({*new_by_key, *removals}):
                if (kind, name) in new_by_key:
                    _insert_ignore(
                        conn, t.feature_names, {"kind": kind, "name": name, "created_at": at}
                    )
                _lock_name(conn, kind, name)
                current = _current_row(conn, kind, name)
                new = new_by_key.get((kind, name))
                if new is None:
                    if current is None:
                        raise NotFound(
                            f"no {kind} named {name!r} to remove",
                            hint="list the applied definitions with list_definitions()",
                        )
                    if current["removed_at"] is None:
                        removed.append(_remove(conn, current, at, actor=actor))
                    continue
                live = current if current is not None and current["removed_at"] is None else None
                if live is not None and live["version"] == new.version:
                    unchanged.append(_definition(live))
                    continue
                previous = None if live is None else str(live["version"])
                record = _insert_version(conn, new, at, actor=actor, previous=previous)
                (added if live is None else changed).append(record)
        return FeatureApplyResult(added, changed, unchanged, removed)

    def list_definitions(
        self, kind: FeatureKind | None = None, *, include_removed: bool = False
    ) -> list[FeatureDefinition]:
        """The current version of each (kind, name), sorted by kind then name."""
        newest = sa.select(sa.func.max(_defs.c.id)).group_by(_defs.c.kind, _defs.c.name)
        if kind is not None:
            newest = newest.where(_defs.c.kind == _kind(kind))
        query = sa.select(_defs).where(_defs.c.id.in_(newest.scalar_subquery()))
        if not include_removed:
            query = query.where(_defs.c.removed_at.is_(None))
        with self.store.read() as conn:
            rows = conn.execute(query).mappings().all()
        # sorted here, not in SQL: PostgreSQL's collation would order names unlike SQLite's
        return sorted((_definition(row) for row in rows), key=lambda d: (d.kind, d.name))

    def get_definition(
        self, kind: FeatureKind, name: str, version: str | None = None
    ) -> FeatureDefinition:
        """The current version (or the newest entry of ``version``, removed or not)."""
        query = sa.select(_defs).where(_defs.c.kind == _kind(kind), _defs.c.name == name)
        if version is not None:
            query = query.where(_defs.c.version == version)
        with self.store.read() as conn:
            row = conn.execute(query.order_by(_defs.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            raise NotFound(
                f"no {kind} named {name!r}"
                if version is None
                else f"{kind} {name!r} has no version {version!r}",
                hint="see list_definitions() and definition_history(kind, name)",
            )
        if version is None and row["removed_at"] is not None:
            raise NotFound(
                f"{kind} {name!r} was removed at {_stamp(row['removed_at']).isoformat()}",
                hint="ask for one of its versions to read it, or apply it again",
            )
        return _definition(row)

    def definition_history(self, kind: FeatureKind, name: str) -> list[FeatureDefinition]:
        """Every version ever applied of one definition, oldest first (empty if never applied)."""
        query = (
            sa.select(_defs)
            .where(_defs.c.kind == _kind(kind), _defs.c.name == name)
            .order_by(_defs.c.id)
        )
        with self.store.read() as conn:
            return [_definition(row) for row in conn.execute(query).mappings()]

    def record_materialization(self, new: NewMaterialization, *, actor: str) -> Materialization:
        """Record a finished materialization of a feature view (times must be timezone-aware)."""
        values = _materialization_values(new)
        values.update(finished_at=now(), actor=actor)
        with self.store.write() as conn:
            result = conn.execute(_mats.insert().values(**values))
            key = result.inserted_primary_key
            values["id"] = int(key[0]) if key else 0
            _audit(
                conn,
                actor=actor,
                action="feature.materialize",
                resource=f"feature_view:{new.view}",
                details={
                    "id": values["id"],
                    "version": new.view_version,
                    "mode": new.mode,
                    "start": _iso(values["window_start"]),
                    "end": _iso(values["window_end"]),
                    "watermark": _iso(values["watermark"]),
                    "rows_written": new.rows_written,
                    "snapshot": new.snapshot_id,
                },
            )
        return _materialization(values)

    def last_materialization(
        self, view: str, *, view_version: str | None = None
    ) -> Materialization | None:
        """The newest materialization of ``view`` (of one of its versions), or None."""
        query = sa.select(_mats).where(_mats.c.view == view)
        if view_version is not None:
            query = query.where(_mats.c.view_version == view_version)
        with self.store.read() as conn:
            row = conn.execute(query.order_by(_mats.c.id.desc()).limit(1)).mappings().first()
        return None if row is None else _materialization(row)

    def list_materializations(
        self, view: str | None = None, limit: int = 100
    ) -> list[Materialization]:
        """Materializations (of one view), newest first."""
        query = sa.select(_mats).order_by(_mats.c.id.desc()).limit(limit)
        if view is not None:
            query = query.where(_mats.c.view == view)
        with self.store.read() as conn:
            return [_materialization(row) for row in conn.execute(query).mappings()]


def _check_apply(
    definitions: Sequence[NewFeatureDefinition], remove: Sequence[tuple[FeatureKind, str]]
) -> dict[tuple[str, str], NewFeatureDefinition]:
    """The definitions by (kind, name); Invalid for bad kinds, names, versions or duplicates."""
    by_key: dict[tuple[str, str], NewFeatureDefinition] = {}
    for new in definitions:
        key = (_kind(new.kind), _name(new.name))
        if not isinstance(new.version, str) or not 0 < len(new.version) <= _MAX_VERSION:
            raise Invalid(
                f"{new.kind} {new.name!r} has a bad version {new.version!r}",
                hint=f"a version is the definition's hash: 1-{_MAX_VERSION} characters",
            )
        if not isinstance(new.spec, dict):
            raise Invalid(
                f"{new.kind} {new.name!r}: the spec must be a JSON object",
                hint="pass the definition as a dict",
            )
        if key in by_key:
            raise Invalid(
                f"{new.kind} {new.name!r} is given twice in one apply",
                hint="give each (kind, name) once",
            )
        by_key[key] = new
    for kind, name in remove:
        if (_kind(kind), _name(name)) in by_key:
            raise Invalid(
                f"{kind} {name!r} is both applied and removed",
                hint="apply it or remove it, not both",
            )
    return by_key


def _kind(kind: str) -> FeatureKind:
    for known in FEATURE_KINDS:
        if kind == known:
            return known
    raise Invalid(f"unknown feature kind {kind!r}", hint=f"use one of {', '.join(FEATURE_KINDS)}")


def _name(name: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
        raise Invalid(f"bad definition name {name!r}", hint=f"a name is 1-{_MAX_NAME} characters")
    return name


def _lock_name(conn: Connection, kind: str, name: str) -> None:
    """Lock the name's row until the transaction ends (PostgreSQL; SQLite writers are already
    serialized), so two applies never both decide the next version of one definition."""
    conn.execute(
        sa.select(t.feature_names.c.name)
        .where(t.feature_names.c.kind == kind, t.feature_names.c.name == name)
        .with_for_update()
    )


def _current_row(conn: Connection, kind: str, name: str) -> RowMapping | None:
    return (
        conn.execute(
            sa.select(_defs)
            .where(_defs.c.kind == kind, _defs.c.name == name)
            .order_by(_defs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )


def _insert_version(
    conn: Connection,
    new: NewFeatureDefinition,
    at: datetime,
    *,
    actor: str,
    previous: str | None,
) -> FeatureDefinition:
    values: dict[str, Any] = {
        "kind": new.kind,
        "name": new.name,
        "version": new.version,
        "spec": new.spec,
        "applied_at": at,
        "applied_by": actor,
        "removed_at": None,
    }
    conn.execute(_defs.insert().values(**values))
    _audit(
        conn,
        actor=actor,
        action="feature.apply",
        resource=f"{new.kind}:{new.name}",
        details={"version": new.version, "previous": previous},
    )
    return FeatureDefinition(**values)


def _remove(
    conn: Connection, current: RowMapping, at: datetime, *, actor: str
) -> FeatureDefinition:
    conn.execute(_defs.update().where(_defs.c.id == current["id"]).values(removed_at=at))
    _audit(
        conn,
        actor=actor,
        action="feature.remove",
        resource=f"{current['kind']}:{current['name']}",
        details={"version": current["version"]},
    )
    return _definition({**current, "removed_at": at})


def _definition(row: RowMapping | dict[str, Any]) -> FeatureDefinition:
    return FeatureDefinition(
        kind=_kind(row["kind"]),
        name=row["name"],
        version=row["version"],
        spec=row["spec"],
        applied_at=_stamp(row["applied_at"]),
        applied_by=row["applied_by"],
        removed_at=_utc(row["removed_at"]),
    )


def _materialization_values(new: NewMaterialization) -> dict[str, Any]:
    """The row for ``new``, its times in UTC; Invalid for a bad mode, window, count or time."""
    mode = _mode(new.mode)
    if not isinstance(new.view_version, str) or not 0 < len(new.view_version) <= _MAX_VERSION:
        raise Invalid(
            f"bad view version {new.view_version!r}",
            hint=f"a version is 1-{_MAX_VERSION} characters",
        )
    if new.snapshot_id is not None and not 0 < len(new.snapshot_id) <= 32:
        raise Invalid(f"bad snapshot id {new.snapshot_id!r}", hint="pass a snapshot's id")
    for what, count in (("rows_read", new.rows_read), ("rows_written", new.rows_written)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid(f"{what} must be a count, got {count!r}", hint="pass an int >= 0")
    start = None if new.start is None else _aware(new.start, "start")
    end = _aware(new.end, "end")
    watermark = None if new.watermark is None else _aware(new.watermark, "watermark")
    if start is not None and start > end:
        raise Invalid(
            f"the window ({start.isoformat()}, {end.isoformat()}] ends before it starts",
            hint="start must not be after end",
        )
    return {
        "view": _name(new.view),
        "view_version": new.view_version,
        "mode": mode,
        "window_start": start,
        "window_end": end,
        "watermark": watermark,
        "rows_read": new.rows_read,
        "rows_written": new.rows_written,
        "store_url": new.store_url,
        "started_at": _aware(new.started_at, "started_at"),
        "snapshot_id": new.snapshot_id,
    }


def _aware(value: datetime, what: str) -> datetime:
    """``value`` in UTC (SQLite keeps the text without its offset); naive times are refused."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid(
            f"{what} must be a timezone-aware datetime, got {value!r}",
            hint="give timezone-aware times, e.g. 2026-03-01T00:00:00+00:00",
        )
    return value.astimezone(UTC)


def _stamp(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite hands it back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _materialization(row: RowMapping | dict[str, Any]) -> Materialization:
    return Materialization(
        id=int(row["id"]),
        view=row["view"],
        view_version=row["view_version"],
        mode=_mode(row["mode"]),
        start=_utc(row["window_start"]),
        end=_stamp(row["window_end"]),
        watermark=_utc(row["watermark"]),
        rows_read=int(row["rows_read"]),
        rows_written=int(row["rows_written"]),
        store_url=row["store_url"],
        started_at=_stamp(row["started_at"]),
        finished_at=_stamp(row["finished_at"]),
        actor=row["actor"],
        snapshot_id=row["snapshot_id"],
    )


def _mode(value: str) -> MaterializationMode:
    for known in MATERIALIZATION_MODES:
        if value == known:
            return known
    raise Invalid(f"unknown materialization mode {value!r}", hint="use full or incremental")
