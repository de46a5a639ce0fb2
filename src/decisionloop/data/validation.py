"""Schema validation: check a frame against the declared columns and coerce it to their types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.config import ColumnSpec
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import pandas as pd

_TRUE = {"true", "yes", "1", "t", "y"}
_FALSE = {"false", "no", "0", "f", "n"}


@dataclass(frozen=True, slots=True)
class ColumnProblem:
    column: str
    problem: str
    rows: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.examples)
        return f"column {self.column!r} {self.problem} ({self.rows} row(s), e.g. {shown})"


def coerce_column(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series]:
    """Return the series cast to the declared type and a mask of values that failed the cast."""
    import pandas as pd

    present = series.notna()
    converted: Any
    if spec.type in ("integer", "number"):
        if pd.api.types.is_bool_dtype(series.dtype):
            converted = series.astype("float64")
        else:
            converted = pd.to_numeric(series, errors="coerce")
        bad = present & converted.isna()
        if spec.type == "integer":
            fractional = converted.notna() & (converted != converted.round())
            bad = bad | fractional
        return converted.astype("float64"), bad
    if spec.type == "boolean":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("float64"), pd.Series(False, index=series.index)
        if pd.api.types.is_numeric_dtype(series.dtype):
            # 0/1 with gaps is read as floats: 1.0 would otherwise be compared as the text "1.0"
            converted = series.astype("float64").where(series.isin([0, 1]))
            return converted, present & converted.isna()
        text = series.astype("string").str.strip().str.lower()
        converted = pd.Series(float("nan"), index=series.index, dtype="float64")
        converted[text.isin(_TRUE)] = 1.0
        converted[text.isin(_FALSE)] = 0.0
        return converted, present & converted.isna()
    if spec.type == "datetime":
        converted = pd.to_datetime(series, errors="coerce", utc=True)
        retry = present & converted.isna()
        if retry.any():
            # the format is inferred from the first value, so "2024-01-02T10:00" after
            # "2024-01-01" would be refused: parse the values that missed one by one
            converted = converted.where(
                ~retry,
                pd.to_datetime(series.where(retry), errors="coerce", utc=True, format="mixed"),
            )
        return converted, present & converted.isna()
    converted = series.astype("string")
    return converted.astype(object).where(present, None), pd.Series(False, index=series.index)


def validate_frame(
    frame: pd.DataFrame, columns: dict[str, ColumnSpec], *, required: set[str] | None = None
) -> pd.DataFrame:
    """Check declared columns exist, cast to their types and reject bad values with examples.

    ``required`` limits which declared columns must be present (default: all of them).
    Columns not declared are dropped.
    """
    import pandas as pd

    needed = set(columns) if required is None else required
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise Invalid(
            f"missing column(s): {', '.join(missing)}",
            hint="the data must have every column the contract in decisionloop.yaml declares",
        )
    problems: list[ColumnProblem] = []
    out: dict[str, pd.Series] = {}
    for name, spec in columns.items():
        if name not in frame.columns:
            continue
        converted, bad = coerce_column(frame[name], spec)
        if bad.any():
            examples = tuple(repr(v) for v in frame[name][bad].drop_duplicates().head(3))
            problems.append(
                ColumnProblem(
                    name,
                    f"is declared {spec.type} but has values that are not",
                    int(bad.sum()),
                    examples,
                )
            )
        if not spec.nullable:
            null = frame[name].isna()
            if null.any():
                rows = tuple(str(i) for i in frame.index[null][:3])
                problems.append(
                    ColumnProblem(
                        name,
                        "is declared not nullable but has missing values",
                        int(null.sum()),
                        rows,
                    )
                )
        out[name] = converted
    if problems:
        raise Invalid(
            "; ".join(p.describe() for p in problems[:5])
            + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""),
            hint="fix the data, or the column's type/nullable in decisionloop.yaml",
        )
    return pd.DataFrame(out, index=frame.index)
