"""Feast's side of benchmarks/features.py; runs in benchmarks/.venvs/feast, one process per step.

    benchmarks/.venvs/feast/bin/python benchmarks/features_feast.py ACTION CONFIG.json

A Feast repository in ``config["repo"]``: ``feature_store.yaml`` with the ``file`` (Dask) or
``duckdb`` offline store and the SQLite online store; the same entity, feature view (TTL 7
days, f0..f9) and feature service as DecisionLoop's project, applied with ``store.apply``.

- ``setup``: write the repository and apply the definitions.
- ``offline``: ``get_historical_features(entity_df, features=service)``: ``to_df()`` (and
  ``to_arrow()`` on the DuckDB store), timed, after an untimed warm-up on a few rows.
- ``materialize``: ``store.materialize(start, end)`` over every feature row, then ``online``.
- ``online``: ``get_online_features(features=service, entity_rows=...).to_dict()`` for 1 and
  100 entities, and every entity read back for the checks.

Prints one ``BENCH-JSON {...}`` line. Imports nothing of DecisionLoop.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

MARKER = "BENCH-JSON "
SERVICE = "features_svc"
VIEW = "features_view"
FEATURES = [f"f{i}" for i in range(10)]
TTL_DAYS = 7
WARMUP_ROWS = 1_000

STORE_YAML = """project: bench_features
registry: data/registry.db
provider: local
online_store:
  type: sqlite
  path: data/online.db
offline_store:
  type: {offline}
entity_key_serialization_version: 3
"""


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


def definitions(features_file: str) -> list[Any]:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(name="features_src", path=features_file, timestamp_field="event_timestamp")
    view = FeatureView(
        name=VIEW,
        entities=[entity],
        ttl=timedelta(days=TTL_DAYS),
        schema=[Field(name="entity_id", dtype=Int64)]
        + [Field(name=name, dtype=Float64) for name in FEATURES],
        source=source,
        online=True,
    )
    return [entity, view, FeatureService(name=SERVICE, features=[view])]


def open_store(config: dict[str, Any]) -> Any:
    from feast import FeatureStore

    return FeatureStore(repo_path=config["repo"])


def setup(config: dict[str, Any]) -> dict[str, Any]:
    repo = Path(config["repo"])
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(STORE_YAML.format(offline=config["offline"]))
    start = time.perf_counter()
    store = open_store(config)
    store.apply(definitions(config["features"]))
    return {"apply_seconds": time.perf_counter() - start}


def offline(config: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    entity_df: pd.DataFrame = pq.read_table(config["entities"]).to_pandas()
    store = open_store(config)
    service = store.get_feature_service(SERVICE)

    def job(frame: pd.DataFrame) -> Any:
        return store.get_historical_features(entity_df=frame, features=service)

    job(entity_df.head(WARMUP_ROWS)).to_df()
    loaded_mb = peak_mb()
    out: dict[str, Any] = {"loaded_mb": loaded_mb}
    if config["offline"] == "duckdb":
        start = time.perf_counter()
        table = job(entity_df).to_arrow()
        out["arrow_seconds"] = time.perf_counter() - start
        out["arrow_rows"] = table.num_rows
        del table
    start = time.perf_counter()
    frame = job(entity_df).to_df()
    out["pandas_seconds"] = time.perf_counter() - start
    out["rows"] = len(frame)
    out["peak_mb"] = peak_mb()
    if config.get("output"):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), config["output"])
    return out


def materialize(config: dict[str, Any]) -> dict[str, Any]:
    store = open_store(config)
    start = time.perf_counter()
    store.materialize(
        start_date=_utc(config["start_us"]) - timedelta(seconds=1),
        end_date=_utc(config["end_us"]) + timedelta(seconds=1),
    )
    out = {"materialize_seconds": time.perf_counter() - start}
    if config.get("lookups", True):
        out.update(online(config, store))
    out["peak_mb"] = peak_mb()
    return out


def _utc(us: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def online(config: dict[str, Any], store: Any = None) -> dict[str, Any]:
    store = store or open_store(config)
    service = store.get_feature_service(SERVICE)

    def lookup(ids: list[int]) -> dict[str, Any]:
        rows = [{"entity_id": i} for i in ids]
        result: dict[str, Any] = store.get_online_features(
            features=service, entity_rows=rows
        ).to_dict()
        return result

    out: dict[str, Any] = {
        "online_one": lookup_stats(time_calls(lookup, [[i] for i in config["ids_one"]])),
        "online_hundred": lookup_stats(time_calls(lookup, config["ids_hundred"], warmup=10)),
    }
    if config.get("dump"):
        out["dump"] = dump_online(lookup, config["dump_ids"], config["dump"])
    out["peak_mb"] = peak_mb()
    return out


def time_calls(call: Any, batches: list[Any], warmup: int = 50) -> list[int]:
    for batch in batches[:warmup]:
        call(batch)
    clock = time.perf_counter_ns
    samples = []
    for batch in batches:
        start = clock()
        call(batch)
        samples.append(clock() - start)
    return samples


def dump_online(lookup: Any, ids: list[int], path: str, chunk: int = 1_000) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in FEATURES}
    started = time.time_ns() // 1000
    for begin in range(0, len(ids), chunk):
        result = lookup(ids[begin : begin + chunk])
        for name in FEATURES:
            columns[name].extend(result[name])
    finished = time.time_ns() // 1000
    table = pa.table(
        {"entity_id": pa.array(ids, pa.int64())}
        | {name: pa.array(values, pa.float64()) for name, values in columns.items()}
    )
    pq.write_table(table, path)
    return {"read_started_us": started, "read_finished_us": finished, "rows": len(ids)}


ACTIONS = {"setup": setup, "offline": offline, "materialize": materialize, "online": online}


def main() -> None:
    warnings.simplefilter("ignore")
    os.environ.setdefault("FEAST_USAGE", "False")
    action, config_path = sys.argv[1], sys.argv[2]
    config = json.loads(Path(config_path).read_text())
    if Path(config["repo"]).is_dir():
        os.chdir(config["repo"])
    result = ACTIONS[action](config)
    result["versions"] = versions()
    print(MARKER + json.dumps(result), flush=True)


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for package in ("feast", "duckdb", "ibis-framework", "dask", "pandas", "pyarrow", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


if __name__ == "__main__":
    main()
