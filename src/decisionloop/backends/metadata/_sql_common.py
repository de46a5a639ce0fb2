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


def _audit(
    conn: Connection, *, actor: str, action: str, resource: str, details: dict[str, Any]
) -> int:
    result = conn.execute(
        t.audit_events.insert().values(
            at=now(), actor=actor, action=action, resource=resource, details=details
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(table).values(**values).on_conflict_do_nothing())


def _lock_model(conn: Connection, name: str) -> None:
    """Lock the model's row until the transaction ends (PostgreSQL; SQLite writers are already
    serialized), so concurrent writes to one model's versions and aliases take turns."""
    conn.execute(
        sa.select(t.registered_models.c.name)
        .where(t.registered_models.c.name == name)
        .with_for_update()
    )


class _Repo:
    def __init__(self, store: SqlMetadataStore) -> None:
        self.store = store


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    # JSONB hands whole-number floats back as ints; metrics are floats by contract
    return {name: float(value) for name, value in metrics.items()}
