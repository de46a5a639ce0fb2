"""Ingestion and validation: DecisionLoop side by side with pandera and with one DuckDB pass.

    .venv/bin/python benchmarks/ingest.py [--rows N] [--quick] [--markdown]

One generated CSV (numpy, deterministic, cached by its parameters): a unique integer key ``id``,
14 numeric columns ``x0..x13`` with declared ranges, 5 categorical columns ``c0..c4`` with
allowed values, every column required, and 1% bad rows spread over five kinds (text in a
numeric column, a value out of range, an unknown category, a repeated key, a missing value).
Each bad row has exactly one defect, so the number of rows to quarantine is known.

Timed in one run, each a median of 3 repetitions (1 with ``--quick``), after one untimed
warm-up on every side:

- DecisionLoop end to end: ``Platform.open(project).data.ingest(csv, mode="replace")`` on a
  fresh project each time: CSV -> validation report -> quarantine -> Parquet snapshot ->
  metadata. The report is checked: rows in = stored + quarantined, and the quarantined rows
  (and their reasons, per kind) are exactly the planted ones.
- The hand pipeline, in its own virtual environment (benchmarks/.venvs/pandera, created once,
  because pandera wants pandas < 3): pandas ``read_csv`` -> a pandera schema with the same
  checks (``lazy=True``) -> drop the failing rows -> ``to_parquet``; and pandera's validation
  alone on the frame in memory. See benchmarks/_pandera_side.py.
- The one-pass limit: one DuckDB statement, ``COPY (SELECT * FROM read_csv(...) WHERE <the
  row checks>) TO parquet``, in this environment; and the same with the duplicate-key check.
- Kafka: when the ``kafka://`` source is registered, N JSON records (same generator, 1% bad,
  then clean) produced to the local broker (services/kafka-up.sh) and ingested until
  drained; records/s.

The ratio is step / DecisionLoop, so above 1 means DecisionLoop is faster. Results go to
benchmarks/results/ingest.json; docs/benchmarks.md explains them. Nothing here asserts on
time and ``make test`` never runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_and_memory

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "ingest.json"
PANDERA_VENV = BENCH_DIR / ".venvs" / "pandera"
PANDERA_SIDE = BENCH_DIR / "_pandera_side.py"
PANDERA_PACKAGES = ["pandas<3", "pandera==0.35.*", "pyarrow", "numpy"]
MARKER = "BENCH-JSON "
#: bump when the generated data changes, so cached files are not reused
DATA_VERSION = 1
SEED = 20261126
BAD_RATE = 0.01
KINDS = ("text", "range", "category", "duplicate", "missing")
#: values that neither DuckDB nor pandas read as a number or as missing
BAD_TEXT = ("abc", "#VALUE!", "12..5", "twelve", "1e5x", "?")
N_NUMERIC = 14
CATEGORY_SIZES = (3, 4, 6, 10, 20)
KAFKA_RECORDS = 200_000
DATASET = "ingest-bench"

THREAD_ENV = {"PYTHONWARNINGS": "ignore"}
os.environ.update(THREAD_ENV)

#: (key, step) in table order; the ratio is step / DecisionLoop
ROWS = [
    (
        "decisionloop",
        "DecisionLoop end to end: CSV -> report -> quarantine -> Parquet snapshot -> metadata",
    ),
    ("hand", "hand pipeline: pandas `read_csv` -> pandera (lazy) -> drop failures -> `to_parquet`"),
    ("hand_pyarrow", 'same, `read_csv(engine="pyarrow")`'),
    ("pandera_validate", "pandera validation alone, frame as read (1% bad rows)"),
    ("pandera_validate_clean", "pandera validation alone, clean typed frame"),
    ("duckdb_limit", "one DuckDB pass: CSV -> filter (row checks) -> Parquet (the limit)"),
    ("duckdb_key", "same, plus the duplicate-key check (`QUALIFY row_number()`)"),
]


@dataclass(frozen=True)
class Plan:
    rows: int
    repeats: int
    kafka_records: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1M)")
    parser.add_argument("--quick", action="store_true", help="one repetition per step")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--kafka-records", type=int, default=KAFKA_RECORDS, help="JSON records for Kafka"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS.name})"
    )
    args = parser.parse_args()
    plan = Plan(rows=args.rows, repeats=1 if args.quick else 3, kafka_records=args.kafka_records)
    started = time.perf_counter()

    spec = contract_spec()
    say(f"data: {plan.rows:,} rows x {len(spec['columns'])} columns, {BAD_RATE:.0%} bad")
    data = ensure_data(plan.rows, SEED, spec)
    pandera_python = ensure_pandera_venv()
    work = Path(tempfile.mkdtemp(prefix="dl-bench-ingest-"))
    try:
        say(f"working in {work}")
        say("DecisionLoop: end to end on a fresh project per repetition")
        dl = measure_decisionloop(work, data, spec, plan)
        say("hand pipeline: pandas + pandera, in its own environment")
        hand = run_pandera_side(pandera_python, work, data, spec, plan)
        say("one DuckDB pass")
        limit = measure_duckdb(work, data, spec, plan)
        say("Kafka")
        kafka = measure_kafka(work, spec, plan)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    times = {"decisionloop": dl["times"], **hand["times"], **limit["times"]}
    rows = summarize(times)
    goals = evaluate_goals(rows, kafka)
    result = {
        "command": " ".join(["python", "benchmarks/ingest.py", *sys.argv[1:]]),
        "quick": args.quick,
        "rows": plan.rows,
        "repeats": plan.repeats,
        "data": {k: v for k, v in data.items() if k != "csv"},
        "machine": machine(pandera_python),
        "total_seconds": round(time.perf_counter() - started, 1),
        "table": rows,
        "goals": goals,
        "checks": {
            "decisionloop": dl["checks"],
            "hand": hand["checks"],
            "duckdb": limit["checks"],
        },
        "decisionloop_breakdown": dl["breakdown"],
        "hand_breakdown": hand["breakdown"],
        "kafka": kafka,
        "samples": times,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(rows, result)
    if args.markdown:
        print(markdown(rows, result))
    say(f"wrote {args.output} in {result['total_seconds']} s")


# -- the contract and the data ----------------------------------------------------------------


def contract_spec() -> dict[str, Any]:
    """The columns and their checks, shared by every side (as in decisionloop.yaml)."""
    columns: dict[str, dict[str, Any]] = {"id": {"type": "integer", "nullable": False}}
    for k in range(N_NUMERIC):
        low = -10.0 * (k % 4)
        high = 10.0 ** (1 + k % 4)
        columns[f"x{k}"] = {"type": "number", "nullable": False, "min": low, "max": high}
    for j, size in enumerate(CATEGORY_SIZES):
        allowed = [f"c{j}_{m:02d}" for m in range(size)]
        columns[f"c{j}"] = {"type": "string", "nullable": False, "allowed": allowed}
    return {"columns": columns, "key": ["id"], "max_error_rate": 0.05}


def data_cache(rows: int, seed: int) -> Path:
    return (
        Path(tempfile.gettempdir())
        / "decisionloop-bench-ingest"
        / (f"v{DATA_VERSION}-rows{rows}-seed{seed}-bad{BAD_RATE}")
    )


def ensure_data(rows: int, seed: int, spec: dict[str, Any]) -> dict[str, Any]:
    """The CSV and what was planted in it, generated once per parameters."""
    folder = data_cache(rows, seed)
    manifest = folder / "manifest.json"
    if manifest.exists():
        found: dict[str, Any] = json.loads(manifest.read_text())
        if Path(found["csv"]).exists():
            say(f"data: cached in {folder}")
            return found
    say(f"data: generating into {folder}")
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    table, planted = generate(rows, seed, spec)
    csv = folder / "data.csv"
    write_csv(table, csv)
    found = {
        "csv": str(csv),
        "bytes": csv.stat().st_size,
        "rows": rows,
        "seed": seed,
        "bad_rows": int(sum(planted["counts"].values())),
        "planted": planted["counts"],
        "bad_index": planted["index"],
        "bad_kind": planted["kind"],
        "generate_seconds": round(time.perf_counter() - start, 1),
    }
    manifest.write_text(json.dumps(found))
    return found


def generate(
    rows: int, seed: int, spec: dict[str, Any], bad_rate: float = BAD_RATE
) -> tuple[Any, dict[str, Any]]:
    """An Arrow table of text columns (as they go to CSV) and the planted bad rows.

    Every bad row has exactly one defect. A repeated key copies the key of an earlier good
    row, so the first occurrence is the one kept.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    columns = spec["columns"]
    numeric = [n for n, c in columns.items() if c["type"] == "number"]
    categorical = [n for n, c in columns.items() if c["type"] == "string"]
    ids = rng.permutation(rows).astype(np.int64) + 1_000_000
    values = {}
    for name in numeric:
        low, high = columns[name]["min"], columns[name]["max"]
        values[name] = np.round(low + (high - low) * rng.random(rows), 2)
    codes = {name: rng.integers(0, len(columns[name]["allowed"]), rows) for name in categorical}

    n_bad = round(rows * bad_rate)
    bad = np.sort(rng.choice(np.arange(1, rows), size=n_bad, replace=False))
    kind = rng.permutation(np.arange(n_bad) % len(KINDS))
    good = np.ones(rows, dtype=bool)
    good[bad] = False
    good_index = np.flatnonzero(good)

    text: dict[str, dict[int, str]] = {name: {} for name in numeric}
    missing: dict[str, list[int]] = {name: [] for name in [*numeric, *categorical]}
    unknown: dict[str, list[int]] = {name: [] for name in categorical}
    for row, k in zip(bad.tolist(), kind.tolist(), strict=True):
        what = KINDS[k]
        if what == "text":
            name = numeric[rng.integers(len(numeric))]
            text[name][row] = BAD_TEXT[rng.integers(len(BAD_TEXT))]
        elif what == "range":
            name = numeric[rng.integers(len(numeric))]
            low, high = columns[name]["min"], columns[name]["max"]
            step = round(1 + (high - low) * rng.random(), 2)
            values[name][row] = high + step if rng.random() < 0.5 else low - step
        elif what == "category":
            name = categorical[rng.integers(len(categorical))]
            unknown[name].append(row)
        elif what == "duplicate":
            earlier = good_index[: np.searchsorted(good_index, row)]
            ids[row] = ids[earlier[rng.integers(len(earlier))]]
        else:
            name = [*numeric, *categorical][rng.integers(len(numeric) + len(categorical))]
            missing[name].append(row)

    arrays: dict[str, Any] = {"id": pa.array(ids)}
    for name in numeric:
        array = pa.array(values[name]).cast(pa.string())
        if text[name]:
            mask = np.zeros(rows, dtype=bool)
            mask[list(text[name])] = True
            replacement = [text[name][r] for r in sorted(text[name])]
            array = pc.replace_with_mask(array, pa.array(mask), pa.array(replacement))
        arrays[name] = _with_nulls(array, missing[name], rows)
    for name in categorical:
        allowed = np.array(columns[name]["allowed"], dtype=object)
        labels = allowed[codes[name]]
        labels[unknown[name]] = f"{name}_unknown"
        arrays[name] = _with_nulls(pa.array(labels, pa.string()), missing[name], rows)
    counts = {what: int((kind == i).sum()) for i, what in enumerate(KINDS)}
    planted = {"counts": counts, "index": bad.tolist(), "kind": [KINDS[k] for k in kind.tolist()]}
    return pa.table(arrays), planted


