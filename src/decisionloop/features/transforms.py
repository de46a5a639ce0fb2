"""On-demand features: the same SQL expression or Python function runs on training sets
(offline, whole frames) and on online lookups (a few rows), so training and serving agree."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import pandas as pd

    from decisionloop.features.definitions import OnDemandFeatureView

#: DuckDB's type for each column type of the contract
SQL_TYPES = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMP",
}


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_columns(odfv: OnDemandFeatureView) -> list[str]:
    """``CAST((expression) AS type) AS "output"`` for each output of a SQL on-demand view."""
    assert odfv.sql is not None
    return [
        f"CAST(({odfv.sql[name]}) AS {SQL_TYPES[dtype]}) AS {quote(name)}"
        for name, dtype in odfv.outputs.items()
    ]


def apply_python(
    odfv: OnDemandFeatureView, function: Callable[..., Any], frame: pd.DataFrame
) -> pd.DataFrame:
    """The outputs of a Python on-demand view for every row of ``frame`` (its inputs), cast to
    the declared types; a function that fails or returns the wrong shape is an Invalid error
    naming the view."""
    import pandas as pd

    try:
        if odfv.mode == "row":
            records = [function(row) for row in plain_records(frame)]
            _check_records(odfv, records)
            result = pd.DataFrame.from_records(records, index=frame.index, columns=[*odfv.outputs])
        else:
            returned = function(frame)
            result = pd.DataFrame(returned)
    except Invalid:
        raise
    except Exception as exc:
        raise Invalid(
            f"on-demand view {odfv.name!r} failed: {type(exc).__name__}: {exc}",
            hint="fix the function; it gets the inputs "
            + ("as a dict per row" if odfv.mode == "row" else "as a DataFrame"),
        ) from exc
    missing = [name for name in odfv.outputs if name not in result.columns]
    if missing or len(result) != len(frame):
        raise Invalid(
            f"on-demand view {odfv.name!r} returned {len(result)} rows and columns "
            f"{list(result.columns)[:10]}; expected {len(frame)} rows with {list(odfv.outputs)}",
            hint="return one output row per input row, with every declared output",
        )
    result.index = frame.index
    return _cast(result[list(odfv.outputs)], odfv)


def plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a row-mode function sees them, offline and online alike: plain Python values
    (int, float, str, bool, UTC datetime) with None for anything missing (never NaN or NA)."""
    names = list(frame.columns)
    if not names:
        return [{} for _ in range(len(frame))]
    columns = [
        [_plain_scalar(v) for v in frame[n].astype(object).where(frame[n].notna(), None)]
        for n in names
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _plain_scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _check_records(odfv: OnDemandFeatureView, records: list[Any]) -> None:
    for record in records:
        if not isinstance(record, dict) or any(name not in record for name in odfv.outputs):
            shown = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise Invalid(
                f"on-demand view {odfv.name!r} returned {shown} for a row, not "
                f"{sorted(odfv.outputs)}",
                hint=f"a row-mode function returns a dict of {', '.join(odfv.outputs)}",
            )


def cast_scalar(value: Any, dtype: str) -> Any:
    """One output value as its declared type (None stays None), as ``_cast`` does to columns."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        if dtype == "number":
            return float(value)
        if dtype == "integer":
            number = float(value)
            if not number.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            return int(value)
        if dtype == "boolean":
            return bool(value)
        if dtype == "datetime":
            import pandas as pd

            stamp = pd.Timestamp(value)
            return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise Invalid(
            f"on-demand output {value!r} is not {dtype}: {exc}",
            hint="return values of the declared type",
        ) from exc


def _cast(frame: pd.DataFrame, odfv: OnDemandFeatureView) -> pd.DataFrame:
    import pandas as pd

    cast: dict[str, Any] = {}
    for name, dtype in odfv.outputs.items():
        column = frame[name]
        try:
            if dtype == "number":
                cast[name] = pd.to_numeric(column, errors="raise").astype("float64")
            elif dtype == "integer":
                cast[name] = pd.to_numeric(column, errors="raise").astype("Int64")
            elif dtype == "boolean":
                cast[name] = column.astype("boolean")
            elif dtype == "datetime":
                cast[name] = pd.to_datetime(column, utc=True)
            else:
                cast[name] = column.astype("string").astype(object).where(column.notna(), None)
        except (TypeError, ValueError) as exc:
            raise Invalid(
                f"on-demand view {odfv.name!r}: output {name!r} is not {dtype}: {exc}",
                hint=f"return {dtype} values for {name!r} or change its declared type",
            ) from exc
    return pd.DataFrame(cast, index=frame.index)


def typed_inputs(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """Give on-demand inputs one dtype per declared type (numbers float64, integers nullable
    Int64, datetimes UTC), so a function computes the same values online and offline."""
    import pandas as pd

    frame = frame.copy()
    for name in frame.columns:
        kind = types.get(name)
        if kind == "number":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif kind == "integer":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        elif kind == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce")
    return frame


_local = threading.local()


def apply_sql_online(odfv: OnDemandFeatureView, frame: pd.DataFrame) -> pd.DataFrame:
    """A SQL on-demand view on a few rows: the same expressions, run by DuckDB (one
    connection per thread)."""
    import duckdb

    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        _local.con = con
    con.register("_dl_inputs", frame)
    try:
        result: pd.DataFrame = con.sql(
            f"SELECT {', '.join(sql_columns(odfv))} FROM _dl_inputs"
        ).df()
    except duckdb.Error as exc:
        raise Invalid(
            f"on-demand view {odfv.name!r}: {str(exc).splitlines()[0]}",
            hint="fix its SQL expressions (DuckDB syntax, over its input names)",
        ) from exc
    finally:
        con.unregister("_dl_inputs")
    result.index = frame.index
    return result
