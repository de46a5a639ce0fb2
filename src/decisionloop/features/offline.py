"""Point-in-time correct training sets: DuckDB ASOF joins over the feature views' Parquet files.

For each row of the entity frame (join keys, an event time, anything else such as a label) and
each feature view, the features are those of the view's newest row for that entity whose event
time is at or before the row's time, and not older than the view's TTL; otherwise they are
missing. The output has exactly the entity frame's rows, in its order (a row is never dropped
or duplicated).

Tie-break for one entity's rows with equal event times: the row with the latest
``created_timestamp`` wins when the view declares one; otherwise, and on equal created times,
the row ingested last (later batch file, later row in its file).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid
from decisionloop.features.transforms import (
    SQL_TYPES,
    apply_python,
    quote,
    sql_columns,
    typed_inputs,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from decisionloop.features.definitions import FeatureView, OnDemandFeatureView

#: the order value is event_us * 2**72 + file_index * 2**36 + row_in_file (an int128)
_TS_SHIFT = 2**72
_FILE_SHIFT = 2**36
ROW_COLUMN = "_dl_row"


@dataclass(frozen=True)
class ViewInput:
    """One feature view as retrieval reads it: its join key, stored files and features."""

    view: FeatureView
    join_key: str
    files: Sequence[str]
    features: Sequence[str]
    #: no two rows share (join key, event time), e.g. because the data set's contract key is
    #: those columns: no ties to break, so rows are ordered by event time alone (faster)
    unique_times: bool = False


_local = threading.local()


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection (UTC), kept between calls: opening and closing one
    costs ~60 ms a training set at a million rows."""
    import duckdb

    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        _local.con = con
    return con


def event_us(column: str, sql_type: str) -> str:
    """Microseconds since the epoch (UTC; naive times are UTC) of a column of any time type."""
    kind = sql_type.upper()
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"epoch_us(CAST({column} AS TIMESTAMP))" if kind == "DATE" else f"epoch_us({column})"
    if kind in ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE"):
        raise Invalid(
            f"the time column {column} holds numbers ({sql_type})",
            hint="store event times as timestamps (type datetime in the contract)",
        )
    return f"epoch_us(CAST({column} AS TIMESTAMPTZ))"


def _files_sql(files: Sequence[str], extra: str = "") -> str:
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    return f"read_parquet({listing}, union_by_name=true, hive_partitioning=false{extra})"


def view_rows_sql(con: duckdb.DuckDBPyConnection, data: ViewInput, *, with_order: bool) -> str:
    """The view's rows as ``_dl_k`` (join key), ``_dl_ts`` (event microseconds), the features
    and, with ``with_order``, ``_dl_ord``: an int128 that orders the rows of one entity so the
    tie-break rule picks the last one."""
    view = data.view
    if not data.files:
        raise Invalid(
            f"feature view {view.name!r}: its data set {view.source!r} has no rows",
            hint=f"ingest it first: decisionloop ingest --dataset {view.source}",
        )
    plain = _files_sql(data.files)
    types = {row[0]: row[1] for row in con.sql(f"DESCRIBE SELECT * FROM {plain}").fetchall()}
    needed = [data.join_key, view.timestamp, *data.features]
    if view.created_timestamp:
        needed.append(view.created_timestamp)
    missing = [name for name in needed if name not in types]
    if missing:
        raise Invalid(
            f"feature view {view.name!r}: data set {view.source!r} has no column "
            f"{', '.join(map(repr, missing))}",
            hint=f"its columns: {', '.join(list(types)[:20])}",
        )
    ts = event_us(quote(view.timestamp), types[view.timestamp])
    features = ", ".join(
        _typed_column(quote(f), types[f], view.features[f]) + f" AS {quote(f)}"
        for f in data.features
    )
    names = ", ".join(quote(f) for f in data.features)
    key = quote(data.join_key)
    if not with_order:
        return f"SELECT {key} AS _dl_k, {ts} AS _dl_ts, {features} FROM {plain}"
    if data.unique_times:
        return f"SELECT {key} AS _dl_k, {ts} AS _dl_ts, {ts} AS _dl_ord, {features} FROM {plain}"
    if view.created_timestamp is not None:
        created = event_us(quote(view.created_timestamp), types[view.created_timestamp])
        source = _files_sql(data.files, ", filename=true, file_row_number=true")
        return (
            f"SELECT _dl_k, _dl_ts, CAST(_dl_ts AS HUGEINT) * {_TS_SHIFT} AS _dl_ord, {names} "
            "FROM ("
            f"SELECT {key} AS _dl_k, {ts} AS _dl_ts, {features}, {created} AS _dl_created, "
            f"_dl_file, file_row_number FROM {source} JOIN {_file_index(data.files)} USING "
            "(filename)) QUALIFY row_number() OVER (PARTITION BY _dl_k, _dl_ts ORDER BY "
            "_dl_created DESC NULLS LAST, _dl_file DESC, file_row_number DESC) = 1"
        )
    if len(data.files) == 1:
        source = _files_sql(data.files, ", file_row_number=true")
        order = f"CAST({ts} AS HUGEINT) * {_TS_SHIFT} + file_row_number"
        return (
            f"SELECT {key} AS _dl_k, {ts} AS _dl_ts, {order} AS _dl_ord, {features} FROM {source}"
        )
    source = _files_sql(data.files, ", filename=true, file_row_number=true")
    order = f"CAST({ts} AS HUGEINT) * {_TS_SHIFT} + _dl_file * {_FILE_SHIFT} + file_row_number"
    return (
        f"SELECT {key} AS _dl_k, {ts} AS _dl_ts, {order} AS _dl_ord, {features} "
        f"FROM {source} JOIN {_file_index(data.files)} USING (filename)"
    )


