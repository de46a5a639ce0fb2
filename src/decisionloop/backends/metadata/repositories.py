"""SQL implementations of the metadata repositories; each write audits in its transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata.records import (
    AuditEvent,
    Deployment,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    Run,
    RunStatus,
    Snapshot,
)
from decisionloop.errors import Conflict, GateFailed, NotFound

if TYPE_CHECKING:
    from decisionloop.backends.metadata.sql import SqlMetadataStore

PROTECTED_ALIAS = "champion"


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
        with self.store.write() as conn:
            _insert_ignore(conn, t.datasets, {"name": dataset, "created_at": now()})
            # Lock the data set's row so two adds of the same content never both insert.
            conn.execute(
                sa.select(t.datasets.c.name).where(t.datasets.c.name == dataset).with_for_update()
            )
            existing = (
                conn.execute(
                    sa.select(t.snapshots).where(
                        t.snapshots.c.dataset == dataset, t.snapshots.c.content_hash == content_hash
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
                "content_hash": content_hash,
                "row_count": row_count,
                "columns": columns,
                "artifact_key": artifact_key,
                "source": source,
                "created_at": now(),
            }
            conn.execute(t.snapshots.insert().values(**values))
            _audit(
                conn,
                actor=actor,
                action="snapshot.create",
                resource=f"dataset:{dataset}",
                details={"snapshot": values["id"], "hash": content_hash, "rows": row_count},
            )
            return _snapshot(values)

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


class SqlRuns(_Repo):
    def start(
        self,
        model_name: str,
        *,
        params: dict[str, Any],
        tags: dict[str, str],
        snapshot_id: str | None,
        code_version: str | None,
        actor: str,
    ) -> Run:
        values: dict[str, Any] = {
            "id": new_id(),
            "model_name": model_name,
            "status": "running",
            "params": params,
            "metrics": {},
            "tags": tags,
            "snapshot_id": snapshot_id,
            "code_version": code_version,
            "error": None,
            "started_at": now(),
            "ended_at": None,
        }
        with self.store.write() as conn:
            conn.execute(t.runs.insert().values(**values))
            _audit(
                conn,
                actor=actor,
                action="run.start",
                resource=f"run:{values['id']}",
                details={"model": model_name},
            )
        return _run(values)

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        metrics: dict[str, float],
        error: str | None = None,
        actor: str,
    ) -> Run:
        with self.store.write() as conn:
            updated = conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id, t.runs.c.status == "running")
                .values(status=status, metrics=metrics, error=error, ended_at=now())
            )
            if updated.rowcount != 1:
                exists = conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first()
                if exists is None:
                    raise NotFound(f"no run {run_id!r}")
                raise Conflict(f"run {run_id} is not running", hint="a run finishes once")
            _audit(
                conn,
                actor=actor,
                action=f"run.{status}",
                resource=f"run:{run_id}",
                details={"error": error} if error else {},
            )
        return self.get(run_id)

    def get(self, run_id: str) -> Run:
        with self.store.read() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        return _run(row)

    def list(self, model_name: str | None = None, limit: int = 100) -> list[Run]:
        query = sa.select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        if model_name is not None:
            query = query.where(t.runs.c.model_name == model_name)
        with self.store.read() as conn:
            return [_run(row) for row in conn.execute(query).mappings()]


class SqlModels(_Repo):
    def register(self, new: NewModelVersion, *, actor: str) -> ModelVersion:
        with self.store.write() as conn:
            _insert_ignore(
                conn,
                t.registered_models,
                {"name": new.model_name, "description": "", "created_at": now()},
            )
            # Two registrations never compute the same next version.
            _lock_model(conn, new.model_name)
            highest = conn.execute(
                sa.select(sa.func.max(t.model_versions.c.version)).where(
                    t.model_versions.c.model_name == new.model_name
                )
            ).scalar()
            values: dict[str, Any] = {
                "model_name": new.model_name,
                "version": (highest or 0) + 1,
                "run_id": new.run_id,
                "artifact_key": new.artifact_key,
                "artifact_sha256": new.artifact_sha256,
                "signature": new.signature,
                "metrics": new.metrics,
                "params": new.params,
                "snapshot_hash": new.snapshot_hash,
                "code_version": new.code_version,
                "gate_passed": new.gate_passed,
                "gate_report": new.gate_report,
                "created_at": now(),
            }
            conn.execute(t.model_versions.insert().values(**values))
            _audit(
                conn,
                actor=actor,
                action="model_version.register",
                resource=f"model:{new.model_name}/{values['version']}",
                details={"sha256": new.artifact_sha256, "gate_passed": new.gate_passed},
            )
        return _version(values, ())

    def _aliases_of(self, conn: Connection, name: str) -> dict[str, int]:
        rows = conn.execute(
            sa.select(t.aliases.c.alias, t.aliases.c.version).where(t.aliases.c.model_name == name)
        )
        return {row.alias: row.version for row in rows}

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as conn:
            row = (
                conn.execute(
                    sa.select(t.model_versions).where(
                        t.model_versions.c.model_name == name, t.model_versions.c.version == version
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"model {name!r} has no version {version}",
                    hint="see `decisionloop models show NAME` for its versions",
                )
            aliases = self._aliases_of(conn, name)
        return _version(row, tuple(sorted(a for a, v in aliases.items() if v == version)))

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.store.read() as conn:
            version = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.model_name == name, t.aliases.c.alias == alias
                )
            ).scalar()
        if version is None:
            raise NotFound(
                f"model {name!r} has no alias @{alias}",
                hint="run `decisionloop models list` to see models and their aliases",
            )
        return self.get_version(name, version)

    def list_models(self) -> list[RegisteredModel]:
        with self.store.read() as conn:
            latest = dict(
                conn.execute(
                    sa.select(
                        t.model_versions.c.model_name, sa.func.max(t.model_versions.c.version)
                    ).group_by(t.model_versions.c.model_name)
                ).all()
            )
            rows = conn.execute(
                sa.select(t.registered_models).order_by(t.registered_models.c.name)
            ).mappings()
            return [
                RegisteredModel(
                    name=row["name"],
                    description=row["description"],
                    created_at=_utc(row["created_at"]) or now(),
                    latest_version=latest.get(row["name"]),
                    aliases=self._aliases_of(conn, row["name"]),
                )
                for row in rows.all()
            ]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.store.read() as conn:
            rows = (
                conn.execute(
                    sa.select(t.model_versions)
                    .where(t.model_versions.c.model_name == name)
                    .order_by(t.model_versions.c.version.desc())
                )
                .mappings()
                .all()
            )
            if not rows:
                exists = conn.execute(
                    sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
                ).first()
                if exists is None:
                    raise NotFound(
                        f"no model named {name!r}", hint="see `decisionloop models list`"
                    )
            aliases = self._aliases_of(conn, name)
        return [
            _version(row, tuple(sorted(a for a, v in aliases.items() if v == row["version"])))
            for row in rows
        ]

    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> None:
        with self.store.write() as conn:
            _lock_model(conn, name)
            passed = conn.execute(
                sa.select(t.model_versions.c.gate_passed).where(
                    t.model_versions.c.model_name == name, t.model_versions.c.version == version
                )
            ).scalar()
            if passed is None:
                raise NotFound(f"model {name!r} has no version {version}")
            if alias == PROTECTED_ALIAS and not passed:
                raise GateFailed(
                    f"{name}/{version} failed a blocking gate and cannot be @{PROTECTED_ALIAS}",
                    hint="train a version that passes the gates in decisionloop.yaml",
                )
            previous = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.model_name == name, t.aliases.c.alias == alias
                )
            ).scalar()
            conn.execute(
                t.aliases.delete().where(t.aliases.c.model_name == name, t.aliases.c.alias == alias)
            )
            conn.execute(
                t.aliases.insert().values(
                    model_name=name, alias=alias, version=version, updated_at=now()
                )
            )
            _audit(
                conn,
                actor=actor,
                action="alias.set",
                resource=f"model:{name}@{alias}",
                details={"version": version, "previous": previous},
            )

    def delete_alias(self, name: str, alias: str, *, actor: str) -> None:
        with self.store.write() as conn:
            _lock_model(conn, name)
            deleted = conn.execute(
                t.aliases.delete().where(t.aliases.c.model_name == name, t.aliases.c.alias == alias)
            )
            if deleted.rowcount:
                _audit(
                    conn,
                    actor=actor,
                    action="alias.delete",
                    resource=f"model:{name}@{alias}",
                    details={},
                )


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


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    # JSONB hands whole-number floats back as ints; metrics are floats by contract
    return {name: float(value) for name, value in metrics.items()}


def _run(row: RowMapping | dict[str, Any]) -> Run:
    return Run(
        **{
            **row,
            "metrics": _floats(row["metrics"]),
            "started_at": _utc(row["started_at"]),
            "ended_at": _utc(row["ended_at"]),
        }
    )


def _version(row: RowMapping | dict[str, Any], aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        **{
            **row,
            "metrics": _floats(row["metrics"]),
            "created_at": _utc(row["created_at"]),
            "aliases": aliases,
        }
    )
