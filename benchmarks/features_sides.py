"""The sides of benchmarks/features.py that run in our environment, each in its own process.

    .venv/bin/python benchmarks/features_sides.py SIDE CONFIG.json

- ``dl_setup``: ingest the feature rows into the project and apply its definitions.
- ``dl_offline``: ``platform.features.get_historical_features`` on the entity frame.
- ``dl_online``: ``platform.features.materialize(full=True)`` into a fresh online store, then
  ``get_online_features`` for 1 and 100 entities, and every entity read back for the checks.
- ``hand_offline``: a hand-written DuckDB ASOF join with the TTL as a CASE.
- ``hand_online``: DuckDB's latest row per entity into a plain SQLite table (one row and one
  column per feature), then primary-key lookups for 1 and 100 entities.

Each prints one ``BENCH-JSON {...}`` line: its timings and its peak memory
(``resource.getrusage``: the whole process, inputs included). Nothing here asserts on time.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

MARKER = "BENCH-JSON "
SERVICE = "features_svc"
VIEW = "features_view"
DATASET = "features_src"
FEATURES = [f"f{i}" for i in range(10)]
TTL_DAYS = 7
TTL_US = TTL_DAYS * 86_400 * 1_000_000
#: entity rows of the untimed warm-up call (it pays the lazy imports)
WARMUP_ROWS = 1_000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lookup_stats(samples_ns: list[int]) -> dict[str, Any]:
    ordered = sorted(samples_ns)
    return {
        "n": len(ordered),
        "median_us": statistics.median(ordered) / 1e3,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e3,
        "mean_us": statistics.fmean(ordered) / 1e3,
    }


def time_calls(call: Any, batches: list[Any], warmup: int = 50) -> list[int]:
    """Per-call wall time in ns, after ``warmup`` untimed calls."""
    for batch in batches[:warmup]:
        call(batch)
    clock = time.perf_counter_ns
    samples = []
    for batch in batches:
        start = clock()
        call(batch)
        samples.append(clock() - start)
    return samples


# -- DecisionLoop -------------------------------------------------------------------------------


def dl_setup(config: dict[str, Any]) -> dict[str, Any]:
    from decisionloop.platform import Platform

    start = time.perf_counter()
    platform = Platform.open(config["project"])
    done = platform.dataset(DATASET).ingest()
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    plan = platform.features.apply()
    apply_s = time.perf_counter() - start
    report = done[0].report
    platform.close()
    return {
        "ingest_seconds": ingest_s,
        "apply_seconds": apply_s,
        "rows_in": report.rows_in,
        "rows_stored": report.rows_stored,
        "rows_quarantined": report.rows_quarantined,
        "applied": len(plan.pending),
        "peak_mb": peak_mb(),
    }


def dl_offline(config: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from decisionloop.platform import Platform

    entity = pq.read_table(config["entities"])
    platform = Platform.open(config["project"])
    features = platform.features

    def retrieve(frame: Any) -> Any:
        return features.get_historical_features(frame, service=SERVICE, timestamp="event_timestamp")

    retrieve(entity.slice(0, WARMUP_ROWS))
    loaded_mb = peak_mb()
    start = time.perf_counter()
    training = retrieve(entity)
    arrow_s = time.perf_counter() - start
    arrow_peak = peak_mb()
    start = time.perf_counter()
    frame = training.to_pandas()
    pandas_s = time.perf_counter() - start
    del frame
    out: dict[str, Any] = {
        "arrow_seconds": arrow_s,
        "to_pandas_seconds": pandas_s,
        "pandas_seconds": arrow_s + pandas_s,
        "rows": training.table.num_rows,
        "loaded_mb": loaded_mb,
        "peak_mb_arrow": arrow_peak,
        "peak_mb": peak_mb(),
    }
    if config.get("output"):
        pq.write_table(training.table, config["output"])
    if config.get("profile"):
        del training
        out["profile"] = profile(lambda: retrieve(entity))
    platform.close()
    return out


def profile(call: Any, top: int = 25) -> dict[str, Any]:
    """cProfile of one call: the top entries by cumulative and by own time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    call()
    profiler.disable()
    seconds = time.perf_counter() - start
    tables = {}
    for order in ("cumulative", "tottime"):
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats(order).print_stats(top)
        tables[order] = stream.getvalue()
    return {"seconds": seconds, **tables}


def dl_online(config: dict[str, Any]) -> dict[str, Any]:
    """Materialize into a fresh online store (named by DECISIONLOOP_STORAGE__ONLINE_URL in the
    environment), then time online reads and read every entity back."""
    from decisionloop.platform import Platform

    platform = Platform.open(config["project"])
    features = platform.features
    features.online_store.count(VIEW)  # opens the store: its schema is not materialization
    start = time.perf_counter()
    done = features.materialize(full=True)
    materialize_s = time.perf_counter() - start

    def lookup(ids: list[int]) -> Any:
        return features.get_online_features(SERVICE, [{"entity_id": i} for i in ids])

    one = time_calls(lookup, [[i] for i in config["ids_one"]])
    hundred = time_calls(lookup, config["ids_hundred"], warmup=10)
    out: dict[str, Any] = {
        "materialize_seconds": materialize_s,
        "materialized": [m.to_dict() for m in done],
        "online_one": lookup_stats(one),
        "online_hundred": lookup_stats(hundred),
    }
    if config.get("dump"):
        out["dump"] = dump_online(lookup, config["dump_ids"], config["dump"])
    out["peak_mb"] = peak_mb()
    platform.close()
    return out