def _typed_column(column: str, stored: str, declared: str) -> str:
    """A stored column as its declared type (a no-op when it is stored so)."""
    target = SQL_TYPES[declared]
    if str(stored).upper() == target:
        return column
    if declared == "datetime":
        return f"CAST(CAST({column} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"CAST({column} AS {target})"


def _file_index(files: Sequence[str]) -> str:
    rows = ", ".join(f"('{f.replace(chr(39), chr(39) * 2)}', {i})" for i, f in enumerate(files))
    return f"(VALUES {rows}) AS _dl_files(filename, _dl_file)"


def point_in_time_join(
    entity: pa.Table | pd.DataFrame,
    *,
    timestamp: str,
    views: Sequence[ViewInput],
    outputs: Sequence[str] | None = None,
    on_demand: Sequence[tuple[OnDemandFeatureView, Callable[..., Any] | None]] = (),
    memory_limit: str | None = None,
) -> pa.Table:
    """The entity rows with their point-in-time features (see the module docstring).

    ``outputs`` selects and orders the feature columns returned (default: every view
    feature, then every on-demand output); the entity frame's own columns come first."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    table = (
        entity
        if isinstance(entity, pa.Table)
        else pa.Table.from_pandas(entity, preserve_index=False)
    )
    if timestamp not in table.column_names:
        raise Invalid(
            f"the entity frame has no timestamp column {timestamp!r}",
            hint=f"its columns: {', '.join(table.column_names[:20])}",
        )
    _check_names(table, views, on_demand)
    table = table.append_column(ROW_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    con = connection()
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        con.register("_dl_entity", table)
        types = dict(
            (row[0], row[1]) for row in con.sql("DESCRIBE SELECT * FROM _dl_entity").fetchall()
        )
        for data in views:
            if data.join_key not in types:
                raise Invalid(
                    f"the entity frame has no join key {data.join_key!r} "
                    f"(feature view {data.view.name!r})",
                    hint=f"add the column {data.join_key!r} to the entity rows",
                )
        e_ts = event_us(quote(timestamp), types[timestamp])
        joins, selects = [], []
        for index, data in enumerate(views):
            alias = f"_dl_v{index}"
            rows = view_rows_sql(con, data, with_order=True)
            key_types = _key_types(con, rows, types[data.join_key])
            left_key = quote(data.join_key)
            right_key = f"{alias}._dl_k"
            if key_types is not None:
                left_key, right_key = (
                    f"CAST(e.{left_key} AS VARCHAR)",
                    f"CAST({right_key} AS VARCHAR)",
                )
            else:
                left_key = f"e.{left_key}"
            # without ties, event times alone order the rows (an int64, not the int128)
            order = "_dl_ts" if data.unique_times else "_dl_ord"
            joins.append(
                f"ASOF LEFT JOIN ({rows}) {alias} ON {left_key} = {right_key} "
                f"AND e.{order} >= {alias}.{order}"
            )
            ttl = data.view.ttl
            for feature in data.features:
                column = f"{alias}.{quote(feature)}"
                if ttl is not None:
                    ttl_us = ttl // timedelta(microseconds=1)
                    column = f"CASE WHEN {alias}._dl_ts >= e._dl_ts - {ttl_us} THEN {column} END"
                selects.append(f"{column} AS {quote(feature)}")
        entity_columns = ", ".join(f"e.{quote(c)}" for c in table.column_names)
        # the entity row's order value: its time, after every feature row of that time
        e_ord = f"CAST(_dl_ts AS HUGEINT) * {_TS_SHIFT} + ({_TS_SHIFT} - 1)"
        e_ord = (
            ""
            if all(d.unique_times for d in views)
            else f", {e_ord.replace('_dl_ts', e_ts)} AS _dl_ord"
        )
        query = (
            f"SELECT {entity_columns}{''.join(', ' + s for s in selects)} FROM "
            f"(SELECT *, {e_ts} AS _dl_ts{e_ord} FROM _dl_entity) e {' '.join(joins)}"
        )
        sql_odfvs = [odfv for odfv, _ in on_demand if odfv.sql is not None]
        if sql_odfvs:
            extra = ", ".join(c for odfv in sql_odfvs for c in sql_columns(odfv))
            query = f"SELECT *, {extra} FROM ({query})"
        query = f"SELECT * FROM ({query}) ORDER BY {ROW_COLUMN}"
        try:
            result = con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise Invalid(
                f"point-in-time join failed: {str(exc).splitlines()[0]}",
                hint="check the feature views' columns and on-demand SQL expressions",
            ) from exc
    finally:
        con.unregister("_dl_entity")
        if memory_limit:
            con.execute("RESET memory_limit")
    python_odfvs = [(odfv, fn) for odfv, fn in on_demand if odfv.sql is None]
    if python_odfvs:
        result = _with_python_features(result, python_odfvs, views)
    feature_names = [f for data in views for f in data.features] + [
        name for odfv, _ in on_demand for name in odfv.outputs
    ]
    chosen = list(dict.fromkeys(outputs if outputs is not None else feature_names))
    unknown = [name for name in chosen if name not in result.column_names]
    if unknown:
        raise Invalid(
            f"no feature {', '.join(map(repr, unknown))} among the views and on-demand views",
            hint=f"choose from {', '.join(feature_names)}",
        )
    keep = [c for c in table.column_names if c != ROW_COLUMN] + chosen
    return result.select(keep)


def input_columns(odfv: OnDemandFeatureView, views: Sequence[ViewInput]) -> list[str]:
    """What an on-demand view reads: its source views' features, then its request fields."""
    names = [f for data in views if data.view.name in odfv.sources for f in data.features]
    return list(dict.fromkeys([*names, *odfv.request]))


