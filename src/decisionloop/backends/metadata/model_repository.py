"""The SQL model registry repository: model versions and their aliases."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import (
    _audit,
    _floats,
    _insert_ignore,
    _lock_model,
    _Repo,
    _utc,
    now,
)
from decisionloop.backends.metadata.records import (
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
)
from decisionloop.errors import GateFailed, NotFound

PROTECTED_ALIAS = "champion"


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
            metric_rows = [
                {"model_name": new.model_name, "version": values["version"], "key": k, "value": v}
                for k, v in _floats(new.metrics).items()
                if math.isfinite(v)
            ]
            if metric_rows:
                conn.execute(t.version_metrics.insert(), metric_rows)
            _audit(
                conn,
                actor=actor,
                action="model_version.register",
                resource=f"model:{new.model_name}/{values['version']}",
                details={"sha256": new.artifact_sha256, "gate_passed": new.gate_passed},
            )
        return _version({**values, "status": "candidate", "description": ""}, ())

    def _aliases_of(self, conn: Connection, name: str) -> dict[str, int]:
        rows = conn.execute(_ALIASES_OF, {"name": name})
        return {row.alias: row.version for row in rows}

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as conn:
            found = self._version_where(conn, name, _VERSION, {"name": name, "version": version})
        if found is None:
            raise NotFound(
                f"model {name!r} has no version {version}",
                hint="see `decisionloop models show NAME` for its versions",
            )
        return found

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.store.read() as conn:  # one transaction: the alias and its version agree
            found = self._version_where(conn, name, _BY_ALIAS, {"name": name, "alias": alias})
        if found is None:
            raise NotFound(
                f"model {name!r} has no alias @{alias}",
                hint="run `decisionloop models list` to see models and their aliases",
            )
        return found

    def _version_where(
        self, conn: Connection, name: str, select: sa.Select[Any], params: dict[str, Any]
    ) -> ModelVersion | None:
        row = conn.execute(select, params).mappings().first()
        if row is None:
            return None
        version = row["version"]
        aliases = self._aliases_of(conn, name)
        tags = version_tags(conn, name, [version])
        return _version(
            row,
            tuple(sorted(a for a, v in aliases.items() if v == version)),
            tags.get(version, {}),
        )

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
            return [registered_model(conn, row, latest.get(row["name"])) for row in rows.all()]

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
            tags = version_tags(conn, name, [row["version"] for row in rows])
        return [
            _version(
                row,
                tuple(sorted(a for a, v in aliases.items() if v == row["version"])),
                tags.get(row["version"], {}),
            )
            for row in rows
        ]

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> None:
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
            _record_alias_move(conn, name, alias, version, previous, actor=actor, reason=reason)
            _audit(
                conn,
                actor=actor,
                action="alias.set",
                resource=f"model:{name}@{alias}",
                details={"version": version, "previous": previous, "reason": reason},
            )

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str | None = None) -> None:
        with self.store.write() as conn:
            _lock_model(conn, name)
            previous = conn.execute(
                sa.select(t.aliases.c.version).where(
                    t.aliases.c.model_name == name, t.aliases.c.alias == alias
                )
            ).scalar()
            if previous is None:
                return
            conn.execute(
                t.aliases.delete().where(t.aliases.c.model_name == name, t.aliases.c.alias == alias)
            )
            _record_alias_move(conn, name, alias, None, previous, actor=actor, reason=reason)
            _audit(
                conn,
                actor=actor,
                action="alias.delete",
                resource=f"model:{name}@{alias}",
                details={"previous": previous, "reason": reason},
            )


def _record_alias_move(
    conn: Connection,
    name: str,
    alias: str,
    version: int | None,
    previous: int | None,
    *,
    actor: str,
    reason: str | None,
) -> None:
    conn.execute(
        t.alias_history.insert().values(
            model_name=name,
            alias=alias,
            version=version,
            previous_version=previous,
            actor=actor,
            at=now(),
            reason=reason,
        )
    )


# statements on the hot path of resolving a reference, built once (building a statement
# costs more than SQLite answering it)
_ALIASES_OF = sa.select(t.aliases.c.alias, t.aliases.c.version).where(
    t.aliases.c.model_name == sa.bindparam("name")
)
_VERSION = sa.select(t.model_versions).where(
    t.model_versions.c.model_name == sa.bindparam("name"),
    t.model_versions.c.version == sa.bindparam("version"),
)
_BY_ALIAS = (
    sa.select(t.model_versions)
    .join(
        t.aliases,
        (t.aliases.c.model_name == t.model_versions.c.model_name)
        & (t.aliases.c.version == t.model_versions.c.version),
    )
    .where(
        t.aliases.c.model_name == sa.bindparam("name"), t.aliases.c.alias == sa.bindparam("alias")
    )
)
_VERSION_TAGS = sa.select(t.version_tags).where(
    t.version_tags.c.model_name == sa.bindparam("name"),
    t.version_tags.c.version.in_(sa.bindparam("versions", expanding=True)),
)


def version_tags(conn: Connection, name: str, versions: list[int]) -> dict[int, dict[str, str]]:
    """Tags of some versions of one model: version -> {key: value}."""
    found: dict[int, dict[str, str]] = {}
    if not versions:
        return found
    rows = conn.execute(_VERSION_TAGS, {"name": name, "versions": versions})
    for row in rows:
        found.setdefault(row.version, {})[row.key] = row.value
    return found


def registered_model(conn: Connection, row: RowMapping, latest: int | None) -> RegisteredModel:
    """A registered_models row with its aliases and tags."""
    aliases = conn.execute(
        sa.select(t.aliases.c.alias, t.aliases.c.version).where(
            t.aliases.c.model_name == row["name"]
        )
    )
    tags = conn.execute(
        sa.select(t.model_tags.c.key, t.model_tags.c.value).where(
            t.model_tags.c.model_name == row["name"]
        )
    )
    return RegisteredModel(
        name=row["name"],
        description=row["description"],
        created_at=_utc(row["created_at"]) or now(),
        latest_version=latest,
        aliases={a.alias: a.version for a in aliases},
        tags={tag.key: tag.value for tag in tags},
    )


def _version(
    row: RowMapping | dict[str, Any],
    aliases: tuple[str, ...],
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    return ModelVersion(
        **{
            **row,
            "metrics": _floats(row["metrics"]),
            "created_at": _utc(row["created_at"]),
            "aliases": aliases,
            "tags": tags or {},
        }
    )
