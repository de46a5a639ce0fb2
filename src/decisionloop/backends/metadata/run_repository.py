"""The SQL runs repository: experiment tracking (params, per-step metrics, tags, environment)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from decisionloop.backends.metadata import schema as t
from decisionloop.backends.metadata._sql_common import (
    _audit,
    _floats,
    _Repo,
    _upsert,
    _utc,
    new_id,
    now,
)
from decisionloop.backends.metadata.records import (
    JsonDict,
    MetricPoint,
    Run,
    RunComparison,
    RunStatus,
)
from decisionloop.errors import Conflict, Invalid, NotFound

RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed")


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
        parent_run_id: str | None = None,
        environment: JsonDict | None = None,
        feature_versions: JsonDict | None = None,
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
            "parent_run_id": parent_run_id,
            "environment": environment,
            "feature_versions": feature_versions,
        }
        with self.store.write() as conn:
            if (
                parent_run_id is not None
                and conn.execute(_RUN_EXISTS, {"run_id": parent_run_id}).first() is None
            ):
                raise NotFound(
                    f"no parent run {parent_run_id!r}", hint="see `decisionloop runs list`"
                )
            conn.execute(_INSERT_RUN, values)
            details: dict[str, Any] = {"model": model_name}
            if parent_run_id is not None:
                details["parent"] = parent_run_id
            _audit(
                conn,
                actor=actor,
                action="run.start",
                resource=f"run:{values['id']}",
                details=details,
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
        """End a running run; ``metrics`` are merged over what ``log_metrics`` recorded."""
        ended_at = now()
        with self.store.write() as conn:
            current = conn.execute(_RUN_FOR_UPDATE, {"run_id": run_id}).mappings().first()
            if current is None:
                raise NotFound(f"no run {run_id!r}", hint="see `decisionloop runs list`")
            merged = {**current["metrics"], **metrics}
            changes = {"status": status, "metrics": merged, "error": error, "ended_at": ended_at}
            updated = conn.execute(_FINISH_RUN, {"run_id": run_id, **changes})
            if updated.rowcount != 1:
                raise Conflict(f"run {run_id} is not running", hint="a run finishes once")
            _audit(
                conn,
                actor=actor,
                action=f"run.{status}",
                resource=f"run:{run_id}",
                details={"error": error} if error else {},
            )
        return _run({**current, **changes})

    def get(self, run_id: str) -> Run:
        with self.store.read() as conn:
            row = conn.execute(_RUN, {"run_id": run_id}).mappings().first()
        if row is None:
            raise NotFound(f"no run {run_id!r}", hint="see `decisionloop runs list`")
        return _run(row)

    def log_params(self, run_id: str, params: Mapping[str, Any], *, actor: str) -> Run:
        """Add params to a running run; a key logged again with another value is a Conflict."""
        with self.store.write() as conn:
            row = _running(conn, run_id)
            stored = dict(row["params"])
            changed = [k for k, v in params.items() if k in stored and stored[k] != v]
            if changed:
                raise Conflict(
                    f"run {run_id} already has other values for params {sorted(changed)}",
                    hint="params describe how a run was made and are set once; start a new run",
                )
            stored.update(params)
            conn.execute(_UPDATE_RUN, {"run_id": run_id, "params": stored})
            _audit(
                conn,
                actor=actor,
                action="run.log_params",
                resource=f"run:{run_id}",
                details={"keys": sorted(params)},
            )
        return _run({**row, "params": stored})

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float] | Sequence[MetricPoint],
        *,
        step: int = 0,
        actor: str,
    ) -> None:
        """Record metric values of a running run in one write: a mapping (all at ``step``) or
        points with their own steps. A (key, step) logged again is replaced; the run's
        ``metrics`` keep each key's value at its highest step."""
        at = now()
        points = (
            [MetricPoint(key, float(value), step) for key, value in metrics.items()]
            if isinstance(metrics, Mapping)
            else list(metrics)
        )
        if not points:
            return
        bad = [p.key for p in points if not math.isfinite(p.value)]
        if bad:
            raise Invalid(
                f"metric {bad[0]!r} is not a finite number",
                hint="log NaN or infinite values as a tag, or leave the step out",
            )
        # one row per (key, step): the last point given wins, as a later call's would
        rows = list(
            {
                (point.key, point.step): {
                    "run_id": run_id,
                    "key": point.key,
                    "step": point.step,
                    "value": float(point.value),
                    "timestamp": point.timestamp or at,
                }
                for point in points
            }.values()
        )
        keys = sorted({point.key for point in points})
        with self.store.write() as conn:
            row = _running(conn, run_id, _RUN_METRICS_FOR_UPDATE)
            # a (key, step) logged again replaces the stored point
            _upsert(conn, t.run_metrics, rows, keys=("run_id", "key", "step"))
            latest = conn.execute(_LATEST_POINTS, {"run_id": run_id, "keys": keys})
            summary = {**row["metrics"], **{key: value for key, value in latest}}
            conn.execute(_UPDATE_RUN, {"run_id": run_id, "metrics": summary})
            _audit(
                conn,
                actor=actor,
                action="run.log_metrics",
                resource=f"run:{run_id}",
                details={"points": len(rows), "keys": keys},
            )

    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]:
        """Every logged value of the run's metrics (or of ``key``), by key then step."""
        query = (
            sa.select(t.run_metrics)
            .where(t.run_metrics.c.run_id == run_id)
            .order_by(t.run_metrics.c.key, t.run_metrics.c.step)
        )
        if key is not None:
            query = query.where(t.run_metrics.c.key == key)
        with self.store.read() as conn:
            _row(conn, run_id, what="run")
            return [
                MetricPoint(row.key, float(row.value), int(row.step), _utc(row.timestamp))
                for row in conn.execute(query)
            ]

    def set_tags(self, run_id: str, tags: Mapping[str, str], *, actor: str) -> Run:
        """Add or replace tags of a run (running or ended: tags annotate, they do not define)."""
        with self.store.write() as conn:
            row = conn.execute(_RUN_FOR_UPDATE, {"run_id": run_id}).mappings().first()
            if row is None:
                raise NotFound(f"no run {run_id!r}", hint="see `decisionloop runs list`")
            merged = {**row["tags"], **{str(k): str(v) for k, v in tags.items()}}
            conn.execute(_UPDATE_RUN, {"run_id": run_id, "tags": merged})
            _audit(
                conn,
                actor=actor,
                action="run.set_tags",
                resource=f"run:{run_id}",
                details={"tags": dict(tags)},
            )
        return _run({**row, "tags": merged})

    def compare(self, run_ids: Sequence[str]) -> RunComparison:
        """The runs in the given order, with every param and metric key side by side."""
        if not run_ids:
            raise Invalid("no runs to compare", hint="give two or more run ids")
        with self.store.read() as conn:
            found = {
                row["id"]: _run(row)
                for row in conn.execute(
                    sa.select(t.runs).where(t.runs.c.id.in_(list(run_ids)))
                ).mappings()
            }
        missing = [run_id for run_id in run_ids if run_id not in found]
        if missing:
            raise NotFound(f"no run {missing[0]!r}", hint="see `decisionloop runs list`")
        runs = [found[run_id] for run_id in run_ids]
        param_keys = sorted({key for run in runs for key in run.params})
        metric_keys = sorted({key for run in runs for key in run.metrics})
        return RunComparison(
            runs=runs,
            params={key: [run.params.get(key) for run in runs] for key in param_keys},
            metrics={key: [run.metrics.get(key) for run in runs] for key in metric_keys},
        )

    def list(
        self,
        model_name: str | None = None,
        limit: int = 100,
        *,
        status: RunStatus | None = None,
        parent_run_id: str | None = None,
    ) -> list[Run]:
        """Runs newest first, of one model (experiment), status and/or parent run."""
        query = sa.select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        if model_name is not None:
            query = query.where(t.runs.c.model_name == model_name)
        if status is not None:
            if status not in RUN_STATUSES:
                raise Invalid(f"unknown run status {status!r}", hint=f"use one of {RUN_STATUSES}")
            query = query.where(t.runs.c.status == status)
        if parent_run_id is not None:
            query = query.where(t.runs.c.parent_run_id == parent_run_id)
        with self.store.read() as conn:
            return [_run(row) for row in conn.execute(query).mappings()]