_NUMBER_TYPES = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DOUBLE|FLOAT|REAL|DECIMAL(\(.*\))?)$"
)


def _key_types(con: duckdb.DuckDBPyConnection, rows: str, entity_type: str) -> str | None:
    """None when the entity frame's key and the view's key compare as they are (same type,
    or both numbers: 1 = 1.0); else the view's type (both sides are compared as text)."""
    view_type = str(con.sql(f"DESCRIBE SELECT _dl_k FROM ({rows})").fetchall()[0][1])
    entity = str(entity_type)
    if view_type == entity or (_NUMBER_TYPES.match(view_type) and _NUMBER_TYPES.match(entity)):
        return None
    return view_type


def _check_names(
    table: pa.Table,
    views: Sequence[ViewInput],
    on_demand: Sequence[tuple[OnDemandFeatureView, Callable[..., Any] | None]],
) -> None:
    produced = [f for data in views for f in data.features] + [
        name for odfv, _ in on_demand for name in odfv.outputs
    ]
    internal = sorted(name for name in table.column_names if name.startswith("_dl_"))
    if internal:
        raise Invalid(
            f"the entity frame has column(s) {', '.join(internal)}: names starting with _dl_ are "
            "reserved",
            hint="rename those columns of the entity rows",
        )
    clashes = sorted(set(produced) & set(table.column_names))
    if clashes:
        raise Invalid(
            f"the entity frame already has column(s) {', '.join(clashes)}, which are features",
            hint="drop or rename those columns of the entity rows",
        )
    seen: set[str] = set()
    for data in views:
        for feature in data.features:
            if feature in seen:
                raise Invalid(
                    f"feature {feature!r} comes from two views",
                    hint="select it from one view only, with `view:feature`",
                )
            seen.add(feature)


def _with_python_features(
    table: pa.Table,
    odfvs: Sequence[tuple[OnDemandFeatureView, Callable[..., Any] | None]],
    views: Sequence[ViewInput],
) -> pa.Table:
    """Append each Python on-demand view's outputs; the other columns keep their Arrow types
    (no round trip through pandas, which would turn integers with gaps into floats)."""
    import pyarrow as pa

    types = {f: data.view.features[f] for data in views for f in data.features}
    for odfv, function in odfvs:
        assert function is not None
        # the function sees what it sees online: its views' features and the request fields
        names = input_columns(odfv, views)
        frame = table.select(names).to_pandas()
        inputs = typed_inputs(frame, {**types, **odfv.request})
        outputs = apply_python(odfv, function, inputs)
        for name, dtype in odfv.outputs.items():
            column = pa.Array.from_pandas(outputs[name], type=_arrow_type(dtype))
            table = table.append_column(name, column)
    return table


def _arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    return {
        "integer": pa.int64(),
        "number": pa.float64(),
        "string": pa.string(),
        "boolean": pa.bool_(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }[dtype]
