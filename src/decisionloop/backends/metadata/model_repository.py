"""The SQL model registry repository: model versions and their aliases."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import (
    _audit,
    _aware,
    _floats,
    _insert_ignore,
    _lock_model,
    _Repo,
    _upsert,
    _utc,
    now,
)
from decisionloop.backends.metadata.records import (
    Encoded,
    ModelVersion,
    NewModelVersion,
    RegisteredModel,
    stored_model_version,
)
from decisionloop.errors import GateFailed, NotFound

PROTECTED_ALIAS = "champion"


class SqlModels(_Repo):
    def register(self, new: NewModelVersion, *, actor: str) -> ModelVersion:
        name = new.model_name
        model_row = {"name": name, "description": "", "created_at": now()}
        with self.store.write() as conn:
            if conn.dialect.name == "postgresql":
                # the model's row must exist to be locked: two registrations never compute the
                # same next version (SQLite writers are serialized by BEGIN IMMEDIATE)
                _insert_ignore(conn, t.registered_models, model_row)
                _lock_model(conn, name)
            highest = conn.execute(_HIGHEST_VERSION, {"name": name}).scalar()
            if highest is None:
                _insert_ignore(conn, t.registered_models, model_row)
            values: dict[str, Any] = {
                "model_name": name,
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
            conn.execute(_INSERT_VERSION, values)
            metric_rows = [
                {"model_name": name, "version": values["version"], "key": k, "value": v}
                for k, v in _floats(new.metrics).items()
                if math.isfinite(v)
            ]
            if metric_rows:
                conn.execute(_INSERT_VERSION_METRICS, metric_rows)
            _audit(
                conn,
                actor=actor,
                action="model_version.register",
                resource=f"model:{name}/{values['version']}",
                details={"sha256": new.artifact_sha256, "gate_passed": new.gate_passed},
            )
        return _version({**values, "status": "candidate", "description": ""}, ())

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as conn:
            found = _version_where(conn, _VERSION, {"name": name, "version": version})
        if found is None:
            raise NotFound(
                f"model {name!r} has no version {version}",
                hint="see `decisionloop models show NAME` for its versions",
            )
        return found

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.store.read() as conn:  # one transaction: the alias and its version agree
            found = _version_where(conn, _BY_ALIAS, {"name": name, "alias": alias})
        if found is None:
            raise NotFound(
                f"model {name!r} has no alias @{alias}",
                hint="run `decisionloop models list` to see models and their aliases",
            )
        return found

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
            rows = conn.execute(_VERSIONS_OF, {"name": name}).all()
            if not rows:
                exists = conn.execute(
                    sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
                ).first()
                if exists is None:
                    raise NotFound(
                        f"no model named {name!r}", hint="see `decisionloop models list`"
                    )
            aliases = versions_aliases(conn, _ALIASES_OF_MODEL, {"name": name})
            tags = versions_tags(conn, _TAGS_OF_MODEL, {"name": name})
        return [version_from_row(row, aliases, tags) for row in rows]

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> None:
        with self.store.write() as conn:
            _lock_model(conn, name)
            # the target's gate and the alias's current version, in one statement
            found = conn.execute(
                _GATE_AND_ALIAS, {"name": name, "version": version, "alias": alias}
            ).first()
            if found is None:
                raise NotFound(f"model {name!r} has no version {version}")
            passed, previous = found
            if alias == PROTECTED_ALIAS and not passed:
                raise GateFailed(
                    f"{name}/{version} failed a blocking gate and cannot be @{PROTECTED_ALIAS}",
                    hint="train a version that passes the gates in decisionloop.yaml",
                )
            _upsert(
                conn,
                t.aliases,
                {"model_name": name, "alias": alias, "version": version, "updated_at": now()},
                keys=("model_name", "alias"),
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
            previous = conn.execute(_ALIAS_VERSION, {"name": name, "alias": alias}).scalar()
            if previous is None:
                return
            conn.execute(_DELETE_ALIAS, {"name": name, "alias": alias})
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
        _INSERT_ALIAS_HISTORY,
        {
            "model_name": name,
            "alias": alias,
            "version": version,
            "previous_version": previous,
            "actor": actor,
            "at": now(),
            "reason": reason,
        },
    )


def _version_where(
    conn: Connection, select: sa.Select[Any], params: dict[str, Any]
) -> ModelVersion | None:
    row = conn.execute(select, params).first()
    if row is None:
        return None
    found = {"name": row.model_name, "version": row.version}
    aliases = tuple(sorted(conn.execute(_ALIASES_OF_VERSION, found).scalars()))
    tags = {tag.key: tag.value for tag in conn.execute(_TAGS_OF_VERSION, found)}
    key = (row.model_name, row.version)
    return version_from_row(row, {key: aliases}, {key: tags})


# -- reading versions: columns, rows to records, aliases and tags ------------------------------

_mv = t.model_versions


def _as_text(column: sa.Column[Any]) -> sa.Label[Any]:
    """A JSON column read as its text, decoded only when the record's field is read."""
    return sa.cast(column, sa.Text).label(column.name)


#: a version's columns, in the order :func:`version_from_row` reads them
VERSION_COLUMNS: tuple[sa.ColumnElement[Any], ...] = (
    _mv.c.model_name,
    _mv.c.version,
    _mv.c.run_id,
    _mv.c.artifact_key,
    _mv.c.artifact_sha256,
    _as_text(_mv.c.signature),
    _as_text(_mv.c.metrics),
    _as_text(_mv.c.params),
    _mv.c.snapshot_hash,
    _mv.c.code_version,
    _mv.c.gate_passed,
    _as_text(_mv.c.gate_report),
    # as stored: SQLite's text is parsed by datetime.fromisoformat, several times faster
    sa.type_coerce(_mv.c.created_at, sa.String).label("created_at"),
    _mv.c.status,
    _mv.c.description,
)

