"""Checks of benchmarks/features.py: every retrieved frame row for row against the hand ASOF
join's (joined on row_id, floats compared exactly, a null equal only to a null), and each online
store entity by entity against the entity's latest feature row and the TTL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features_sides import FEATURES, TTL_DAYS

DAY_S = 86_400


def say(message: str) -> None:
    import sys

    print(f"[bench] {message}", file=sys.stderr, flush=True)


def compare(
    data: dict[str, Any], outputs: dict[str, Path], dumps: dict[str, Any], plan: Any
) -> dict[str, Any]:
    """Row-for-row checks of every retrieved frame against the hand ASOF join's, and of the
    online stores against each entity's latest row."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    entities = data["entities_file"]
    reference = outputs["hand"]
    checks: dict[str, Any] = {"problems": []}
    problems: list[str] = checks["problems"]
    any_null = " OR ".join(f"r.{f} IS NULL" for f in FEATURES)
    checks["reference"] = row(
        con,
        f"SELECT count(*) AS rows, count(*) FILTER (WHERE {any_null}) AS rows_without_features, "
        f"count(*) FILTER (WHERE ({any_null}) AND r.entity_id > {plan.entities}) "
        "AS unknown_entity_rows, "
        f"count(*) FILTER (WHERE ({any_null}) AND r.entity_id <= {plan.entities}) "
        "AS rows_outside_ttl_or_before_first "
        f"FROM read_parquet('{reference}') r",
    )
    ours = outputs["decisionloop"]
    order = row(
        con,
        "SELECT count(*) AS rows, bool_and(row_id = file_row_number) AS in_input_order "
        f"FROM read_parquet('{ours}', file_row_number=true)",
    )
    same_entity = row(
        con,
        "SELECT count(*) FILTER (WHERE o.entity_id IS DISTINCT FROM e.entity_id OR "
        "o.event_timestamp IS DISTINCT FROM e.event_timestamp OR o.label IS DISTINCT FROM "
        "e.label) AS entity_columns_differing "
        f"FROM read_parquet('{entities}') e LEFT JOIN read_parquet('{ours}') o USING (row_id)",
    )
    checks["decisionloop"] = {**order, **same_entity, **diff(con, reference, ours)}
    mine = checks["decisionloop"]
    if mine["rows"] != data["entity_rows"]:
        problems.append(f"DecisionLoop returned {mine['rows']:,} rows for {data['entity_rows']:,}")
    if not mine["in_input_order"]:
        problems.append("DecisionLoop's rows are not in the entity frame's order")
    if mine["entity_columns_differing"] or mine["differing"] or mine["missing_rows"]:
        problems.append(f"DecisionLoop differs from the hand ASOF join: {mine}")
    for kind in ("duckdb", "file"):
        if f"feast_{kind}" in outputs:
            found = diff(con, reference, outputs[f"feast_{kind}"])
            found.update(
                dropped_rows(con, reference, outputs[f"feast_{kind}"], entities, plan.entities)
            )
            checks[f"feast_{kind}"] = found
    if "feast_duckdb" in checks and (
        checks["feast_duckdb"]["differing"] or checks["feast_duckdb"]["missing_rows"]
    ):
        problems.append(
            f"Feast's DuckDB store differs from the hand ASOF: {checks['feast_duckdb']}"
        )
    checks["online"] = check_online(con, data, dumps, plan)
    problems.extend(checks["online"].pop("problems"))
    con.close()
    for problem in problems:
        say(f"CHECK FAILED: {problem}")
    return checks


def row(con: Any, sql: str) -> dict[str, Any]:
    cursor = con.execute(sql)
    values = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], values, strict=True))


def diff(con: Any, reference: Path, other: Path) -> dict[str, Any]:
    """``other`` against ``reference`` by row_id: rows missing or repeated, and rows whose
    features differ (exactly; a null equals only a null)."""
    differs = " OR ".join(f"r.{f} IS DISTINCT FROM o.{f}" for f in FEATURES)
    found = row(
        con,
        "SELECT count(*) AS other_rows, count(DISTINCT row_id) AS other_distinct_row_ids "
        f"FROM read_parquet('{other}')",
    )
    found.update(
        row(
            con,
            "SELECT count(*) FILTER (WHERE o.row_id IS NULL) AS missing_rows, "
            f"count(*) FILTER (WHERE o.row_id IS NOT NULL AND ({differs})) AS differing, "
            "count(*) FILTER (WHERE o.row_id IS NOT NULL) AS compared "
            f"FROM read_parquet('{reference}') r LEFT JOIN "
            f"(SELECT DISTINCT ON (row_id) * FROM read_parquet('{other}')) o USING (row_id)",
        )
    )
    return found