def _row(conn: Connection, run_id: str, *, what: str) -> RowMapping:
    row = conn.execute(_RUN, {"run_id": run_id}).mappings().first()
    if row is None:
        raise NotFound(f"no {what} {run_id!r}", hint="see `decisionloop runs list`")
    return row


def _running(conn: Connection, run_id: str, select: sa.Select[Any] | None = None) -> RowMapping:
    """The run's row (or ``select``'s columns of it), locked so concurrent loggers merge instead
    of overwriting each other; NotFound or Conflict unless it is running."""
    select = _RUN_FOR_UPDATE if select is None else select
    row = conn.execute(select, {"run_id": run_id}).mappings().first()
    if row is None:
        raise NotFound(f"no run {run_id!r}", hint="see `decisionloop runs list`")
    if row["status"] != "running":
        raise Conflict(
            f"run {run_id} is {row['status']}, not running",
            hint="params and metrics are logged while a run runs; start a new run",
        )
    return row


# statements on the tracking path, built once (building one costs more than SQLite running it)
_BY_ID = t.runs.c.id == sa.bindparam("run_id")
_RUN = sa.select(t.runs).where(_BY_ID)
_RUN_FOR_UPDATE = _RUN.with_for_update()
_RUN_EXISTS = sa.select(t.runs.c.id).where(_BY_ID)
_RUN_METRICS_FOR_UPDATE = (
    sa.select(t.runs.c.status, t.runs.c.metrics).where(_BY_ID).with_for_update()
)
_INSERT_RUN = t.runs.insert()
_FINISH_RUN = t.runs.update().where(_BY_ID, t.runs.c.status == "running")
#: sets the columns named in the parameters
_UPDATE_RUN = t.runs.update().where(_BY_ID)
_points = t.run_metrics.alias("points")
#: each of some keys' value at its highest logged step
_LATEST_POINTS = sa.select(t.run_metrics.c.key, t.run_metrics.c.value).where(
    t.run_metrics.c.run_id == sa.bindparam("run_id"),
    t.run_metrics.c.key.in_(sa.bindparam("keys", expanding=True)),
    t.run_metrics.c.step
    == sa.select(sa.func.max(_points.c.step))
    .where(_points.c.run_id == t.run_metrics.c.run_id, _points.c.key == t.run_metrics.c.key)
    .scalar_subquery(),
)


def _run(row: RowMapping | dict[str, Any]) -> Run:
    return Run(
        **{
            **row,
            "metrics": _floats(row["metrics"]),
            "started_at": _utc(row["started_at"]),
            "ended_at": _utc(row["ended_at"]),
        }
    )