#: (model name, version number)
VersionKey = tuple[str, int]


def version_from_row(
    row: Sequence[Any],
    aliases: dict[VersionKey, tuple[str, ...]],
    tags: dict[VersionKey, dict[str, str]],
) -> ModelVersion:
    """A row of :data:`VERSION_COLUMNS` as a record, with its aliases and tags looked up by
    (model, version); its JSON documents are decoded when first read."""
    (
        name,
        number,
        run_id,
        artifact_key,
        sha256,
        signature,
        metrics,
        params,
        snapshot_hash,
        code_version,
        gate_passed,
        gate_report,
        created_at,
        status,
        description,
    ) = row
    return stored_model_version(
        name,
        number,
        run_id,
        artifact_key,
        sha256,
        _encoded(signature, json.loads),
        _encoded(metrics, _decode_metrics),
        _encoded(params, json.loads),
        snapshot_hash,
        code_version,
        gate_passed,
        _encoded(gate_report, json.loads),
        _stored_time(created_at),
        aliases.get((name, number), ()),
        status,
        description,
        tags.get((name, number)) or {},
    )


#: a document field's value until first read (the record's field then holds the decoded value)
_encoded: Any = Encoded


def _stored_time(value: str | datetime) -> datetime:
    """A version's creation time in UTC: SQLite keeps naive UTC text, PostgreSQL a datetime."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # written with an offset, or in another format
            value = datetime.fromisoformat(value)
    return _aware(value)


def _decode_metrics(text: str) -> dict[str, float]:
    return _floats(json.loads(text))


def versions_aliases(
    conn: Connection, select: sa.Select[Any], params: dict[str, Any] | None = None
) -> dict[VersionKey, tuple[str, ...]]:
    """(model, version) -> sorted aliases, from a select of (model_name, version, alias)."""
    found: dict[VersionKey, list[str]] = {}
    for name, version, alias in conn.execute(select, params or {}):
        found.setdefault((name, version), []).append(alias)
    return {key: tuple(sorted(names)) for key, names in found.items()}


def versions_tags(
    conn: Connection, select: sa.Select[Any], params: dict[str, Any] | None = None
) -> dict[VersionKey, dict[str, str]]:
    """(model, version) -> {key: value}, from a select of (model_name, version, key, value)."""
    found: dict[VersionKey, dict[str, str]] = {}
    for name, version, key, value in conn.execute(select, params or {}):
        found.setdefault((name, version), {})[key] = value
    return found


# statements on the hot paths, built once (building a statement costs more than SQLite
# answering it)
_HIGHEST_VERSION = sa.select(sa.func.max(_mv.c.version)).where(
    _mv.c.model_name == sa.bindparam("name")
)
_INSERT_VERSION = _mv.insert()
_INSERT_VERSION_METRICS = t.version_metrics.insert()
_INSERT_ALIAS_HISTORY = t.alias_history.insert()
_ALIAS_VERSION = sa.select(t.aliases.c.version).where(
    t.aliases.c.model_name == sa.bindparam("name"), t.aliases.c.alias == sa.bindparam("alias")
)
_DELETE_ALIAS = t.aliases.delete().where(
    t.aliases.c.model_name == sa.bindparam("name"), t.aliases.c.alias == sa.bindparam("alias")
)
_GATE_AND_ALIAS = (
    sa.select(_mv.c.gate_passed, t.aliases.c.version)
    .outerjoin(
        t.aliases,
        (t.aliases.c.model_name == _mv.c.model_name) & (t.aliases.c.alias == sa.bindparam("alias")),
    )
    .where(_mv.c.model_name == sa.bindparam("name"), _mv.c.version == sa.bindparam("version"))
)
_VERSION = sa.select(*VERSION_COLUMNS).where(
    _mv.c.model_name == sa.bindparam("name"), _mv.c.version == sa.bindparam("version")
)
_BY_ALIAS = (
    sa.select(*VERSION_COLUMNS)
    .join(
        t.aliases,
        (t.aliases.c.model_name == _mv.c.model_name) & (t.aliases.c.version == _mv.c.version),
    )
    .where(
        t.aliases.c.model_name == sa.bindparam("name"), t.aliases.c.alias == sa.bindparam("alias")
    )
)
_VERSIONS_OF = (
    sa.select(*VERSION_COLUMNS)
    .where(_mv.c.model_name == sa.bindparam("name"))
    .order_by(_mv.c.version.desc())
)
_ALIASES_OF_VERSION = sa.select(t.aliases.c.alias).where(
    t.aliases.c.model_name == sa.bindparam("name"), t.aliases.c.version == sa.bindparam("version")
)
_TAGS_OF_VERSION = sa.select(t.version_tags.c.key, t.version_tags.c.value).where(
    t.version_tags.c.model_name == sa.bindparam("name"),
    t.version_tags.c.version == sa.bindparam("version"),
)
_ALIASES_OF_MODEL = sa.select(t.aliases.c.model_name, t.aliases.c.version, t.aliases.c.alias).where(
    t.aliases.c.model_name == sa.bindparam("name")
)
_TAGS_OF_MODEL = sa.select(
    t.version_tags.c.model_name,
    t.version_tags.c.version,
    t.version_tags.c.key,
    t.version_tags.c.value,
).where(t.version_tags.c.model_name == sa.bindparam("name"))


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
