"""Materialization: each entity's newest feature row of a view, from the offline store into the
online store. Full, or incremental: only the batch files ingested since the last run (the
online store keeps the newer row, so late rows with old event times are handled right)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from decisionloop.features.offline import ViewInput, connection, view_rows_sql
from decisionloop.features.transforms import quote

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import MaterializationMode
    from decisionloop.backends.online.base import OnlineRow, OnlineStore
    from decisionloop.features.definitions import FeatureView
    from decisionloop.features.store import FeatureStore

#: progress(view, done, total)
MaterializeProgress = Callable[[str, int, int], None]

#: rows handed to the online store per write (one transaction each)
WRITE_CHUNK = 50_000


@dataclass(frozen=True)
class Materialized:
    """One view's materialization: how many rows were read and written, and how."""

    view: str
    mode: str
    rows_read: int
    rows_written: int
    entities: int
    snapshot_id: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "mode": self.mode,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "entities": self.entities,
            "snapshot_id": self.snapshot_id,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class LatestRows:
    """Each entity's newest row: keys as text, event times in microseconds, feature values."""

    keys: list[str]
    event_ts: list[int]
    values: dict[str, list[Any]]
    rows_read: int

    def __len__(self) -> int:
        return len(self.keys)

    def online_rows(self, start: int = 0, stop: int | None = None) -> list[OnlineRow]:
        from decisionloop.backends.online.base import OnlineRow

        end = len(self.keys) if stop is None else stop
        names = list(self.values)
        columns = [self.values[name][start:end] for name in names]
        return [
            OnlineRow(key, event_ts, dict(zip(names, row, strict=True)))
            for key, event_ts, row in zip(
                self.keys[start:end],
                self.event_ts[start:end],
                zip(*columns, strict=True),
                strict=True,
            )
        ]


def latest_rows(data: ViewInput) -> LatestRows:
    """The newest row per entity key among ``data.files`` (tie-break as for training sets)."""
    con = connection()
    rows = view_rows_sql(con, data, with_order=True)
    picks = ", ".join(
        f"{_json_value(f'arg_max({quote(f)}, _dl_ord)', data.view.features[f])} AS {quote(f)}"
        for f in data.features
    )
    table = con.sql(
        f"SELECT CAST(_dl_k AS VARCHAR) AS _dl_k, max(_dl_ts) AS _dl_ts, {picks}, "
        f"count(*) AS _dl_n FROM ({rows}) WHERE _dl_k IS NOT NULL AND _dl_ts IS NOT NULL "
        "GROUP BY _dl_k"
    ).to_arrow_table()
    return LatestRows(
        keys=table.column("_dl_k").to_pylist(),
        event_ts=table.column("_dl_ts").to_pylist(),
        values={f: table.column(f).to_pylist() for f in data.features},
        rows_read=int(sum(table.column("_dl_n").to_pylist())),
    )


def _json_value(expression: str, dtype: str) -> str:
    # timestamps travel as ISO text (UTC): the online store holds JSON scalars
    if dtype == "datetime":
        return f"strftime(CAST({expression} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%fZ')"
    return expression


def write_latest(
    store: OnlineStore,
    view: str,
    latest: LatestRows,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write in chunks (each atomic); ``progress(done, total)`` after each."""
    written = 0
    total = len(latest)
    for start in range(0, total, WRITE_CHUNK):
        chunk = latest.online_rows(start, min(start + WRITE_CHUNK, total))
        written += store.write_batch(view, chunk)
        if progress is not None:
            progress(min(start + WRITE_CHUNK, total), total)
    return written


def materialize_views(
    store: FeatureStore,
    view: FeatureView,
    full: bool,
    progress: MaterializeProgress | None,
) -> Materialized:
    """Materialize one view (see ``FeatureStore.materialize``) and record it."""
    from decisionloop.backends.metadata.records import NewMaterialization

    platform = store.platform
    name = view.name
    started, clock = datetime.now(UTC), time.perf_counter()
    data, snapshot = store.view_input(view)
    last = platform.metadata.features.last_materialization(name, view_version=view.data_version)
    previous = None
    if last is not None and last.snapshot_id is not None:
        previous = store.snapshot_files(last.snapshot_id)
    files = None if full else new_files(previous, data.files)
    mode: MaterializationMode = "incremental" if files is not None else "full"
    read = written = latest_count = 0
    watermark = last.watermark if last is not None and mode == "incremental" else None
    if files is None or files:
        chosen = data if files is None else replace(data, files=files)
        latest = latest_rows(chosen)
        read, latest_count = latest.rows_read, len(latest)
        written = write_latest(store.online_store, name, latest, _view_progress(progress, name))
        newest = max(latest.event_ts) if latest.event_ts else None
        watermark = _later(watermark, _from_us(newest))
        if mode == "full" and previous:
            # entities gone from the data (it was replaced) must not keep serving
            gone = vanished_keys(replace(data, files=previous), latest.keys)
            if gone:
                store.online_store.delete_entities(name, gone)
    platform.metadata.features.record_materialization(
        NewMaterialization(
            view=name,
            view_version=view.data_version,
            mode=mode,
            start=None,
            end=datetime.now(UTC),
            watermark=watermark,
            rows_read=read,
            rows_written=written,
            store_url=_redacted(platform.settings.online_url),
            started_at=started,
            snapshot_id=snapshot.id,
        ),
        actor=platform.actor,
    )
    return Materialized(
        view=name,
        mode=mode,
        rows_read=read,
        rows_written=written,
        entities=latest_count,
        snapshot_id=snapshot.id,
        seconds=time.perf_counter() - clock,
    )


def vanished_keys(previous: ViewInput, current: Sequence[str]) -> list[str]:
    """Entity keys of the previous files that the current rows no longer have."""
    con = connection()
    rows = view_rows_sql(con, previous, with_order=False)
    before = {
        str(key)
        for (key,) in con.sql(
            f"SELECT DISTINCT CAST(_dl_k AS VARCHAR) FROM ({rows}) WHERE _dl_k IS NOT NULL"
        ).fetchall()
    }
    return sorted(before - set(current))


def new_files(previous: Sequence[str] | None, current: Sequence[str]) -> list[str] | None:
    """The files added since ``previous`` (a snapshot's file list), or None when ``current``
    does not extend it (the data set was replaced: materialize fully)."""
    if previous is None:
        return None
    if list(current[: len(previous)]) != list(previous):
        return None
    return list(current[len(previous) :])


def _view_progress(
    progress: MaterializeProgress | None, view: str
) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress

    def step(done: int, total: int) -> None:
        report(view, done, total)

    return step


def _from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def _redacted(url: str) -> str:
    """A store URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
