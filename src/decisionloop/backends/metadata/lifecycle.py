"""Version lifecycle (candidate -> staging -> production -> archived) and alias history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import sqlalchemy as sa

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import _audit, _lock_model, _Repo, now
from decisionloop.backends.metadata.records import AliasEvent, StatusChange, VersionStatus
from decisionloop.errors import Conflict, Invalid, NotFound

VERSION_STATUSES: tuple[VersionStatus, ...] = get_args(VersionStatus)

#: The one place the allowed lifecycle moves are declared: status -> where it may go next.
TRANSITIONS: dict[VersionStatus, tuple[VersionStatus, ...]] = {
    "candidate": ("staging", "archived"),
    "staging": ("production", "candidate", "archived"),
    "production": ("archived", "staging"),
    "archived": ("candidate",),
}


def parse_status(text: str) -> VersionStatus:
    """``text`` as a :data:`VersionStatus`, or :class:`Invalid` naming the known ones."""
    for status in VERSION_STATUSES:
        if text == status:
            return status
    raise Invalid(
        f"unknown version status {text!r}", hint=f"use one of: {', '.join(VERSION_STATUSES)}"
    )


def check_transition(name: str, version: int, current: VersionStatus, to: VersionStatus) -> None:
    """Raise :class:`Conflict` (with the allowed moves as the hint) unless ``current -> to`` is
    declared in :data:`TRANSITIONS`."""
    allowed = TRANSITIONS[current]
    if to not in allowed:
        raise Conflict(
            f"{name}/{version} is {current} and cannot move to {to}",
            hint=f"from {current} a version may move to: {', '.join(allowed)}",
        )


class SqlLifecycle(_Repo):
    def set_status(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        *,
        actor: str,
        reason: str | None = None,
    ) -> StatusChange:
        """Move a version to ``status`` along :data:`TRANSITIONS`, recording who, when, why."""
        status = parse_status(status)
        at = now()
        with self.store.write() as conn:
            _lock_model(conn, name)
            current = conn.execute(
                sa.select(t.model_versions.c.status).where(
                    t.model_versions.c.model_name == name, t.model_versions.c.version == version
                )
            ).scalar()
            if current is None:
                raise NotFound(
                    f"model {name!r} has no version {version}",
                    hint="see `decisionloop models show NAME` for its versions",
                )
            current_status = parse_status(current)
            check_transition(name, version, current_status, status)
            conn.execute(
                t.model_versions.update()
                .where(t.model_versions.c.model_name == name, t.model_versions.c.version == version)
                .values(status=status)
            )
            conn.execute(
                t.version_status_history.insert().values(
                    model_name=name,
                    version=version,
                    from_status=current_status,
                    to_status=status,
                    actor=actor,
                    at=at,
                    reason=reason,
                )
            )
            _audit(
                conn,
                actor=actor,
                action="version.status",
                resource=f"model:{name}/{version}",
                details={"from": current_status, "to": status, "reason": reason},
            )
        return StatusChange(name, version, current_status, status, actor, at, reason)

    def status_history(self, name: str, version: int) -> list[StatusChange]:
        """The version's lifecycle moves, oldest first (empty while it is a fresh candidate)."""
        query = (
            sa.select(t.version_status_history)
            .where(
                t.version_status_history.c.model_name == name,
                t.version_status_history.c.version == version,
            )
            .order_by(t.version_status_history.c.id)
        )
        with self.store.read() as conn:
            return [
                StatusChange(
                    row.model_name,
                    row.version,
                    parse_status(row.from_status) if row.from_status else None,
                    parse_status(row.to_status),
                    row.actor,
                    _stamp(row.at),
                    row.reason,
                )
                for row in conn.execute(query)
            ]

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of the model's ``alias`` (or of all its aliases), oldest first."""
        query = (
            sa.select(t.alias_history)
            .where(t.alias_history.c.model_name == name)
            .order_by(t.alias_history.c.at, t.alias_history.c.id)
        )
        if alias is not None:
            query = query.where(t.alias_history.c.alias == alias)
        with self.store.read() as conn:
            return [
                AliasEvent(
                    row.model_name,
                    row.alias,
                    row.version,
                    row.previous_version,
                    row.actor,
                    _stamp(row.at),
                    row.reason,
                )
                for row in conn.execute(query)
            ]

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """The version ``name@alias`` pointed at at ``when`` (None: not yet set, or deleted)."""
        if when.tzinfo is None:
            raise Invalid(
                f"naive datetime {when.isoformat()}",
                hint="give a timezone-aware time, e.g. 2026-03-01T00:00:00+00:00",
            )
        when = when.astimezone(UTC)  # SQLite compares the stored UTC text
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(t.alias_history.c.version)
                .where(
                    t.alias_history.c.model_name == name,
                    t.alias_history.c.alias == alias,
                    t.alias_history.c.at <= when,
                )
                .order_by(t.alias_history.c.at.desc(), t.alias_history.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else row.version


def _stamp(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def no_approval_required(change: StatusChange) -> None:
    """Today's approval policy: every lifecycle change is approved. Governance replaces this
    with a callable that raises :class:`~decisionloop.errors.Forbidden` to refuse a change."""
    del change
