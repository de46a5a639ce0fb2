"""The SQL catalog: descriptions and tags of models and versions, and searches over them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import _audit, _lock_model, _Repo, _upsert
from decisionloop.backends.metadata.lifecycle import parse_status
from decisionloop.backends.metadata.model_repository import (
    VERSION_COLUMNS,
    registered_model,
    version_from_row,
    versions_aliases,
    versions_tags,
)
from decisionloop.backends.metadata.records import (
    MetricOp,
    ModelVersion,
    RegisteredModel,
    VersionQuery,
)
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
            if version is None:
                row: dict[str, object] = {"model_name": name, "key": key, "value": value}
                _upsert(conn, t.model_tags, row, keys=("model_name", "key"))
            else:
                row = {"model_name": name, "version": version, "key": key, "value": value}
                _upsert(conn, t.version_tags, row, keys=("model_name", "version", "key"))
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
        status = parse_status(query.status) if query.status is not None else None
        tags = sorted(query.tags.items())
        versions, aliases_of, tags_of = _search_statements(
            query.name is not None,
            status is not None,
            len(tags),
            tuple(metric.op for metric in query.metrics),
        )
        params: dict[str, object] = {"name": query.name, "status": status, "limit": query.limit}
        for i, (key, value) in enumerate(tags):
            params[f"tag_key_{i}"], params[f"tag_value_{i}"] = key, value
        for i, metric in enumerate(query.metrics):
            params[f"metric_key_{i}"], params[f"metric_value_{i}"] = metric.key, metric.value
        with self.store.read() as conn:
            rows = conn.execute(versions, params).all()
            if not rows:
                return []
            aliases = versions_aliases(conn, aliases_of, params)
            found_tags = versions_tags(conn, tags_of, params)
        return [version_from_row(row, aliases, found_tags) for row in rows]

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


@functools.lru_cache(maxsize=256)
def _search_statements(
    by_name: bool, by_status: bool, tag_count: int, metric_ops: tuple[MetricOp, ...]
) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any]]:
    """The statements of a search of this shape, built once (building and caching a statement
    costs more than SQLite answering it): the versions, then their aliases and their tags.
    Their parameters: ``name``, ``status``, ``limit``, ``tag_key_I``/``tag_value_I`` and
    ``metric_key_I``/``metric_value_I``."""
    mv, vt, vm, a = t.model_versions, t.version_tags, t.version_metrics, t.aliases
    conditions: list[sa.ColumnElement[bool]] = []
    if by_name:
        conditions.append(mv.c.model_name == sa.bindparam("name"))
    if by_status:
        conditions.append(mv.c.status == sa.bindparam("status"))
    for i in range(tag_count):
        # a tag (an equality, usually selective) as (model, version) IN (...), answered from
        # the tags' (key, value) index rather than by probing every version
        conditions.append(
            sa.tuple_(mv.c.model_name, mv.c.version).in_(
                sa.select(vt.c.model_name, vt.c.version).where(
                    vt.c.key == sa.bindparam(f"tag_key_{i}"),
                    vt.c.value == sa.bindparam(f"tag_value_{i}"),
                )
            )
        )
    for i, op in enumerate(metric_ops):
        conditions.append(
            sa.exists().where(
                vm.c.model_name == mv.c.model_name,
                vm.c.version == mv.c.version,
                vm.c.key == sa.bindparam(f"metric_key_{i}"),
                _COMPARE[op](vm.c.value, sa.bindparam(f"metric_value_{i}", type_=sa.Float)),
            )
        )
    order = (mv.c.model_name, mv.c.version.desc())
    limit = sa.bindparam("limit", type_=sa.Integer)
    versions = sa.select(*VERSION_COLUMNS).where(*conditions).order_by(*order).limit(limit)
    if len(conditions) == (1 if by_name else 0):
        # every version of the model (or of all models): their aliases and tags by model
        alias_scope: sa.ColumnElement[bool] = (
            a.c.model_name == sa.bindparam("name") if by_name else sa.true()
        )
        tag_scope: sa.ColumnElement[bool] = (
            vt.c.model_name == sa.bindparam("name") if by_name else sa.true()
        )
    else:  # the versions the same search finds
        found = sa.select(mv.c.model_name, mv.c.version).where(*conditions)
        found = found.order_by(*order).limit(limit)
        alias_scope = sa.tuple_(a.c.model_name, a.c.version).in_(found)
        tag_scope = sa.tuple_(vt.c.model_name, vt.c.version).in_(found)
    aliases = sa.select(a.c.model_name, a.c.version, a.c.alias).where(alias_scope)
    tags = sa.select(vt.c.model_name, vt.c.version, vt.c.key, vt.c.value).where(tag_scope)
    return versions, aliases, tags


def _require(conn: Connection, name: str, version: int | None) -> None:
    if version is None:
        if conn.execute(_MODEL_EXISTS, {"name": name}).first() is None:
            raise NotFound(f"no model named {name!r}", hint="see `decisionloop models list`")
        return
    if conn.execute(_VERSION_EXISTS, {"name": name, "version": version}).first() is None:
        raise NotFound(
            f"model {name!r} has no version {version}",
            hint="see `decisionloop models show NAME` for its versions",
        )


_MODEL_EXISTS = sa.select(t.registered_models.c.name).where(
    t.registered_models.c.name == sa.bindparam("name")
)
_VERSION_EXISTS = sa.select(t.model_versions.c.version).where(
    t.model_versions.c.model_name == sa.bindparam("name"),
    t.model_versions.c.version == sa.bindparam("version"),
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