def dropped_rows(
    con: Any, reference: Path, other: Path, entities: str, known: int
) -> dict[str, Any]:
    """What the rows ``other`` left out were: rows of a known entity without a value inside
    the TTL, rows of an entity without feature rows (id above ``known``), rows that had
    features; and how many of them repeat an (entity, time) pair of another row."""
    return row(
        con,
        "WITH counted AS (SELECT row_id, count(*) OVER (PARTITION BY entity_id, event_timestamp) "
        f"AS copies FROM read_parquet('{entities}')) "
        f"SELECT count(*) FILTER (WHERE r.f0 IS NULL AND r.entity_id <= {known}) "
        "AS dropped_outside_ttl, "
        f"count(*) FILTER (WHERE r.f0 IS NULL AND r.entity_id > {known}) "
        "AS dropped_unknown_entity, "
        "count(*) FILTER (WHERE r.f0 IS NOT NULL) AS dropped_with_features, "
        "count(*) FILTER (WHERE r.f0 IS NOT NULL AND c.copies > 1) "
        "AS dropped_with_features_repeated_pairs, "
        "count(*) FILTER (WHERE c.copies > 1) AS dropped_repeated_pairs "
        f"FROM read_parquet('{reference}') r JOIN counted c USING (row_id) "
        f"WHERE r.row_id NOT IN (SELECT row_id FROM read_parquet('{other}'))",
    )


def check_online(
    con: Any, data: dict[str, Any], dumps: dict[str, Any], plan: Any
) -> dict[str, Any]:
    """Each entity's online features against its latest feature row: fresh rows (newer than
    the read time minus the TTL) must match exactly; older ones must be missing where the TTL
    is enforced; unknown entities missing."""
    ttl_us = TTL_DAYS * DAY_S * 10**6
    picks = ", ".join(f"arg_max({f}, event_timestamp) AS {f}" for f in FEATURES)
    con.execute(
        "CREATE TEMP TABLE latest AS SELECT entity_id, epoch_us(max(event_timestamp)) AS ts, "
        f"{picks} FROM read_parquet('{data['features_file']}') GROUP BY entity_id"
    )
    out: dict[str, Any] = {"problems": []}
    differs = " OR ".join(f"d.{f} IS DISTINCT FROM l.{f}" for f in FEATURES)
    served = " OR ".join(f"d.{f} IS NOT NULL" for f in FEATURES)
    for side in ("decisionloop", "feast"):
        if side not in dumps:
            continue
        dump = dumps[side]
        fresh = f"l.ts >= {dump['read_finished_us'] - ttl_us}"
        stale = f"l.ts < {dump['read_started_us'] - ttl_us}"
        found = row(
            con,
            "SELECT count(*) AS entities_read, "
            f"count(*) FILTER (WHERE l.entity_id IS NULL) AS unknown, "
            f"count(*) FILTER (WHERE l.entity_id IS NULL AND ({served})) AS unknown_served, "
            f"count(*) FILTER (WHERE {fresh}) AS fresh, "
            f"count(*) FILTER (WHERE {fresh} AND ({differs})) AS fresh_differing, "
            f"count(*) FILTER (WHERE {stale}) AS older_than_ttl, "
            f"count(*) FILTER (WHERE {stale} AND ({served})) AS older_than_ttl_served, "
            f"count(*) FILTER (WHERE {stale} AND ({served}) AND ({differs})) "
            "AS older_than_ttl_served_wrong "
            f"FROM read_parquet('{dump['file']}') d LEFT JOIN latest l USING (entity_id)",
        )
        out[side] = found
        if found["fresh_differing"] or found["unknown_served"]:
            out["problems"].append(f"{side} online values differ from the latest rows: {found}")
        if side == "decisionloop" and found["older_than_ttl_served"]:
            out["problems"].append(
                f"DecisionLoop served {found['older_than_ttl_served']:,} entities older than "
                "the TTL"
            )
    materialized = dumps.get("decisionloop_materialized") or []
    if materialized and materialized[0]["rows_written"] != plan.entities:
        out["problems"].append(
            f"DecisionLoop materialized {materialized[0]['rows_written']:,} entities of "
            f"{plan.entities:,}"
        )
    return out
