"""Feature store: DecisionLoop side by side with Feast (file and DuckDB offline stores, SQLite
online store) and with hand-written DuckDB/SQLite baselines, on the same generated data.

    .venv/bin/python benchmarks/features.py [--quick] [--markdown] [--skip-feast] [--http]
        [--entities N] [--timestamps T] [--entity-rows M] [--repeats R] [--profile]

About 8 minutes at full size with --http (Feast's file store alone takes ~45 s and 6 GB).

Data (numpy, seeded, cached by its parameters and by the day it is anchored to): ``entities``
x ``timestamps`` feature rows (entity_id, event_timestamp, f0..f9 floats; one entity's
timestamps are distinct) spread over the 120 days before today 00:00 UTC, and an entity frame
of ``entity_rows`` rows (entity_id, event_timestamp, label, row_id) that holds entities without
any feature row (5%), rows before an entity's first feature row or more than the 7-day TTL
after its latest one, rows exactly at a feature row's time and exactly one TTL after it (1%
each), and repeated (entity, timestamp) pairs (5%). Defaults: 100k x 20 = 2M feature rows,
1M entity rows; ``--quick``: 10k x 20 and 100k entity rows, one repetition.

Every side runs in its own process (peak memory is ``resource.getrusage`` of that process,
inputs included), in rounds so that the sides take turns on a noisy machine; each timed call
follows an untimed warm-up. DecisionLoop goes through its public API in a temporary project
(benchmarks/features_sides.py); Feast 0.67 runs in benchmarks/.venvs/feast
(benchmarks/features_feast.py), created once, because its pins clash with ours. The outputs
are checked row for row (joined on row_id, floats compared exactly, nulls equal), and the
online stores entity by entity. ``--http`` adds HTTP lookups of one entity per request
(benchmarks/features_http.py): ``decisionloop serve``, the same app without uvicorn's access
log, ``feast serve`` (its defaults) and a minimal Starlette app over a plain SQLite table, each
one worker process, loaded with 8 keep-alive connections by wrk (``apt-get install wrk``; else
an asyncio client, which takes more of the 2 cores), errors counted.

In the table the ratio is the peer's / DecisionLoop's for times and memory and DecisionLoop's /
the peer's for requests per second: above 1 means DecisionLoop does better. Results go to
benchmarks/results/features.json; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import features_http as http  # noqa: E402
from _machine import host  # noqa: E402
from _venv import ensure_venv  # noqa: E402
from features_checks import compare  # noqa: E402
from features_report import goals, markdown, print_report, summarize  # noqa: E402
from features_sides import DATASET, FEATURES, SERVICE, TTL_DAYS, VIEW  # noqa: E402

REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "features.json"
SIDES = BENCH_DIR / "features_sides.py"
FEAST_SIDE = BENCH_DIR / "features_feast.py"
FEAST_VENV = BENCH_DIR / ".venvs" / "feast"
FEAST_PACKAGES = ["feast[duckdb]==0.67.0", "pyarrow", "pandas", "numpy"]
MARKER = "BENCH-JSON "
#: bump when the generated data changes, so cached files are not reused
DATA_VERSION = 1
SEED = 20261126
DAY_S = 86_400
SPAN_DAYS = 120
#: entity rows start this long before the first feature rows
BEFORE_DAYS = 10
UNKNOWN_SHARE = 0.05
EXACT_SHARE = 0.01
DUPLICATE_SHARE = 0.05
ONE_CALLS = 2_000
HUNDRED_CALLS = 300
HTTP_CONCURRENCY = 8
ONE_WORKER = ["--workers", "1", "--port", "{port}"]
APP = "decisionloop.serving.http"


@dataclass(frozen=True)
class Plan:
    entities: int
    timestamps: int
    entity_rows: int
    repeats: int
    feast_repeats: int
    feast: bool
    http: bool
    http_seconds: float
    load_client: str
    profile: bool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, help="entities with feature rows (100,000)")
    parser.add_argument("--timestamps", type=int, help="feature rows per entity (20)")
    parser.add_argument("--entity-rows", type=int, help="rows of the entity frame (1,000,000)")
    parser.add_argument("--quick", action="store_true", help="10k x 20, 100k rows, 1 repetition")
    parser.add_argument("--repeats", type=int, help="rounds of every side (3; --quick 1)")
    parser.add_argument(
        "--feast-repeats",
        type=int,
        default=1,
        help="rounds of Feast's file store and its materialization, the slow steps (1)",
    )
    parser.add_argument("--skip-feast", action="store_true", help="DecisionLoop and hand only")
    parser.add_argument("--http", action="store_true", help="also load the HTTP servers")
    parser.add_argument("--http-seconds", type=float, help="per server and round (10; quick 5)")
    parser.add_argument(
        "--load-client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator: wrk (apt-get install wrk) or the asyncio one; auto: wrk "
        "when it is installed",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one DL retrieval")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results")
    args = parser.parse_args()
    quick = args.quick
    plan = Plan(
        entities=args.entities or (10_000 if quick else 100_000),
        timestamps=args.timestamps or 20,
        entity_rows=args.entity_rows or (100_000 if quick else 1_000_000),
        repeats=args.repeats or (1 if quick else 3),
        feast_repeats=max(1, args.feast_repeats),
        feast=not args.skip_feast,
        http=args.http,
        http_seconds=args.http_seconds or (5.0 if quick else 10.0),
        load_client=(
            ("wrk" if shutil.which("wrk") else "python")
            if args.load_client == "auto"
            else args.load_client
        ),
        profile=args.profile,
    )
    started = time.perf_counter()
    say(
        f"data: {plan.entities:,} entities x {plan.timestamps} timestamps = "
        f"{plan.entities * plan.timestamps:,} feature rows; {plan.entity_rows:,} entity rows"
    )
    data = ensure_data(plan)
    feast_python = (
        ensure_venv(FEAST_VENV, FEAST_PACKAGES, "Feast's pins clash with ours")
        if plan.feast
        else None
    )
    work = Path(tempfile.mkdtemp(prefix="dl-bench-features-"))
    try:
        say(f"working in {work}")
        measured = measure(plan, data, work, feast_python)
        say("checking the outputs row for row")
        checks = compare(data, measured["outputs"], measured["dumps"], plan)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    samples = measured["samples"]
    rows = summarize(samples, feast=plan.feast)
    result = {
        "command": " ".join(["python", "benchmarks/features.py", *sys.argv[1:]]),
        "plan": asdict(plan),
        "data": {k: v for k, v in data.items() if not k.endswith("_file")},
        "machine": {
            **host(),
            "decisionloop_env": versions(Path(sys.executable)),
            "feast_env": measured["feast_versions"],
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "table": rows,
        "checks": checks,
        "goals": goals(rows, checks, samples),
        "setup": measured["setup"],
        "http": measured["http"],
        "profile": measured["profile"],
        "samples": samples,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(rows, result)
    if args.markdown:
        print(markdown(rows, result))
    say(f"wrote {args.output} in {result['total_seconds']} s")


# -- the data -----------------------------------------------------------------------------------


def anchor_seconds() -> int:
    """Today 00:00 UTC: the feature rows end here, so the online TTL (against the clock)
    keeps an entity whose latest row is less than 7 days old."""
    now = int(time.time())
    return now - now % DAY_S


def ensure_data(plan: Plan) -> dict[str, Any]:
    anchor = anchor_seconds()
    day = datetime.fromtimestamp(anchor, tz=UTC).strftime("%Y%m%d")
    folder = (
        Path(tempfile.gettempdir())
        / "decisionloop-bench-features"
        / (
            f"v{DATA_VERSION}-e{plan.entities}-t{plan.timestamps}-m{plan.entity_rows}"
            f"-seed{SEED}-{day}"
        )
    )
    manifest = folder / "manifest.json"
    if manifest.exists():
        found: dict[str, Any] = json.loads(manifest.read_text())
        if Path(found["features_file"]).exists() and Path(found["entities_file"]).exists():
            say(f"data: cached in {folder}")
            return found
    say(f"data: generating into {folder}")
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    found = generate(plan, anchor, folder)
    found["generate_seconds"] = round(time.perf_counter() - start, 1)
    manifest.write_text(json.dumps(found, indent=2))
    return found


def generate(plan: Plan, anchor: int, folder: Path) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    n, t, m = plan.entities, plan.timestamps, plan.entity_rows
    span = SPAN_DAYS * DAY_S
    # each entity's times: t distinct seconds in the span, increasing
    offsets = np.sort(rng.integers(0, span, size=(n, t)), axis=1)
    steps = np.arange(t)
    offsets = np.maximum.accumulate(offsets - steps, axis=1) + steps
    ts = (anchor - span - t + offsets).ravel()
    ids = np.repeat(np.arange(1, n + 1, dtype=np.int64), t)
    values = rng.standard_normal((n * t, len(FEATURES)))
    order = np.argsort(ts, kind="stable")  # stored in time order, as a log would be
    us = pa.timestamp("us", tz="UTC")
    columns = {
        "entity_id": pa.array(ids[order]),
        "event_timestamp": pa.array(ts[order] * 10**6, us),
    }
    for i, name in enumerate(FEATURES):
        columns[name] = pa.array(values[order, i])
    features_file = folder / "features.parquet"
    pq.write_table(pa.table(columns), features_file)
    del values, columns

    unknown = max(1, round(n * UNKNOWN_SHARE))
    entity_id = rng.integers(1, n + unknown + 1, m).astype(np.int64)
    start = anchor - span - BEFORE_DAYS * DAY_S
    when = start + rng.integers(0, anchor - start, m)
    # rows exactly at a feature row's time, and exactly one TTL after it
    exact = max(1, round(m * EXACT_SHARE))
    picked = rng.choice(m, 2 * exact, replace=False)
    source = rng.integers(0, n * t, 2 * exact)
    entity_id[picked] = ids[source]
    when[picked[:exact]] = ts[source[:exact]]
    when[picked[exact:]] = ts[source[exact:]] + TTL_DAYS * DAY_S
    # repeated (entity, timestamp) pairs: a later row copies an earlier one
    copies = max(1, round(m * DUPLICATE_SHARE))
    later = np.sort(rng.choice(np.arange(1, m), copies, replace=False))
    earlier = (rng.random(copies) * later).astype(np.int64)
    for target, origin in zip(later.tolist(), earlier.tolist(), strict=True):
        entity_id[target] = entity_id[origin]
        when[target] = when[origin]
    pairs = entity_id * (1 << 34) + (when - start)
    entities_file = folder / "entities.parquet"
    pq.write_table(
        pa.table(
            {
                "entity_id": pa.array(entity_id),
                "event_timestamp": pa.array(when * 10**6, us),
                "label": pa.array(rng.integers(0, 2, m)),
                "row_id": pa.array(np.arange(m, dtype=np.int64)),
            }
        ),
        entities_file,
    )
    return {
        "features_file": str(features_file),
        "entities_file": str(entities_file),
        "seed": SEED,
        "anchor": datetime.fromtimestamp(anchor, tz=UTC).isoformat(),
        "feature_rows": n * t,
        "entities": n,
        "timestamps": t,
        "entity_rows": m,
        "first_feature_us": int(ts.min()) * 10**6,
        "last_feature_us": int(ts.max()) * 10**6,
        "rows_of_entities_without_features": int((entity_id > n).sum()),
        "rows_at_a_feature_time": exact,
        "rows_one_ttl_after_a_feature_time": exact,
        "repeated_entity_timestamp_rows": int(m - len(np.unique(pairs))),
        "features_bytes": features_file.stat().st_size,
        "entities_bytes": entities_file.stat().st_size,
    }


# -- running the sides --------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "FEAST_USAGE": "False", **extra}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def run_side(
    python: Path, script: Path, side: str, config: dict[str, Any], work: Path, **env: str
) -> dict[str, Any]:
    path = work / "configs" / f"{side}-{time.time_ns()}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(config))
    start = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(script), side, str(path)],
        capture_output=True,
        text=True,
        env=child_env(**env),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"{script.name} {side} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    say(f"  {script.stem} {side}: {time.perf_counter() - start:.1f} s in all")
    return result


def write_project(folder: Path, data: dict[str, Any]) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    columns = {"entity_id": {"type": "integer"}, "event_timestamp": {"type": "datetime"}}
    columns.update({name: {"type": "number"} for name in FEATURES})
    config = {
        "name": "features-bench",
        # keyed by (entity, event time), as a feature history is: ingestion checks it, and
        # retrieval knows there are no ties to break
        "datasets": {
            DATASET: {
                "source": data["features_file"],
                "columns": columns,
                "contract": {"key": ["entity_id", "event_timestamp"]},
            }
        },
        "features": {
            "entities": {"entity": {"join_key": "entity_id"}},
            "views": {
                VIEW: {
                    "entity": "entity",
                    "source": DATASET,
                    "timestamp": "event_timestamp",
                    "ttl": f"{TTL_DAYS}d",
                    "features": dict.fromkeys(FEATURES, "number"),
                }
            },
            "services": {SERVICE: {"features": [VIEW]}},
        },
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def lookup_ids(plan: Plan) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    unknown = max(1, round(plan.entities * UNKNOWN_SHARE))
    return {
        "ids_one": rng.integers(1, plan.entities + 1, ONE_CALLS).tolist(),
        "ids_hundred": rng.integers(1, plan.entities + 1, (HUNDRED_CALLS, 100)).tolist(),
        "dump_ids": list(range(1, plan.entities + unknown + 1)),
    }


def measure(
    plan: Plan, data: dict[str, Any], work: Path, feast_python: Path | None
) -> dict[str, Any]:
    ours = Path(sys.executable)
    project = write_project(work / "decisionloop", data)
    say("DecisionLoop: ingest the feature rows and apply the definitions")
    setup: dict[str, Any] = {
        "decisionloop": run_side(ours, SIDES, "dl_setup", {"project": str(project)}, work)
    }
    feast_repos = {kind: work / f"feast-{kind}" for kind in ("file", "duckdb")}
    feast_versions: dict[str, str] = {}
    if feast_python is not None:
        for kind, repo in feast_repos.items():
            say(f"Feast: apply the definitions ({kind} offline store)")
            done = feast(feast_python, "setup", repo, kind, data, work)
            setup[f"feast_{kind}"] = done
            feast_versions = done["versions"]
    ids = lookup_ids(plan)
    samples: dict[str, list[float]] = {}
    outputs: dict[str, Path] = {}
    dumps: dict[str, Any] = {}
    profile: dict[str, Any] | None = None

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    common = {"entities": data["entities_file"], "features": data["features_file"]}
    for r in range(plan.repeats):
        last = r == plan.repeats - 1
        say(f"round {r + 1} of {plan.repeats}: historical retrieval")
        config = {**common, "project": str(project), "profile": last and plan.profile}
        if last:
            outputs["decisionloop"] = work / "out-decisionloop.parquet"
            config["output"] = str(outputs["decisionloop"])
        dl = run_side(ours, SIDES, "dl_offline", config, work)
        add("dl_arrow", dl["arrow_seconds"])
        add("dl_pandas", dl["pandas_seconds"])
        add("dl_peak_mb", dl["peak_mb"])
        add("dl_peak_mb_arrow", dl["peak_mb_arrow"])
        add("dl_loaded_mb", dl["loaded_mb"])
        profile = dl.get("profile") or profile
        config = dict(common)
        if last:
            outputs["hand"] = work / "out-hand.parquet"
            config["output"] = str(outputs["hand"])
        hand = run_side(ours, SIDES, "hand_offline", config, work)
        add("hand_arrow", hand["arrow_seconds"])
        add("hand_unordered", hand["unordered_arrow_seconds"])
        add("hand_pandas", hand["pandas_seconds"])
        add("hand_peak_mb", hand["peak_mb"])
        add("hand_loaded_mb", hand["loaded_mb"])
        if feast_python is not None:
            kinds = ["duckdb"] + (["file"] if r < plan.feast_repeats else [])
            for kind in kinds:
                extra: dict[str, Any] = {}
                if (kind == "duckdb" and last) or (kind == "file" and r == 0):
                    outputs[f"feast_{kind}"] = work / f"out-feast-{kind}.parquet"
                    extra["output"] = str(outputs[f"feast_{kind}"])
                done = feast(feast_python, "offline", feast_repos[kind], kind, data, work, extra)
                if "arrow_seconds" in done:
                    add(f"feast_{kind}_arrow", done["arrow_seconds"])
                add(f"feast_{kind}_pandas", done["pandas_seconds"])
                add(f"feast_{kind}_peak_mb", done["peak_mb"])
                add(f"feast_{kind}_loaded_mb", done["loaded_mb"])
                add(f"feast_{kind}_rows", done["rows"])

        say(f"round {r + 1} of {plan.repeats}: materialization and online reads")
        online_db = work / f"dl-online-{r}.db"
        config = {"project": str(project), **ids}
        if last:
            config["dump"] = str(work / "dump-decisionloop.parquet")
        dl = run_side(
            ours,
            SIDES,
            "dl_online",
            config,
            work,
            DECISIONLOOP_STORAGE__ONLINE_URL=f"sqlite:///{online_db}",
        )
        add("dl_materialize", dl["materialize_seconds"])
        add_lookups(add, "dl", dl)
        if last:
            dumps["decisionloop"] = {**dl["dump"], "file": config["dump"], "db": str(online_db)}
            dumps["decisionloop_materialized"] = dl["materialized"]
        hand_db = work / f"hand-online-{r}.db"
        hand = run_side(ours, SIDES, "hand_online", {**common, **ids, "sqlite": str(hand_db)}, work)
        add("hand_materialize", hand["materialize_seconds"])
        add_lookups(add, "hand", hand)
        dumps["hand_db"] = str(hand_db)
        if feast_python is not None:
            span = {"start_us": data["first_feature_us"], "end_us": data["last_feature_us"]}
            if r < plan.feast_repeats:
                for kind in ("duckdb", "file"):
                    # each materialization writes into a fresh copy of the applied repository
                    repo = work / f"feast-{kind}-online-{r}"
                    shutil.copytree(feast_repos[kind], repo)
                    extra = {**span, **ids, "lookups": kind == "duckdb"}
                    if kind == "duckdb":
                        extra["dump"] = str(work / "dump-feast.parquet")
                    done = feast(feast_python, "materialize", repo, kind, data, work, extra)
                    add(f"feast_{kind}_materialize", done["materialize_seconds"])
                    if kind == "duckdb":
                        add_lookups(add, "feast", done)
                        dumps["feast"] = {**done["dump"], "file": extra["dump"]}
                        dumps["feast_repo"] = str(repo)
            else:
                done = feast(
                    feast_python, "online", Path(dumps["feast_repo"]), "duckdb", data, work, ids
                )
                add_lookups(add, "feast", done)
    http_results = None
    if plan.http:
        http_results = measure_http(plan, work, project, dumps, feast_python, ids)
        for side, outcome in http_results.items():
            samples[f"{side}_http"] = outcome["samples"]
    return {
        "samples": samples,
        "outputs": outputs,
        "dumps": dumps,
        "setup": setup,
        "profile": profile,
        "http": http_results,
        "feast_versions": feast_versions,
    }


def add_lookups(add: Any, side: str, result: dict[str, Any]) -> None:
    for name, key in (("one", "online_one"), ("hundred", "online_hundred")):
        add(f"{side}_{name}", result[key]["median_us"])
        add(f"{side}_{name}_p99", result[key]["p99_us"])


def feast(
    python: Path,
    action: str,
    repo: Path,
    kind: str,
    data: dict[str, Any],
    work: Path,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = {
        "repo": str(repo),
        "offline": kind,
        "features": data["features_file"],
        "entities": data["entities_file"],
        **(extra or {}),
    }
    return run_side(python, FEAST_SIDE, action, config, work)


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    health: str
    path: str
    bodies: list[str]
    cwd: Path | None = None


def http_servers(
    project: Path, dumps: dict[str, Any], feast_python: Path | None, ids: list[int]
) -> list[Server]:
    dl_env = child_env(
        DECISIONLOOP_STORAGE__ONLINE_URL=f"sqlite:///{dumps['decisionloop']['db']}",
        DECISIONLOOP_PROJECT_DIR=str(project),
    )
    dl_path = f"/v1/feature-services/{SERVICE}/online"
    dl_bodies = [json.dumps({"entities": [{"entity_id": i}]}) for i in ids]
    venv_bin = REPO / ".venv" / "bin"
    quiet = ["--log-level", "warning", "--port", "{port}", f"{APP}:app_from_environment"]
    minimal = [dumps["hand_db"], "{port}"]
    feast_args = ["-h", "127.0.0.1", "-p", "{port}", "-w", "1"]
    servers = [
        Server(
            "dl",
            [str(venv_bin / "decisionloop"), "serve", "--project", str(project), *ONE_WORKER],
            dl_env,
            "/healthz",
            dl_path,
            dl_bodies,
        ),
        # the same app without uvicorn's access log (`decisionloop serve` logs every request)
        Server(
            "dl_quiet",
            [str(venv_bin / "python"), "-m", "uvicorn", "--factory", "--no-access-log", *quiet],
            dl_env,
            "/healthz",
            dl_path,
            dl_bodies,
        ),
        Server(
            "minimal",
            [sys.executable, str(BENCH_DIR / "features_http.py"), "minimal", *minimal],
            child_env(),
            "/healthz",
            "/online",
            dl_bodies,
        ),
    ]
    if feast_python is not None:
        servers.append(
            Server(
                "feast",
                [
                    str(feast_python.parent / "feast"),
                    "-c",
                    dumps["feast_repo"],
                    "serve",
                    *feast_args,
                ],
                child_env(),
                "/health",
                "/get-online-features",
                [
                    json.dumps({"feature_service": SERVICE, "entities": {"entity_id": [i]}})
                    for i in ids
                ],
                Path(dumps["feast_repo"]),
            )
        )
    return servers


def measure_http(
    plan: Plan,
    work: Path,
    project: Path,
    dumps: dict[str, Any],
    feast_python: Path | None,
    ids: dict[str, Any],
) -> dict[str, Any]:
    """Each server alone with the load generator (its own process), the servers taking turns
    for ``plan.repeats`` rounds; a fresh server process each time."""
    servers = http_servers(project, dumps, feast_python, ids["ids_one"])
    runs: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
    for r in range(plan.repeats):
        for server in servers:
            say(f"HTTP round {r + 1} of {plan.repeats}: {server.name}")
            runs[server.name].append(http_run(plan, work, server))
    results = {}
    for name, outcomes in runs.items():
        rates = [o["requests_per_second"] for o in outcomes if o["requests_per_second"]]
        kinds: dict[str, int] = {}
        for outcome in outcomes:
            for kind, count in (outcome.get("error_kinds") or {}).items():
                kinds[kind] = kinds.get(kind, 0) + count
        results[name] = {
            "requests_per_second": statistics.median(rates) if rates else None,
            "samples": rates,
            "requests": sum(o.get("ok", 0) for o in outcomes),
            "errors": sum(kinds.values()),
            "error_kinds": kinds,
            "note": outcomes[-1].get("note"),
            "runs": outcomes,
        }
    return results


def http_run(plan: Plan, work: Path, server: Server) -> dict[str, Any]:
    port = http.free_port()
    log = work / f"server-{server.name}.log"
    argv = [part.replace("{port}", str(port)) for part in server.command]
    proc = http.start(argv, log, server.env, server.cwd)
    try:
        if not http.wait_ready(port, server.health, proc):
            tail = log.read_text(errors="replace")[-2000:]
            return {"requests_per_second": None, "note": f"did not start: {tail}"}
        status, body = http.post(port, server.path, server.bodies[0].encode())
        if status == 404:
            return {
                "requests_per_second": None,
                "note": f"POST {server.path} answers 404: the route does not exist yet",
            }
        config = {
            "port": port,
            "path": server.path,
            "bodies": server.bodies,
            "concurrency": HTTP_CONCURRENCY,
            "client": plan.load_client,
            "warmup": 1.0,
            "seconds": plan.http_seconds,
        }
        outcome = run_side(
            Path(sys.executable), BENCH_DIR / "features_http.py", "load", config, work
        )
        outcome["probe"] = {"status": status, "body": body[:600].decode("utf-8", "replace")}
        outcome["server_alive_after"] = proc.poll() is None
        return outcome
    finally:
        http.stop(proc)


def versions(python: Path) -> dict[str, str]:
    packages = ("decisionloop", "duckdb", "pyarrow", "pandas", "numpy")
    code = (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{p: m.version(p) for p in {packages!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    parsed: dict[str, str] = json.loads(out.stdout)
    return parsed


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
