"""SQL implementations of the metadata repositories; each write audits in its transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import (
    _audit,
    _insert_ignore,
    _lock_model,
    _Repo,
    _utc,
    new_id,
    now,
)
from decisionloop.backends.metadata.catalog_repository import SqlCatalog
from decisionloop.backends.metadata.lifecycle import SqlLifecycle
from decisionloop.backends.metadata.model_repository import PROTECTED_ALIAS, SqlModels
from decisionloop.backends.metadata.records import (
    AuditEvent,
    Deployment,
    NewSnapshot,
    Snapshot,
)
from decisionloop.backends.metadata.run_repository import SqlRuns
from decisionloop.errors import NotFound


def insert_snapshot(conn: Connection, dataset: str, new: NewSnapshot, *, actor: str) -> Snapshot:
    """Record a snapshot in an open write transaction; the same content returns the existing."""
    _insert_ignore(conn, t.datasets, {"name": dataset, "created_at": now()})
    # Lock the data set's row so two adds of the same content never both insert.
    conn.execute(sa.select(t.datasets.c.name).where(t.datasets.c.name == dataset).with_for_update())
    existing = (
        conn.execute(
            sa.select(t.snapshots).where(
                t.snapshots.c.dataset == dataset, t.snapshots.c.content_hash == new.content_hash
            )
        )
        .mappings()
        .first()
    )
    if existing is not None:
        return _snapshot(existing)
    values = {
        "id": new_id(),
        "dataset": dataset,
        "content_hash": new.content_hash,
        "row_count": new.row_count,
        "columns": new.columns,
        "artifact_key": new.artifact_key,
        "source": new.source,
        "created_at": now(),
        "parent_id": new.parent_id,
        "batches": new.batches,
    }
    conn.execute(t.snapshots.insert().values(**values))
    _audit(
        conn,
        actor=actor,
        action="snapshot.create",
        resource=f"dataset:{dataset}",
        details={"snapshot": values["id"], "hash": new.content_hash, "rows": new.row_count},
    )
    return _snapshot(values)


class SqlDatasets(_Repo):
    def add_snapshot(
        self,
        dataset: str,
        *,
        content_hash: str,
        row_count: int,
        columns: dict[str, Any],
        artifact_key: str,
        source: str,
        actor: str,
    ) -> Snapshot:
        new = NewSnapshot(
            content_hash=content_hash,
            row_count=row_count,
            columns=columns,
            artifact_key=artifact_key,
            source=source,
            batches=[],
        )
        with self.store.write() as conn:
            return insert_snapshot(conn, dataset, new, actor=actor)

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        with self.store.read() as conn:
            row = (
                conn.execute(sa.select(t.snapshots).where(t.snapshots.c.id == snapshot_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no snapshot {snapshot_id!r}", hint="list them with the Python API")
        return _snapshot(row)

    def list_snapshots(self, dataset: str | None = None, limit: int = 100) -> list[Snapshot]:
        query = sa.select(t.snapshots).order_by(t.snapshots.c.created_at.desc()).limit(limit)
        if dataset is not None:
            query = query.where(t.snapshots.c.dataset == dataset)
        with self.store.read() as conn:
            return [_snapshot(row) for row in conn.execute(query).mappings()]


class SqlDeployments(_Repo):
    def create(
        self, *, environment: str, model_name: str, version: int, strategy: str, actor: str
    ) -> Deployment:
        values: dict[str, Any] = {
            "id": new_id(),
            "environment": environment,
            "model_name": model_name,
            "version": version,
            "strategy": strategy,
            "status": "active",
            "created_at": now(),
        }
        with self.store.write() as conn:
            # Two deployments of one model never both see no active one to replace.
            _lock_model(conn, model_name)
            known = conn.execute(
                sa.select(t.model_versions.c.version).where(
                    t.model_versions.c.model_name == model_name,
                    t.model_versions.c.version == version,
                )
            ).first()
            if known is None:
                raise NotFound(f"model {model_name!r} has no version {version} to deploy")
            conn.execute(
                t.deployments.update()
                .where(
                    t.deployments.c.environment == environment,
                    t.deployments.c.model_name == model_name,
                    t.deployments.c.status == "active",
                )
                .values(status="replaced")
            )
            conn.execute(t.deployments.insert().values(**values))
            _audit(
                conn,
                actor=actor,
                action="deployment.create",
                resource=f"deployment:{environment}/{model_name}",
                details={"id": values["id"], "version": version, "strategy": strategy},
            )
        return Deployment(**values)

    def list(self, environment: str | None = None) -> list[Deployment]:
        query = sa.select(t.deployments).order_by(t.deployments.c.created_at.desc())
        if environment is not None:
            query = query.where(t.deployments.c.environment == environment)
        with self.store.read() as conn:
            return [
                Deployment(**{**row, "created_at": _utc(row["created_at"])})
                for row in conn.execute(query).mappings()
            ]


class SqlAudit(_Repo):
    def append(self, *, actor: str, action: str, resource: str, details: dict[str, Any]) -> int:
        with self.store.write() as conn:
            return _audit(conn, actor=actor, action=action, resource=resource, details=details)

    def list(self, *, resource: str | None = None, limit: int = 100) -> list[AuditEvent]:
        query = sa.select(t.audit_events).order_by(t.audit_events.c.id.desc()).limit(limit)
        if resource is not None:
            query = query.where(t.audit_events.c.resource == resource)
        with self.store.read() as conn:
            return [
                AuditEvent(**{**row, "at": _utc(row["at"])})
                for row in conn.execute(query).mappings()
            ]

    def count(self) -> int:
        with self.store.read() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(t.audit_events)).scalar() or 0
            )


def _snapshot(row: RowMapping | dict[str, Any]) -> Snapshot:
    return Snapshot(**{**row, "created_at": _utc(row["created_at"])})


__all__ = [
    "PROTECTED_ALIAS",
    "SqlAudit",
    "SqlCatalog",
    "SqlDatasets",
    "SqlDeployments",
    "SqlLifecycle",
    "SqlModels",
    "SqlRuns",
    "new_id",
    "now",
]