def _with_nulls(array: Any, rows_missing: list[int], rows: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not rows_missing:
        return array
    mask = np.zeros(rows, dtype=bool)
    mask[rows_missing] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, array.type), array)


def write_csv(table: Any, path: Path) -> None:
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(table, tmp, options)
    tmp.replace(path)


def json_records(
    rows: int, seed: int, spec: dict[str, Any], bad_rate: float
) -> tuple[list[bytes], int]:
    """The same generator as JSON messages: numbers as JSON numbers, a bad text value as a
    string, a missing value as an absent key. Returns the values and the bad-row count."""
    table, planted = generate(rows, seed, spec, bad_rate)
    numeric = [n for n, c in spec["columns"].items() if c["type"] == "number"]
    out = []
    for record in table.to_pylist():
        row: dict[str, Any] = {}
        for name, value in record.items():
            if value is None:
                continue
            if name in numeric:
                try:
                    row[name] = float(value)
                except ValueError:
                    row[name] = value
            else:
                row[name] = value
        out.append(json.dumps(row, separators=(",", ":")).encode())
    return out, int(sum(planted["counts"].values()))


# -- DecisionLoop -----------------------------------------------------------------------------


def write_project(folder: Path, source: str, spec: dict[str, Any]) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": DATASET,
        "data": {
            "source": source,
            "target": "c0",
            "columns": spec["columns"],
            "contract": {"key": spec["key"], "max_error_rate": spec["max_error_rate"]},
        },
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def measure_decisionloop(
    work: Path, data: dict[str, Any], spec: dict[str, Any], plan: Plan
) -> dict[str, Any]:
    from decisionloop.platform import Platform

    clock = time.perf_counter
    csv = data["csv"]
    times: list[float] = []
    results = []
    # one untimed run first: it pays the lazy imports (duckdb, pyarrow, SQLAlchemy, Alembic)
    for i in range(plan.repeats + 1):
        project = write_project(work / f"decisionloop-{i}", csv, spec)
        start = clock()
        platform = Platform.open(project)
        done = platform.data.ingest(csv, mode="replace")
        elapsed = clock() - start
        if i:
            times.append(elapsed)
        results.append((platform, done))
    platform, done = results[-1]
    checks = check_decisionloop(platform, done, data)
    # where the time went in the last run, as the report and the records give it
    setup_start = clock()
    fresh = Platform.open(write_project(work / "decisionloop-setup", csv, spec))
    fresh.metadata  # noqa: B018  (creates the schema)
    setup = clock() - setup_start
    fresh.close()
    breakdown = {
        "validate_batch_report_seconds": [r[1][0].report.seconds for r in results[1:]],
        "fresh_project_metadata_setup_seconds": setup,
    }
    for p, _ in results:
        p.close()
    return {"times": times, "checks": checks, "breakdown": breakdown}


