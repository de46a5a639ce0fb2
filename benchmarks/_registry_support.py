"""Processes, statistics and reporting for benchmarks/registry.py (standard library only at
module level, so it can be imported before numpy and the thread settings take effect)."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from _machine import host
from _venv import ensure_venv

BENCH_DIR = Path(__file__).resolve().parent
MLFLOW_VENV = BENCH_DIR / ".venvs" / "mlflow"
MLFLOW_PACKAGES = ["mlflow", "xgboost", "pandas", "scikit-learn"]
#: rows with at least this many samples also report a 99th percentile
P99_MIN_SAMPLES = 50

#: the same for both sides, set before numpy/xgboost load anywhere (the parent process included)
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # the machine is offline: keep MLflow's usage telemetry from trying the network
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONWARNINGS": "ignore",
}


# -- processes ----------------------------------------------------------------------------------


def ensure_mlflow_venv() -> Path:
    """benchmarks/.venvs/mlflow with MLflow and its own XGBoost, created once."""
    return ensure_venv(MLFLOW_VENV, MLFLOW_PACKAGES, "MLflow's pins clash with ours")


def child(python: Path, args: list[str]) -> str:
    """Run ``python ARGS`` with the benchmark's environment; its stdout, or exit on failure."""
    return run_program([str(python), *args])


def run_program(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=child_env(), check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"{' '.join(argv[:3])} failed (exit {proc.returncode})")
    return proc.stdout


def child_env() -> dict[str, str]:
    env = {**os.environ, **THREAD_ENV}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- statistics ---------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def p99(values: list[float]) -> float | None:
    """The 99th percentile (nearest rank), or None with too few samples to mean anything."""
    if len(values) < P99_MIN_SAMPLES:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def summarize(
    times: dict[str, dict[str, list[float]]], rows: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """One table row per (key, operation): medians, p99s and the MLflow / DecisionLoop ratio."""
    out = []
    for key, operation in rows:
        dl, ml = times["decisionloop"][key], times["mlflow"][key]
        dl_s, ml_s = median(dl), median(ml)
        out.append(
            {
                "key": key,
                "operation": operation,
                "decisionloop_s": dl_s,
                "mlflow_s": ml_s,
                "decisionloop_p99_s": p99(dl),
                "mlflow_p99_s": p99(ml),
                "ratio": ml_s / dl_s if dl_s > 0 else float("inf"),
                "n": [len(dl), len(ml)],
            }
        )
    return out


# -- reporting ----------------------------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def with_p99(row: dict[str, Any], side: str) -> str:
    median_s, p99_s = row[f"{side}_s"], row[f"{side}_p99_s"]
    text = fmt_seconds(median_s)
    return text if p99_s is None else f"{text} (p99 {fmt_seconds(p99_s)})"


def table_cells(row: dict[str, Any]) -> list[str]:
    return [
        row["operation"],
        str(row["n"][1]),
        with_p99(row, "decisionloop"),
        with_p99(row, "mlflow"),
        fmt_ratio(row["ratio"]),
    ]


HEADER = ["operation", "n", "DecisionLoop", "MLflow", "MLflow / DL"]


def print_table(rows: list[dict[str, Any]], title: str, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(cell.replace("`", "") for cell in table_cells(row)))
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|--:|--:|--:|--:|"]
    lines.extend("| " + " | ".join(table_cells(row)) + " |" for row in rows)
    return "\n".join(lines)


def machine(mlflow_python: Path) -> dict[str, Any]:
    """The host, and the versions of the packages that matter on each side."""
    packages = ("xgboost", "pandas", "scikit-learn", "sqlalchemy", "numpy")
    report = (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{p: m.version(p) for p in {(*packages, 'mlflow')!r}}}))"
    )
    return {
        **host(),
        "decisionloop_env": {p: metadata.version(p) for p in ("decisionloop", *packages)},
        "mlflow_env": json.loads(child(mlflow_python, ["-c", report])),
    }
