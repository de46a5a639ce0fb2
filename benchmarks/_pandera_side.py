"""The hand pipeline for benchmarks/ingest.py, run in benchmarks/.venvs/pandera.

    benchmarks/.venvs/pandera/bin/python benchmarks/_pandera_side.py CONFIG.json

What a user writes by hand: pandas ``read_csv`` -> a pandera schema with the contract's checks
(``lazy=True``, so every failure is collected) -> drop the rows named in the failure cases ->
``to_parquet``. Nothing records what was dropped. A numeric column with a text value is read
as text by pandas; a pandera parser turns it into numbers first (``pd.to_numeric``, text
becomes missing and fails ``nullable=False``), else pandera's range check on that column fails
as a whole with a TypeError and names no rows. Prints one line ``BENCH-JSON {...}``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

MARKER = "BENCH-JSON "


def to_number(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def build_schema(spec: dict[str, Any]) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    key = set(spec["key"])
    for name, column in spec["columns"].items():
        nullable = column.get("nullable", True)
        if column["type"] == "integer":
            columns[name] = pa.Column(
                int,
                nullable=nullable,
                unique=name in key,
                report_duplicates="exclude_first",
                coerce=True,
            )
        elif column["type"] == "number":
            columns[name] = pa.Column(
                float,
                pa.Check.in_range(column["min"], column["max"]),
                nullable=nullable,
                coerce=True,
                parsers=pa.Parser(to_number),
            )
        else:
            columns[name] = pa.Column(str, pa.Check.isin(column["allowed"]), nullable=nullable)
    return pa.DataFrameSchema(columns, strict=True)


def validate(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> tuple[pd.DataFrame, Any, int]:
    """The validated frame without its failing rows, the failing row labels, and how many
    failures named no row (those cannot be dropped)."""
    try:
        return schema.validate(frame, lazy=True), [], 0
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        bad = cases["index"].dropna().unique()
        unnamed = int(cases["index"].isna().sum())
        return err.data.drop(index=bad), bad, unnamed


def pipeline(
    schema: pa.DataFrameSchema, csv: str, out: Path, engine: str | None
) -> dict[str, float | int]:
    clock = time.perf_counter
    start = clock()
    frame = pd.read_csv(csv, engine=engine) if engine else pd.read_csv(csv)
    read = clock()
    clean, bad, unnamed = validate(schema, frame)
    validated = clock()
    clean.to_parquet(out, index=False)
    done = clock()
    return {
        "total": done - start,
        "read_csv": read - start,
        "validate_and_drop": validated - read,
        "to_parquet": done - validated,
        "rows_in": len(frame),
        "rows_stored": len(clean),
        "rows_dropped": len(bad),
        "failures_without_row": unnamed,
    }


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    csv, repeats = config["csv"], int(config["repeats"])
    out_dir = Path(config["out"])
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = build_schema(config["spec"])
    times: dict[str, list[float]] = {
        "hand": [],
        "hand_pyarrow": [],
        "pandera_validate": [],
        "pandera_validate_clean": [],
    }
    steps: dict[str, list[dict[str, float | int]]] = {"hand": [], "hand_pyarrow": []}
    for i in range(repeats + 1):  # the first is a warm-up
        for key, engine in (("hand", None), ("hand_pyarrow", "pyarrow")):
            out = out_dir / f"{key}-{i}.parquet"
            result = pipeline(schema, csv, out, engine)
            out.unlink()
            if i:
                times[key].append(float(result["total"]))
                steps[key].append(result)

    frame = pd.read_csv(csv)
    clean, _, _ = validate(schema, frame)
    for i in range(repeats + 1):
        start = time.perf_counter()
        validate(schema, frame)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        schema.validate(clean, lazy=True)
        elapsed_clean = time.perf_counter() - start
        if i:
            times["pandera_validate"].append(elapsed)
            times["pandera_validate_clean"].append(elapsed_clean)

    expected = int(config["expected_stored"])
    last = steps["hand"][-1]
    problems = []
    for key in ("hand", "hand_pyarrow"):
        got = steps[key][-1]
        if got["rows_stored"] != expected:
            problems.append(f"{key}: stored {got['rows_stored']:,} rows, expected {expected:,}")
        if got["failures_without_row"]:
            problems.append(f"{key}: {got['failures_without_row']} failures named no row")
    breakdown = {
        key: {
            part: statistics.median(float(s[part]) for s in steps[key])
            for part in ("read_csv", "validate_and_drop", "to_parquet")
        }
        for key in steps
    }
    checks = {
        "rows_in": last["rows_in"],
        "rows_stored": last["rows_stored"],
        "rows_dropped": last["rows_dropped"],
        "expected_stored": expected,
        "problems": problems,
    }
    payload = {"times": times, "breakdown": breakdown, "checks": checks, "steps": steps}
    print(MARKER + json.dumps(payload))


if __name__ == "__main__":
    main()
