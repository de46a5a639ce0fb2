"""Batches, their quarantine and the snapshots they make, recorded in one transaction; and the
checkpoints where stream sources resume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import (
    _audit,
    _insert_ignore,
    _Repo,
    _utc,
    new_id,
    now,
)
from decisionloop.backends.metadata.records import (
    Batch,
    NewBatch,
    NewQuarantine,
    NewSnapshot,
    Quarantined,
    Snapshot,
)
from decisionloop.backends.metadata.repositories import insert_snapshot
from decisionloop.errors import Conflict, Invalid, NotFound

QUARANTINE_STATUSES = ("open", "replayed", "discarded")


class SqlIngestion(_Repo):
    def record_batch(
        self,
        dataset: str,
        batch: NewBatch,
        *,
        quarantined: Sequence[NewQuarantine],
        snapshot: NewSnapshot | None,
        actor: str,
        replayed: Sequence[int] = (),
    ) -> tuple[Batch, Snapshot | None]:
        """Record a batch, its quarantined rows and the snapshot it makes, atomically.

        ``replayed`` names quarantine entries this batch re-ingested; they are marked replayed.
        """
        if batch.rows_in != batch.rows_stored + batch.rows_quarantined + batch.rows_skipped:
            raise Conflict(
                f"batch counts do not add up: {batch.rows_in} in != {batch.rows_stored} stored + "
                f"{batch.rows_quarantined} quarantined + {batch.rows_skipped} skipped",
                hint="this is a bug in the source or the engine; nothing was recorded",
            )
        at = now()
        values: dict[str, Any] = {
            "id": new_id(),
            "dataset": dataset,
            "origin": batch.origin,
            "verdict": batch.verdict,
            "rows_in": batch.rows_in,
            "rows_stored": batch.rows_stored,
            "rows_quarantined": batch.rows_quarantined,
            "rows_skipped": batch.rows_skipped,
            "report": batch.report,
            "artifact_key": batch.artifact_key,
            "sha256": batch.sha256,
            "created_at": at,
        }
        with self.store.write() as conn:
            _insert_ignore(conn, t.datasets, {"name": dataset, "created_at": at})
            conn.execute(t.batches.insert().values(**values))
            if quarantined:
                conn.execute(
                    t.quarantine.insert(),
                    [
                        {
                            "dataset": dataset,
                            "batch_id": values["id"],
                            "kind": q.kind,
                            "position": q.position,
                            "reasons": q.reasons,
                            "payload": q.payload,
                            "status": "open",
                            "created_at": at,
                        }
                        for q in quarantined
                    ],
                )
            if replayed:
                self._resolve(conn, replayed, "replayed", f"batch {values['id']}", at)
            _audit(
                conn,
                actor=actor,
                action="batch.ingest",
                resource=f"dataset:{dataset}",
                details={
                    "batch": values["id"],
                    "origin": batch.origin,
                    "verdict": batch.verdict,
                    "in": batch.rows_in,
                    "stored": batch.rows_stored,
                    "quarantined": batch.rows_quarantined,
                    "skipped": batch.rows_skipped,
                },
            )
            made = insert_snapshot(conn, dataset, snapshot, actor=actor) if snapshot else None
            if made is not None:
                values["snapshot_id"] = made.id
                conn.execute(
                    t.batches.update()
                    .where(t.batches.c.id == values["id"])
                    .values(snapshot_id=made.id)
                )
        return _batch(values), made

    def current_snapshot_id(self, dataset: str) -> str | None:
        """The snapshot made by the data set's most recent batch that made one."""
        with self.store.read() as conn:
            found = conn.execute(
                sa.select(t.batches.c.snapshot_id)
                .where(t.batches.c.dataset == dataset, t.batches.c.snapshot_id.is_not(None))
                .order_by(t.batches.c.created_at.desc())
                .limit(1)
            ).scalar()
        return str(found) if found is not None else None

    def get_batch(self, batch_id: str) -> Batch:
        with self.store.read() as conn:
            row = (
                conn.execute(sa.select(t.batches).where(t.batches.c.id == batch_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no batch {batch_id!r}", hint="see `decisionloop data report`")
        return _batch(row)

    def list_batches(self, dataset: str | None = None, limit: int = 100) -> list[Batch]:
        query = sa.select(t.batches).order_by(t.batches.c.created_at.desc()).limit(limit)
        if dataset is not None:
            query = query.where(t.batches.c.dataset == dataset)
        with self.store.read() as conn:
            return [_batch(row) for row in conn.execute(query).mappings()]

    def has_origin(self, dataset: str, origin: str) -> bool:
        """Whether a batch with this origin (e.g. a file and its hash) was recorded."""
        with self.store.read() as conn:
            found = conn.execute(
                sa.select(t.batches.c.id)
                .where(t.batches.c.dataset == dataset, t.batches.c.origin == origin)
                .limit(1)
            ).first()
        return found is not None

    def quarantined_positions(self, dataset: str, positions: Sequence[str]) -> set[str]:
        """Which of these source positions are already in the quarantine (any status)."""
        found: set[str] = set()
        with self.store.read() as conn:
            for start in range(0, len(positions), 500):
                chunk = list(positions[start : start + 500])
                rows = conn.execute(
                    sa.select(t.quarantine.c.position).where(
                        t.quarantine.c.dataset == dataset, t.quarantine.c.position.in_(chunk)
                    )
                )
                found.update(str(row[0]) for row in rows)
        return found

    def list_quarantine(
        self, dataset: str | None = None, *, status: str | None = "open", limit: int = 100
    ) -> list[Quarantined]:
        query = sa.select(t.quarantine).order_by(t.quarantine.c.id).limit(limit)
        if dataset is not None:
            query = query.where(t.quarantine.c.dataset == dataset)
        if status is not None:
            query = query.where(t.quarantine.c.status == status)
        with self.store.read() as conn:
            return [_quarantined(row) for row in conn.execute(query).mappings()]

    def count_quarantine(self, dataset: str | None = None, *, status: str | None = "open") -> int:
        query = sa.select(sa.func.count()).select_from(t.quarantine)
        if dataset is not None:
            query = query.where(t.quarantine.c.dataset == dataset)
        if status is not None:
            query = query.where(t.quarantine.c.status == status)
        with self.store.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def get_quarantined(self, entry_id: int) -> Quarantined:
        with self.store.read() as conn:
            row = (
                conn.execute(sa.select(t.quarantine).where(t.quarantine.c.id == entry_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(
                f"no quarantine entry {entry_id}", hint="see `decisionloop data quarantine list`"
            )
        return _quarantined(row)

    def resolve(self, ids: Sequence[int], status: str, resolution: str, *, actor: str) -> int:
        """Mark open entries ``replayed`` or ``discarded``; returns how many changed."""
        if status not in QUARANTINE_STATUSES[1:]:
            raise Conflict(f"cannot resolve to {status!r}", hint="use replayed or discarded")
        with self.store.write() as conn:
            changed = self._resolve(conn, ids, status, resolution, now())
            _audit(
                conn,
                actor=actor,
                action=f"quarantine.{status}",
                resource="quarantine",
                details={"ids": list(ids)[:1000], "changed": changed, "resolution": resolution},
            )
        return changed

    @staticmethod
    def _resolve(
        conn: sa.Connection, ids: Sequence[int], status: str, resolution: str, at: Any
    ) -> int:
        changed = 0
        for start in range(0, len(ids), 500):
            result = conn.execute(
                t.quarantine.update()
                .where(
                    t.quarantine.c.id.in_(list(ids[start : start + 500])),
                    t.quarantine.c.status == "open",
                )
                .values(status=status, resolved_at=at, resolution=resolution)
            )
            changed += result.rowcount
        return changed

    # -- stream checkpoints --------------------------------------------------------------

    def get_checkpoints(self, source: str) -> dict[str, str]:
        """Partition -> position of the last acknowledged record, for one source ({} if none)."""
        c = t.stream_checkpoints.c
        with self.store.read() as conn:
            rows = conn.execute(sa.select(c.partition, c.position).where(c.source == source))
            return {str(partition): str(position) for partition, position in rows}

    def set_checkpoints(self, source: str, positions: Mapping[str, str], *, actor: str) -> None:
        """Upsert the positions of these partitions (others keep theirs), in one transaction."""
        values = dict(positions.items())
        if not isinstance(source, str) or not source:
            raise Invalid(
                f"a checkpoint needs a source name, got {source!r}",
                hint="name the stream and its consumer group",
            )
        for item in values.items():
            if not all(isinstance(text, str) and text for text in item):
                raise Invalid(
                    f"checkpoint partitions and positions must be non-empty text, got {item!r}",
                    hint="e.g. {'shardId-000000000000': '49590338271490256608559692538361571095'}",
                )
        if not values:
            return
        at = now()
        rows = [
            {"source": source, "partition": k, "position": v, "updated_at": at}
            for k, v in values.items()
        ]
        with self.store.write() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = insert(t.stream_checkpoints)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["source", "partition"],
                    set_={
                        "position": statement.excluded.position,
                        "updated_at": statement.excluded.updated_at,
                    },
                ),
                rows,
            )
            _audit(
                conn,
                actor=actor,
                action="checkpoint.set",
                resource=f"source:{source}",
                details={"positions": dict(list(values.items())[:1000]), "count": len(values)},
            )


def _batch(row: RowMapping | dict[str, Any]) -> Batch:
    return Batch(**{**row, "created_at": _utc(row["created_at"])})


def _quarantined(row: RowMapping | dict[str, Any]) -> Quarantined:
    return Quarantined(
        **{**row, "created_at": _utc(row["created_at"]), "resolved_at": _utc(row["resolved_at"])}
    )