def check_decisionloop(platform: Any, done: list[Any], data: dict[str, Any]) -> dict[str, Any]:
    """Compare the report and the quarantine with what was planted; say so when they differ."""
    if len(done) != 1:
        raise SystemExit(f"expected one batch, DecisionLoop made {len(done)}")
    report = done[0].report
    planted = data["bad_rows"]
    balanced = report.rows_in == report.rows_stored + report.rows_quarantined + report.rows_skipped
    by_kind = {what: 0 for what in KINDS}
    for check in report.checks:
        kind = check_kind(check.check)
        by_kind[kind] = by_kind.get(kind, 0) + check.failed
    entries = platform.metadata.ingestion.list_quarantine(DATASET, status="open", limit=10**9)
    reasons = {what: 0 for what in KINDS}
    unexplained = 0
    for entry in entries:
        kinds = {check_kind(reason) for reason in entry.reasons}
        if len(kinds) == 1:
            kind = kinds.pop()
            reasons[kind] = reasons.get(kind, 0) + 1
        else:
            unexplained += 1
    where = positions_match(entries, data)
    checks = {
        "verdict": report.verdict,
        "rows_in": report.rows_in,
        "rows_stored": report.rows_stored,
        "rows_quarantined": report.rows_quarantined,
        "rows_skipped": report.rows_skipped,
        "balanced": balanced,
        "planted_bad_rows": planted,
        "quarantined_equals_planted": report.rows_quarantined == planted,
        "rows_in_equals_file_rows": report.rows_in == data["rows"],
        "planted_by_kind": data["planted"],
        "report_failures_by_kind": by_kind,
        "quarantine_entries": len(entries),
        "quarantine_entries_by_reason_kind": reasons,
        "quarantine_entries_with_mixed_reasons": unexplained,
        "snapshot_rows": done[0].snapshot.row_count if done[0].snapshot else 0,
        **where,
    }
    problems = []
    if not balanced:
        problems.append("rows in != stored + quarantined + skipped")
    if report.rows_in != data["rows"]:
        problems.append(f"rows in {report.rows_in:,} != {data['rows']:,} rows in the file")
    if report.rows_quarantined != planted:
        problems.append(f"quarantined {report.rows_quarantined:,} != {planted:,} planted")
    if reasons != data["planted"]:
        problems.append(f"quarantine reasons by kind {reasons} != planted {data['planted']}")
    if where["line_entries_exact"] != where["line_entries"]:
        problems.append(
            f"{where['line_entries'] - where['line_entries_exact']:,} of "
            f"{where['line_entries']:,} `line N` positions do not name the planted line"
        )
    if where["record_entries_holding_a_first_occurrence"]:
        problems.append(
            f"{where['record_entries_holding_a_first_occurrence']:,} quarantined records are the "
            "first occurrence of a repeated key (the later one was kept)"
        )
    wrong = where["record_entries"] - where["record_entries_position_exact"]
    if wrong:
        problems.append(
            f"{wrong:,} of {where['record_entries']:,} parsed-record positions do not name the "
            "line that holds the record"
        )
    checks["problems"] = problems
    for problem in problems:
        say(f"DecisionLoop CHECK FAILED: {problem}")
    if not problems:
        say(
            f"DecisionLoop check: {report.rows_in:,} in = {report.rows_stored:,} stored + "
            f"{report.rows_quarantined:,} quarantined; every planted bad row quarantined with "
            "its reason"
        )
    return checks


