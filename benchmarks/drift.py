"""Data drift: DecisionLoop beside Evidently 0.7's DataDriftPreset on the same frames.

    .venv/bin/python benchmarks/drift.py [--quick] [--markdown] [--output PATH]

Reference and current frames of 100k and 1M rows (``--quick``: 100k only) x 20 columns (15
numeric, 5 categorical), seeded, with 4 injected shifts (n0: mean +0.5 sd, n1: sd x1.5, n2:
lognormal median x1.3, c0: shares reversed). Both are written to Parquet once; each side reads
them in its own fresh process (reading is not timed), times its drift computation and reports
its peak memory (``resource.getrusage``, the whole process). DecisionLoop runs three times:
exact (the reference frame profiled with every distinct value, in the time), exact from a
stored exact profile (``ReferenceProfile.to_bytes``, what the loop keeps for @champion; built
and read back untimed) and from a cached 4096-rank reference profile read back from JSON.
Evidently runs in benchmarks/.venvs/evidently (it needs pandas < 3). The check: every side
flags exactly the four injected columns. Ratios are Evidently / DecisionLoop. Results go to
benchmarks/results/drift.json; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from _machine import host  # noqa: E402
from _venv import ensure_venv  # noqa: E402

RESULTS = BENCH_DIR / "results" / "drift.json"
EVIDENTLY_VENV = BENCH_DIR / ".venvs" / "evidently"
EVIDENTLY_PACKAGES = ["evidently==0.7.*", "pandas<3", "numpy", "pyarrow"]
MARKER = "BENCH-JSON "
NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SHIFTED = ["c0", "n0", "n1", "n2"]
CATEGORIES = [f"v{i}" for i in range(6)]
SHARES = [0.35, 0.25, 0.15, 0.1, 0.1, 0.05]
#: DecisionLoop's runs: from the frames, from a stored exact profile, from a 4096-rank profile
MODES = ("exact", "stored", "profile")


def make_frame(rows: int, seed: int, shifted: bool) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        data[name] = rng.lognormal(0, 0.5, rows) if i % 3 == 2 else rng.normal(i, 1 + i / 10, rows)
    for name in CATEGORICAL:
        data[name] = rng.choice(CATEGORIES, size=rows, p=SHARES)
    if shifted:
        data["n0"] = rng.normal(0.5, 1, rows)
        data["n1"] = rng.normal(1, 1.1 * 1.5, rows)
        data["n2"] = rng.lognormal(np.log(1.3), 0.5, rows)
        data["c0"] = rng.choice(CATEGORIES, size=rows, p=SHARES[::-1])
    return pd.DataFrame(data)


# -- the sides, each in its own process -------------------------------------------------------


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_decisionloop(config: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from decisionloop.evaluation.drift import drift_report, exact_profile
    from decisionloop.evaluation.drift_profile import ReferenceProfile

    reference = pd.read_parquet(config["reference"])
    current = pd.read_parquet(config["current"])
    kinds: dict[str, Any] = {name: "numeric" for name in NUMERIC}
    kinds.update({name: "categorical" for name in CATEGORICAL})
    loaded_mb = peak_mb()
    if config["mode"] == "exact":
        start = time.perf_counter()
        report = drift_report(reference, current, kinds)
        seconds = time.perf_counter() - start
        extra: dict[str, Any] = {}
    elif config["mode"] == "stored":
        start = time.perf_counter()
        data = exact_profile(reference, kinds).to_bytes()
        build_s = time.perf_counter() - start
        profile = ReferenceProfile.from_bytes(data)
        del reference
        start = time.perf_counter()
        report = drift_report(profile, current)
        seconds = time.perf_counter() - start
        extra = {"profile_build_s": build_s, "profile_bytes": len(data)}
    else:
        start = time.perf_counter()
        text = json.dumps(ReferenceProfile.build(reference, kinds).to_dict())
        build_s = time.perf_counter() - start
        profile = ReferenceProfile.from_dict(json.loads(text))
        del reference
        start = time.perf_counter()
        report = drift_report(profile, current)
        seconds = time.perf_counter() - start
        extra = {"profile_build_s": build_s, "profile_json_bytes": len(text)}
    return {
        "seconds": seconds,
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb(),
        "drifted": sorted(report.drifted_columns),
        "methods": {column.column: column.method for column in report.columns},
        "statistics": {column.column: column.statistic for column in report.columns},
        "dataset_drift": report.dataset_drift,
        **extra,
    }


def side_evidently(config: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(config["reference"])
    current = pd.read_parquet(config["current"])
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    loaded_mb = peak_mb()
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    seconds = time.perf_counter() - start
    drifted, methods, statistics = [], {}, {}
    for metric in result["metrics"]:
        metric_config = metric["config"]
        if not metric_config["type"].endswith("ValueDrift"):
            continue
        name, method, value = metric_config["column"], metric_config["method"], metric["value"]
        methods[name], statistics[name] = method, value
        is_p_value = "p_value" in method
        threshold = metric_config["threshold"]
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(name)
    return {
        "seconds": seconds,
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb(),
        "drifted": sorted(drifted),
        "methods": methods,
        "statistics": statistics,
    }


def run_side(python: Path, side: str, config: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / f"{side}-{config.get('mode', '')}.json"
    path.write_text(json.dumps(config))
    env_python = str(python)
    proc = subprocess.run(
        [env_python, str(Path(__file__).resolve()), "--side", side, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"the {side} side failed (exit {proc.returncode})")
    line = [text for text in proc.stdout.splitlines() if text.startswith(MARKER)][-1]
    result: dict[str, Any] = json.loads(line[len(MARKER) :])
    return result


# -- the parent -------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def versions(python: Path, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{p: m.version(p) for p in {packages!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    parsed: dict[str, str] = json.loads(out.stdout)
    return parsed


def measure(rows: int, work: Path, evidently_python: Path) -> dict[str, Any]:
    say(f"{rows:,} rows: writing the frames")
    files = {
        "reference": work / f"reference-{rows}.parquet",
        "current": work / f"current-{rows}.parquet",
    }
    make_frame(rows, 1, False).to_parquet(files["reference"])
    make_frame(rows, 2, True).to_parquet(files["current"])
    config = {key: str(path) for key, path in files.items()}
    out: dict[str, Any] = {"rows": rows}
    for mode in MODES:
        say(f"{rows:,} rows: DecisionLoop, {mode}")
        out[f"decisionloop_{mode}"] = run_side(
            Path(sys.executable), "decisionloop", {**config, "mode": mode}, work
        )
    say(f"{rows:,} rows: Evidently DataDriftPreset")
    out["evidently"] = run_side(evidently_python, "evidently", {**config, "mode": ""}, work)
    ev = out["evidently"]
    for mode in MODES:
        dl = out[f"decisionloop_{mode}"]
        out[f"time_ratio_{mode}"] = ev["seconds"] / dl["seconds"]
        out[f"peak_memory_ratio_{mode}"] = ev["peak_mb"] / dl["peak_mb"]
    out["flags_injected"] = {
        side: out[side]["drifted"] == SHIFTED
        for side in (*(f"decisionloop_{mode}" for mode in MODES), "evidently")
    }
    exact = out["decisionloop_exact"]["statistics"]
    for mode in ("stored", "profile"):  # how far each cached form is from the exact statistics
        other = out[f"decisionloop_{mode}"]["statistics"]
        out[f"largest_statistic_difference_{mode}"] = max(
            abs(exact[name] - other[name]) for name in exact
        )
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows per side | DecisionLoop exact | DL exact, stored profile | DL 4096-rank profile "
        "| Evidently preset | speed-up exact / stored / 4096 "
        "| peak memory DL exact / stored / 4096 / Evidently "
        "| flag the 4 injected (DL, Evidently) |",
        "|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for r in results:
        sides = [r[f"decisionloop_{mode}"] for mode in MODES]
        ev, flags = r["evidently"], r["flags_injected"]
        seconds = " | ".join(f"{side['seconds']:.2f} s" for side in sides)
        ratios = " / ".join(f"{r[f'time_ratio_{mode}']:.0f}x" for mode in MODES)
        memory = " / ".join(f"{side['peak_mb']:.0f}" for side in [*sides, ev])
        ours = all(flags[f"decisionloop_{mode}"] for mode in MODES)
        lines.append(
            f"| {r['rows']:,} | {seconds} | {ev['seconds']:.1f} s | {ratios} | {memory} MB "
            f"| {'yes' if ours else 'no'}, {'yes' if flags['evidently'] else 'no'} |"
        )
    return "\n".join(lines)


def goals(results: list[dict[str, Any]]) -> dict[str, Any]:
    largest = max(results, key=lambda r: r["rows"])
    return {
        "rows": largest["rows"],
        "30x_faster_than_evidently_exact": largest["time_ratio_exact"] >= 30,
        "30x_faster_than_evidently_profile": largest["time_ratio_profile"] >= 30,
        "exact_under_5s": largest["decisionloop_exact"]["seconds"] < 5,
        "profile_under_1s": largest["decisionloop_profile"]["seconds"] < 1,
        "stored_exact_profile_under_1s": largest["decisionloop_stored"]["seconds"] < 1,
        "both_flag_the_injected_columns": all(all(r["flags_injected"].values()) for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows only (about 1 minute)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("config", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side = side_decisionloop if args.side == "decisionloop" else side_evidently
        print(MARKER + json.dumps(side(json.loads(Path(args.config).read_text()))), flush=True)
        return
    started = time.perf_counter()
    evidently_python = ensure_venv(EVIDENTLY_VENV, EVIDENTLY_PACKAGES, "Evidently wants pandas<3")
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory(prefix="dl-bench-drift-") as folder:
        results = [measure(rows, Path(folder), evidently_python) for rows in sizes]
    common = ("numpy", "pandas", "scipy", "pyarrow")
    result = {
        "command": " ".join(["python", "benchmarks/drift.py", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": {
            **host(),
            "decisionloop_env": versions(Path(sys.executable), ("decisionloop", *common)),
            "evidently_env": versions(evidently_python, ("evidently", *common)),
        },
        "shifted": SHIFTED,
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": results,
        "goals": goals(results),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(results))
    print(json.dumps(result["goals"], indent=2))
    if args.markdown:
        print(table(results))
    say(f"wrote {args.output} in {result['total_seconds']} s")


if __name__ == "__main__":
    main()
