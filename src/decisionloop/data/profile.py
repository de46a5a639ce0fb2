"""Profile a DataFrame into column specs: what `decisionloop init` writes into the contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

from decisionloop.config import ColumnSpec, ColumnType

if TYPE_CHECKING:
    import pandas as pd


def infer_column_type(series: pd.Series) -> ColumnType:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        non_null = series.dropna()
        if len(non_null) and (non_null == non_null.round()).all() and series.isna().any():
            return "integer"  # pandas reads integers with gaps as floats
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    # a boolean column with gaps arrives as objects: True, False and NaN
    uniques = series.dropna().unique()
    if 0 < len(uniques) <= 2 and {str(v).lower() for v in uniques} <= {"true", "false"}:
        return "boolean"
    return "string"


def profile_columns(frame: pd.DataFrame) -> dict[str, ColumnSpec]:
    return {
        name: ColumnSpec(
            type=infer_column_type(frame[name]), nullable=bool(frame[name].isna().any())
        )
        for name in frame.columns
    }


def identifier_like(frame: pd.DataFrame) -> list[str]:
    """Columns that identify rows rather than describe them, useless as features: strings
    whose every value is distinct, and integer row numbers (1, 2, 3, ...)."""
    if len(frame) <= 20:
        return []
    found = []
    for name in frame.columns:
        series = frame[name]
        kind = infer_column_type(series)
        if series.isna().any() or series.nunique() != len(frame):
            continue
        if kind == "string" or (kind == "integer" and bool((series.diff().dropna() == 1).all())):
            found.append(name)
    return found