def check_kind(reason: str) -> str:
    """The planted kind a check name or a quarantine reason stands for."""
    if reason.startswith("key:"):
        return "duplicate"
    if ": type" in reason or reason.startswith("malformed"):
        return "text"
    if reason.endswith((": min", ": max")):
        return "range"
    if reason.endswith(": allowed"):
        return "category"
    if reason.endswith(": not null"):
        return "missing"
    return "other"


def positions_match(entries: list[Any], data: dict[str, Any]) -> dict[str, int]:
    """Which file row each quarantine entry holds, and whether its position names that row.

    Every entry is ``file:line N`` (the header is line 1) and must name a planted bad row. An
    entry holding a parsed record as JSON is also matched to the file row with the same values,
    which must be that line's row. For a repeated key, the planted row is the later occurrence
    (the first one is to be kept).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    planted = set(data["bad_index"])
    with open(data["csv"], encoding="utf-8") as handle:
        names = handle.readline().strip().split(",")
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=True
    )
    table = pacsv.read_csv(data["csv"], convert_options=convert)
    table = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    records = []
    for entry in entries:
        what, _, number = entry.position.rsplit(":", 1)[-1].partition(" ")
        if what == "line" and number.isdigit() and entry.payload.startswith("{"):
            records.append((int(number) - 1, json.loads(entry.payload)))
    ids = sorted({str(int(float(row["id"]))) for _, row in records if row.get("id") is not None})
    found: dict[str, list[dict[str, Any]]] = {}
    for row in table.filter(pc.is_in(table["id"], pa.array(ids, pa.string()))).to_pylist():
        found.setdefault(row["id"], []).append(row)

    def same(file_row: dict[str, Any], payload: dict[str, Any]) -> bool:
        for name in names:
            text, value = file_row[name], payload.get(name)
            if text is None or value is None:
                if text is not None or value is not None:
                    return False
            elif isinstance(value, int | float) and not isinstance(value, bool):
                if float(text) != float(value):
                    return False
            elif text != str(value):
                return False
        return True

    out = {
        "line_entries": 0,
        "line_entries_exact": 0,
        "record_entries": 0,
        "record_entries_holding_a_planted_row": 0,
        "record_entries_holding_a_first_occurrence": 0,
        "record_entries_position_exact": 0,
    }
    for entry in entries:
        what, _, number = entry.position.rsplit(":", 1)[-1].partition(" ")
        if what == "line" and number.isdigit():
            out["line_entries"] += 1
            out["line_entries_exact"] += int(int(number) - 2 in planted)
    for number, payload in records:
        out["record_entries"] += 1
        key = payload.get("id")
        matches = (
            [r for r in found.get(str(int(float(key))), []) if same(r, payload)]
            if key is not None
            else []
        )
        if not matches:
            continue
        row = int(matches[0]["_row"])
        if row in planted:
            out["record_entries_holding_a_planted_row"] += 1
        else:
            out["record_entries_holding_a_first_occurrence"] += 1
        out["record_entries_position_exact"] += int(number - 1 == row)
    return out


# -- the hand pipeline (pandera, in its own environment) ---------------------------------------


def ensure_pandera_venv() -> Path:
    """benchmarks/.venvs/pandera with pandas < 3 and pandera 0.35, created once."""
    python = PANDERA_VENV / "bin" / "python"
    stamp = PANDERA_VENV / ".installed"
    wanted = " ".join(PANDERA_PACKAGES) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    say(f"creating {PANDERA_VENV.relative_to(REPO)} (once; pandera wants pandas < 3)")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(PANDERA_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *PANDERA_PACKAGES], check=True)
    stamp.write_text(wanted)
    return python


def run_pandera_side(
    python: Path, work: Path, data: dict[str, Any], spec: dict[str, Any], plan: Plan
) -> dict[str, Any]:
    config = work / "pandera-config.json"
    config.write_text(
        json.dumps(
            {
                "csv": data["csv"],
                "spec": spec,
                "out": str(work / "pandera"),
                "repeats": plan.repeats,
                "expected_stored": data["rows"] - data["bad_rows"],
            }
        )
    )
    proc = subprocess.run(
        [str(python), str(PANDERA_SIDE), str(config)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"the pandera side failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    for problem in result["checks"]["problems"]:
        say(f"hand pipeline CHECK FAILED: {problem}")
    return result


# -- the one-pass DuckDB limit ----------------------------------------------------------------


def duckdb_statement(csv: str, out: Path, spec: dict[str, Any], *, key: bool) -> str:
    """CSV -> the contract's checks as a WHERE clause -> zstd Parquet, as one statement.

    Lines whose values do not parse as the declared types are dropped by the reader
    (``ignore_errors``); the key's repeats by ``QUALIFY`` (which occurrence survives is not
    defined: the limit only counts)."""
    types = {"integer": "BIGINT", "number": "DOUBLE", "string": "VARCHAR"}
    columns = spec["columns"]
    declared = ", ".join(f"'{n}': '{types[c['type']]}'" for n, c in columns.items())
    conditions = []
    for name, column in columns.items():
        if "allowed" in column:
            allowed = ", ".join(f"'{v}'" for v in column["allowed"])
            conditions.append(f"{name} IN ({allowed})")
        elif "min" in column:
            conditions.append(f"{name} BETWEEN {column['min']!r} AND {column['max']!r}")
        else:
            conditions.append(f"{name} IS NOT NULL")
    qualify = (
        f" QUALIFY row_number() OVER (PARTITION BY {', '.join(spec['key'])}) = 1" if key else ""
    )
    return (
        f"COPY (SELECT * FROM read_csv('{csv}', header=true, columns={{{declared}}}, "
        f"ignore_errors=true) WHERE {' AND '.join(conditions)}{qualify}) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )


def measure_duckdb(
    work: Path, data: dict[str, Any], spec: dict[str, Any], plan: Plan
) -> dict[str, Any]:
    import duckdb

    times: dict[str, list[float]] = {"duckdb_limit": [], "duckdb_key": []}
    stored: dict[str, int] = {}
    for i in range(plan.repeats + 1):  # the first is a warm-up
        for name, key in (("duckdb_limit", False), ("duckdb_key", True)):
            out = work / f"{name}-{i}.parquet"
            sql = duckdb_statement(data["csv"], out, spec, key=key)
            start = time.perf_counter()
            with duckdb.connect() as con:
                con.execute(sql)
            elapsed = time.perf_counter() - start
            if i:
                times[name].append(elapsed)
            with duckdb.connect() as con:
                row = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
            stored[name] = int(row[0]) if row else 0
            out.unlink()
    expected = data["rows"] - data["bad_rows"]
    duplicates = data["planted"]["duplicate"]
    checks: dict[str, Any] = {
        "stored_row_checks_only": stored["duckdb_limit"],
        "stored_with_key_check": stored["duckdb_key"],
        "expected_stored": expected,
        "problems": [],
    }
    if stored["duckdb_key"] != expected:
        checks["problems"].append(f"with key: stored {stored['duckdb_key']:,} != {expected:,}")
    if stored["duckdb_limit"] != expected + duplicates:
        checks["problems"].append(
            f"row checks only: stored {stored['duckdb_limit']:,} != {expected + duplicates:,}"
        )
    for problem in checks["problems"]:
        say(f"DuckDB CHECK FAILED: {problem}")
    return {"times": times, "checks": checks}


# -- Kafka ------------------------------------------------------------------------------------


def kafka_available() -> bool:
    from decisionloop.data.sources import source_factories

    return "kafka" in source_factories()


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def measure_kafka(work: Path, spec: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Records/s of ``platform.data.ingest("kafka://...")`` until the topic is drained: with
    1% bad rows as in the CSV (the goal's row), and with clean records for comparison."""
    if plan.kafka_records <= 0:
        return {"available": False, "note": "skipped (--kafka-records 0)"}
    if not kafka_available():
        print("kafka: source not available yet")
        return {"available": False, "note": "kafka: source not available yet"}
    from confluent_kafka.admin import AdminClient

    started_broker = not port_open(9092)
    proc = subprocess.run(
        ["bash", str(REPO / "services" / "kafka-up.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-2000:])
        raise SystemExit("services/kafka-up.sh failed")
    bootstrap = proc.stdout.strip().splitlines()[-1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        result = kafka_run(admin, bootstrap, work, spec, plan, BAD_RATE, "bad")
        clean = kafka_run(admin, bootstrap, work, spec, plan, 0.0, "clean")
    finally:
        if started_broker:
            subprocess.run(["bash", str(REPO / "services" / "kafka-down.sh")], check=False)
    return {**result, "clean": clean}


def kafka_run(
    admin: Any,
    bootstrap: str,
    work: Path,
    spec: dict[str, Any],
    plan: Plan,
    bad_rate: float,
    label: str,
) -> dict[str, Any]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    from decisionloop.platform import Platform

    say(f"kafka ({label}): encoding {plan.kafka_records:,} JSON records, {bad_rate:.0%} bad")
    values, bad_rows = json_records(plan.kafka_records, SEED + 1, spec, bad_rate)
    topic = f"bench-ingest-{label}-{os.getpid()}-{time.time_ns()}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    start = time.perf_counter()
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(60)
    produce_s = time.perf_counter() - start
    if left:
        raise SystemExit(f"kafka: {left} records not delivered")
    say(f"kafka ({label}): produced in {produce_s:.1f} s; ingesting, fresh project and group")
    url = f"kafka://{bootstrap}/{topic}"
    samples: list[float] = []
    runs = []
    for i in range(plan.repeats + 1):  # the first is a warm-up
        project = write_project(work / f"kafka-{label}-{i}", url, spec)
        platform = Platform.open(project)
        platform.metadata  # noqa: B018  (schema created before timing: a stream runs for long)
        start = time.perf_counter()
        done = platform.data.ingest(f"{url}?group=bench-{i}")
        elapsed = time.perf_counter() - start
        runs.append(
            {
                "batches": len(done),
                "rows_in": sum(d.report.rows_in for d in done),
                "rows_stored": sum(d.report.rows_stored for d in done),
                "rows_quarantined": sum(d.report.rows_quarantined for d in done),
                "rows_skipped": sum(d.report.rows_skipped for d in done),
                "verdicts": sorted({d.report.verdict for d in done}),
                "seconds": elapsed,
            }
        )
        platform.close()
        if i:
            samples.append(elapsed)
    admin.delete_topics([topic])
    last = runs[-1]
    problems = []
    if last["rows_in"] != plan.kafka_records:
        problems.append(f"rows in {last['rows_in']:,} != {plan.kafka_records:,} produced")
    if last["rows_quarantined"] + last["rows_skipped"] != bad_rows:
        problems.append(
            f"quarantined + skipped {last['rows_quarantined'] + last['rows_skipped']:,} "
            f"!= {bad_rows:,} planted"
        )
    for problem in problems:
        say(f"Kafka ({label}) CHECK FAILED: {problem}")
    seconds = median(samples)
    return {
        "available": True,
        "records": plan.kafka_records,
        "bad_rows": bad_rows,
        "produce_seconds": produce_s,
        "seconds": seconds,
        "records_per_second": plan.kafka_records / seconds,
        "samples": samples,
        "runs": runs,
        "problems": problems,
        "note": "includes the source's final empty poll (max_wait_s = 0.5 s) that ends a drain",
    }


# -- reporting --------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = {**os.environ, **THREAD_ENV}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(times: dict[str, list[float]]) -> list[dict[str, Any]]:
    base = median(times["decisionloop"])
    return [
        {
            "key": key,
            "step": step,
            "seconds": median(times[key]),
            "ratio": median(times[key]) / base,
            "n": len(times[key]),
        }
        for key, step in ROWS
    ]


def evaluate_goals(rows: list[dict[str, Any]], kafka: dict[str, Any]) -> dict[str, Any]:
    by_key = {row["key"]: row for row in rows}
    dl = by_key["decisionloop"]["seconds"]
    vs_hand = dl / by_key["hand"]["seconds"]
    vs_limit = dl / by_key["duckdb_limit"]["seconds"]
    goals: dict[str, Any] = {
        "decisionloop_over_hand": vs_hand,
        "at_least_as_fast_as_hand": vs_hand <= 1.0,
        "decisionloop_over_one_pass_limit": vs_limit,
        "within_1_5x_of_limit": vs_limit <= 1.5,
    }
    if kafka.get("available"):
        goals["kafka_records_per_second"] = kafka["records_per_second"]
        goals["kafka_at_least_50k_per_second"] = kafka["records_per_second"] >= 50_000
    else:
        goals["kafka_records_per_second"] = None
        goals["kafka_at_least_50k_per_second"] = None
    return goals


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x"


def goal_lines(result: dict[str, Any]) -> list[str]:
    goals = result["goals"]
    checks = result["checks"]["decisionloop"]
    lines = [
        f"DecisionLoop / hand pipeline = {goals['decisionloop_over_hand']:.2f} "
        f"(goal <= 1.00: {'met' if goals['at_least_as_fast_as_hand'] else 'NOT met'})",
        f"DecisionLoop / one-pass limit = {goals['decisionloop_over_one_pass_limit']:.2f} "
        f"(goal <= 1.50: {'met' if goals['within_1_5x_of_limit'] else 'NOT met'})",
        f"report: {checks['rows_in']:,} in = {checks['rows_stored']:,} stored + "
        f"{checks['rows_quarantined']:,} quarantined + {checks['rows_skipped']:,} skipped; "
        f"planted bad rows {checks['planted_bad_rows']:,}; "
        + ("all checks passed" if not checks["problems"] else "; ".join(checks["problems"])),
    ]
    kafka = result["kafka"]
    if kafka.get("available"):
        lines.append(
            f"Kafka: {kafka['records']:,} JSON records validated and stored in "
            f"{kafka['seconds']:.2f} s = {kafka['records_per_second']:,.0f} records/s (goal >= "
            f"50,000: {'met' if goals['kafka_at_least_50k_per_second'] else 'NOT met'}); "
            f"clean records: {kafka['clean']['records_per_second']:,.0f} records/s"
        )
    else:
        lines.append(kafka["note"])
    return lines


def print_table(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    data = result["data"]
    table = Table(
        title=f"Ingestion of {data['rows']:,} rows x 20 columns ({data['bad_rows']:,} bad), "
        f"medians of {result['repeats']}"
    )
    table.add_column("step")
    table.add_column("n", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("step / DL", justify="right")
    for row in rows:
        table.add_row(
            row["step"].replace("`", ""),
            str(row["n"]),
            fmt_seconds(row["seconds"]),
            fmt_ratio(row["ratio"]),
        )
    console = Console()
    console.print(table)
    for line in goal_lines(result):
        console.print(line)


def markdown(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    lines = ["| step | n | seconds | step / DecisionLoop |", "|---|--:|--:|--:|"]
    for row in rows:
        lines.append(
            f"| {row['step']} | {row['n']} | {fmt_seconds(row['seconds'])} | "
            f"{fmt_ratio(row['ratio'])} |"
        )
    kafka = result["kafka"]
    if kafka.get("available"):
        lines.append(
            f"| Kafka: {kafka['records']:,} JSON records, 1% bad, validated and stored "
            f"(records/s) | {len(kafka['samples'])} | {kafka['records_per_second']:,.0f}/s | |"
        )
        clean = kafka["clean"]
        lines.append(
            f"| same, clean records (no bad rows) | {len(clean['samples'])} | "
            f"{clean['records_per_second']:,.0f}/s | |"
        )
    else:
        lines.append("| Kafka: JSON records, validated and stored (records/s) | | pending | |")
    return "\n".join(lines)


def machine(pandera_python: Path) -> dict[str, Any]:
    cpu, memory_gb = cpu_and_memory()
    versions_code = (
        "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
        "('pandera', 'pandas', 'pyarrow', 'numpy')}))"
    )
    proc = subprocess.run(
        [str(pandera_python), "-c", versions_code],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
    )
    ours = ("decisionloop", "duckdb", "pyarrow", "numpy", "sqlalchemy", "confluent-kafka")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": memory_gb,
        "os": pyplatform.platform(),
        "python": pyplatform.python_version(),
        "load_average_at_end": list(os.getloadavg()),
        "decisionloop_env": {p: _version(p) for p in ours},
        "pandera_env": json.loads(proc.stdout),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
