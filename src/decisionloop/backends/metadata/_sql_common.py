"""Helpers shared by the SQL metadata repositories: clocks, ids, auditing, locking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from decisionloop.backends.metadata import schema as t

if TYPE_CHECKING:
    from decisionloop.backends.metadata.sql import SqlMetadataStore


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    """A stored time in UTC (SQLite hands back naive UTC times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _audit(
    conn: Connection, *, actor: str, action: str, resource: str, details: dict[str, Any]
) -> int:
    result = conn.execute(
        _INSERT_AUDIT,
        {"at": now(), "actor": actor, "action": action, "resource": resource, "details": details},
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


# Statements on every write path are built once: building and caching a statement costs more
# than SQLite executing it.
_INSERT_AUDIT = t.audit_events.insert()
_STATEMENTS: dict[tuple[str, ...], Any] = {}


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect."""
    key = ("ignore", conn.dialect.name, table.name)
    statement = _STATEMENTS.get(key)
    if statement is None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = _STATEMENTS[key] = insert(table).on_conflict_do_nothing()
    conn.execute(statement, values)


def _upsert(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any] | list[dict[str, Any]],
    *,
    keys: tuple[str, ...],
) -> None:
    """INSERT rows, or UPDATE the row with the same ``keys`` to the new values, on either
    dialect; ``values`` is one row or several with the same columns."""
    columns = values[0] if isinstance(values, list) else values
    key = ("upsert", conn.dialect.name, table.name, *keys, "|", *columns)
    statement = _STATEMENTS.get(key)
    if statement is None:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        statement = _STATEMENTS[key] = insert.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: insert.excluded[name] for name in columns if name not in keys},
        )
    conn.execute(statement, values)


def _lock_model(conn: Connection, name: str) -> None:
    """Lock the model's row until the transaction ends, so concurrent writes to one model's
    versions and aliases take turns. PostgreSQL only: SQLite writers are already serialized
    (BEGIN IMMEDIATE), and it has no row locks to take."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_MODEL, {"name": name})


_LOCK_MODEL = (
    sa.select(t.registered_models.c.name)
    .where(t.registered_models.c.name == sa.bindparam("name"))
    .with_for_update()
)


class _Repo:
    def __init__(self, store: SqlMetadataStore) -> None:
        self.store = store


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    # JSONB hands whole-number floats back as ints; metrics are floats by contract
    return {name: float(value) for name, value in metrics.items()}
