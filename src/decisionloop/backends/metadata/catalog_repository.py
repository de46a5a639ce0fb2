"""The SQL catalog: descriptions and tags of models and versions, and searches over them."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import _audit, _lock_model, _Repo
from decisionloop.backends.metadata.lifecycle import parse_status
from decisionloop.backends.metadata.model_repository import (
    _version,
    registered_model,
    version_tags,
)
from decisionloop.backends.metadata.records import ModelVersion, RegisteredModel, VersionQuery
from decisionloop.errors import Invalid, NotFound

_COMPARE = {
    ">": sa.sql.operators.gt,
    ">=": sa.sql.operators.ge,
    "<": sa.sql.operators.lt,
    "<=": sa.sql.operators.le,
    "=": sa.sql.operators.eq,
}
_MAX_TAG_KEY, _MAX_TAG_VALUE = 250, 5000


class SqlCatalog(_Repo):
    def set_description(
        self, name: str, text: str, *, version: int | None = None, actor: str
    ) -> None:
        """Describe the model (``version=None``) or one of its versions."""
        with self.store.write() as conn:
            _lock_model(conn, name)
            _require(conn, name, version)
            if version is None:
                conn.execute(
                    t.registered_models.update()
                    .where(t.registered_models.c.name == name)
                    .values(description=text)
                )
            else:
                conn.execute(
                    t.model_versions.update()
                    .where(
                        t.model_versions.c.model_name == name,
                        t.model_versions.c.version == version,
                    )
                    .values(description=text)
                )
            _audit(
                conn,
                actor=actor,
                action="description.set",
                resource=_resource(name, version),
                details={"description": text},
            )

    def set_tag(
        self, name: str, key: str, value: str, *, version: int | None = None, actor: str
    ) -> None:
        """Set (or replace) a tag of the model (``version=None``) or of one version."""
        if not key or len(key) > _MAX_TAG_KEY or len(value) > _MAX_TAG_VALUE:
            raise Invalid(
                f"bad tag {key[:40]!r}",
                hint=f"a tag key is 1-{_MAX_TAG_KEY} characters, a value at most {_MAX_TAG_VALUE}",
            )
        with self.store.write() as conn:
            _lock_model(conn, name)
            _require(conn, name, version)
            table, where = _tag_target(name, version)
            conn.execute(table.delete().where(*where, table.c.key == key))
            row: dict[str, object] = {"model_name": name, "key": key, "value": value}
            if version is not None:
                row["version"] = version
            conn.execute(table.insert().values(**row))
            _audit(
                conn,
                actor=actor,
                action="tag.set",
                resource=_resource(name, version),
                details={"key": key, "value": value},
            )

    def delete_tag(self, name: str, key: str, *, version: int | None = None, actor: str) -> None:
        """Remove a tag; removing an absent tag changes (and audits) nothing."""
        with self.store.write() as conn:
            _lock_model(conn, name)
            _require(conn, name, version)
            table, where = _tag_target(name, version)
            deleted = conn.execute(table.delete().where(*where, table.c.key == key))
            if deleted.rowcount:
                _audit(
                    conn,
                    actor=actor,
                    action="tag.delete",
                    resource=_resource(name, version),
                    details={"key": key},
                )

    def search_versions(self, query: VersionQuery) -> list[ModelVersion]:
        """Versions matching every condition of ``query``, by model name then newest first."""
        mv = t.model_versions
        select = sa.select(mv).order_by(mv.c.model_name, mv.c.version.desc()).limit(query.limit)
        if query.name is not None:
            select = select.where(mv.c.model_name == query.name)
        if query.status is not None:
            select = select.where(mv.c.status == parse_status(query.status))
        for key, value in sorted(query.tags.items()):
            vt = t.version_tags
            select = select.where(
                sa.exists().where(
                    vt.c.model_name == mv.c.model_name,
                    vt.c.version == mv.c.version,
                    vt.c.key == key,
                    vt.c.value == value,
                )
            )
        for metric in query.metrics:
            vm = t.version_metrics
            select = select.where(
                sa.exists().where(
                    vm.c.model_name == mv.c.model_name,
                    vm.c.version == mv.c.version,
                    vm.c.key == metric.key,
                    _COMPARE[metric.op](vm.c.value, metric.value),
                )
            )
        with self.store.read() as conn:
            rows = conn.execute(select).mappings().all()
            # aliases and tags in two queries per model found, not two per version
            by_model: dict[str, list[int]] = {}
            for row in rows:
                by_model.setdefault(row["model_name"], []).append(row["version"])
            aliases: dict[tuple[str, int], list[str]] = {}
            tags: dict[str, dict[int, dict[str, str]]] = {}
            for name, versions in by_model.items():
                for alias, version in conn.execute(
                    sa.select(t.aliases.c.alias, t.aliases.c.version).where(
                        t.aliases.c.model_name == name
                    )
                ):
                    aliases.setdefault((name, version), []).append(alias)
                tags[name] = version_tags(conn, name, versions)
        return [
            _version(
                row,
                tuple(sorted(aliases.get((row["model_name"], row["version"]), []))),
                tags[row["model_name"]].get(row["version"], {}),
            )
            for row in rows
        ]

    def search_models(
        self,
        *,
        prefix: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> list[RegisteredModel]:
        """Registered models whose name starts with ``prefix`` and that carry every tag."""
        rm = t.registered_models
        select = sa.select(rm).order_by(rm.c.name).limit(limit)
        if prefix:
            select = select.where(rm.c.name.startswith(prefix, autoescape=True))
        for key, value in sorted((tags or {}).items()):
            mt = t.model_tags
            select = select.where(
                sa.exists().where(
                    mt.c.model_name == rm.c.name, mt.c.key == key, mt.c.value == value
                )
            )
        with self.store.read() as conn:
            rows = conn.execute(select).mappings().all()
            latest = dict(
                conn.execute(
                    sa.select(
                        t.model_versions.c.model_name, sa.func.max(t.model_versions.c.version)
                    )
                    .where(t.model_versions.c.model_name.in_([row["name"] for row in rows]))
                    .group_by(t.model_versions.c.model_name)
                ).all()
            )
            return [registered_model(conn, row, latest.get(row["name"])) for row in rows]


def _require(conn: Connection, name: str, version: int | None) -> None:
    if version is None:
        found = conn.execute(
            sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
        ).first()
        if found is None:
            raise NotFound(f"no model named {name!r}", hint="see `decisionloop models list`")
        return
    found = conn.execute(
        sa.select(t.model_versions.c.version).where(
            t.model_versions.c.model_name == name, t.model_versions.c.version == version
        )
    ).first()
    if found is None:
        raise NotFound(
            f"model {name!r} has no version {version}",
            hint="see `decisionloop models show NAME` for its versions",
        )


def _tag_target(name: str, version: int | None) -> tuple[sa.Table, list[sa.ColumnElement[bool]]]:
    if version is None:
        return t.model_tags, [t.model_tags.c.model_name == name]
    return t.version_tags, [
        t.version_tags.c.model_name == name,
        t.version_tags.c.version == version,
    ]


def _resource(name: str, version: int | None) -> str:
    return f"model:{name}" if version is None else f"model:{name}/{version}"