def dump_online(lookup: Any, ids: list[int], path: str, chunk: int = 1_000) -> dict[str, Any]:
    """Every entity's online features (chunks of ``chunk``), to Parquet, with the read times
    (the TTL is enforced against the clock at read time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in FEATURES}
    started = time.time_ns() // 1000
    for begin in range(0, len(ids), chunk):
        result = lookup(ids[begin : begin + chunk])
        for name in FEATURES:
            columns[name].extend(result.columns[name])
    finished = time.time_ns() // 1000
    table = pa.table(
        {"entity_id": pa.array(ids, pa.int64())}
        | {name: pa.array(values, pa.float64()) for name, values in columns.items()}
    )
    pq.write_table(table, path)
    return {"read_started_us": started, "read_finished_us": finished, "rows": len(ids)}


# -- hand-written peers -------------------------------------------------------------------------


def asof_sql(features_file: str, *, ordered: bool) -> str:
    """The hand-written point-in-time join: the newest feature row at or before each entity
    row, its features NULL when it is older than the TTL."""
    picks = ", ".join(
        f"CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL {TTL_DAYS} DAY "
        f"THEN f.{name} END AS {name}"
        for name in FEATURES
    )
    order = " ORDER BY e.row_id" if ordered else ""
    return (
        f"SELECT e.*, {picks} FROM entity e ASOF LEFT JOIN read_parquet('{features_file}') f "
        f"ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp{order}"
    )


def hand_offline(config: dict[str, Any]) -> dict[str, Any]:
    import duckdb
    import pyarrow.parquet as pq

    entity = pq.read_table(config["entities"])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entity", entity.slice(0, WARMUP_ROWS))
    con.sql(asof_sql(config["features"], ordered=True)).to_arrow_table()
    con.unregister("entity")
    con.register("entity", entity)
    loaded_mb = peak_mb()
    start = time.perf_counter()
    unordered = con.sql(asof_sql(config["features"], ordered=False)).to_arrow_table()
    unordered_s = time.perf_counter() - start
    del unordered
    start = time.perf_counter()
    table = con.sql(asof_sql(config["features"], ordered=True)).to_arrow_table()
    arrow_s = time.perf_counter() - start
    start = time.perf_counter()
    frame = table.to_pandas()
    pandas_s = time.perf_counter() - start
    del frame
    out = {
        "arrow_seconds": arrow_s,
        "unordered_arrow_seconds": unordered_s,
        "to_pandas_seconds": pandas_s,
        "pandas_seconds": arrow_s + pandas_s,
        "rows": table.num_rows,
        "loaded_mb": loaded_mb,
        "peak_mb": peak_mb(),
    }
    if config.get("output"):
        pq.write_table(table, config["output"])
    con.close()
    return out


def hand_online(config: dict[str, Any]) -> dict[str, Any]:
    """DuckDB's latest row per entity into one SQLite row per entity (a column per feature),
    then primary-key reads that drop rows older than the TTL."""
    import sqlite3

    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    picks = ", ".join(f"arg_max({n}, event_timestamp) AS {n}" for n in FEATURES)
    latest = con.sql(
        "SELECT entity_id, CAST(epoch_us(max(event_timestamp)) AS BIGINT) AS event_ts, "
        f"{picks} FROM read_parquet('{config['features']}') GROUP BY entity_id"
    ).to_arrow_table()
    con.close()
    db = sqlite3.connect(config["sqlite"], isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    columns = ", ".join(f"{n} REAL" for n in FEATURES)
    db.execute(f"CREATE TABLE latest (entity_id INTEGER PRIMARY KEY, event_ts INTEGER, {columns})")
    marks = ", ".join("?" * (len(FEATURES) + 2))
    rows = zip(*(latest.column(c).to_pylist() for c in latest.column_names), strict=True)
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO latest VALUES ({marks})", rows)
    db.execute("COMMIT")
    materialize_s = time.perf_counter() - start
    names = ", ".join(FEATURES)
    one_sql = f"SELECT {names} FROM latest WHERE entity_id = ? AND event_ts >= ?"
    in_sql = (
        f"SELECT entity_id, {names} FROM latest WHERE entity_id IN ({', '.join('?' * 100)}) "
        "AND event_ts >= ?"
    )

    def lookup_one(ids: list[int]) -> dict[str, Any]:
        row = db.execute(one_sql, (ids[0], time.time_ns() // 1000 - TTL_US)).fetchone()
        return dict(zip(FEATURES, row, strict=True)) if row else dict.fromkeys(FEATURES)

    def lookup_hundred(ids: list[int]) -> list[dict[str, Any]]:
        found = {
            row[0]: dict(zip(FEATURES, row[1:], strict=True))
            for row in db.execute(in_sql, (*ids, time.time_ns() // 1000 - TTL_US))
        }
        return [found.get(i) or dict.fromkeys(FEATURES) for i in ids]

    one = time_calls(lookup_one, [[i] for i in config["ids_one"]])
    hundred = time_calls(lookup_hundred, config["ids_hundred"], warmup=10)
    db.close()
    return {
        "materialize_seconds": materialize_s,
        "rows_written": latest.num_rows,
        "online_one": lookup_stats(one),
        "online_hundred": lookup_stats(hundred),
        "peak_mb": peak_mb(),
    }


SIDES = {
    "dl_setup": dl_setup,
    "dl_offline": dl_offline,
    "dl_online": dl_online,
    "hand_offline": hand_offline,
    "hand_online": hand_online,
}


def main() -> None:
    side, config_path = sys.argv[1], sys.argv[2]
    config = json.loads(Path(config_path).read_text())
    print(MARKER + json.dumps(SIDES[side](config)), flush=True)


if __name__ == "__main__":
    main()
