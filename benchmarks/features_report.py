"""Reporting of benchmarks/features.py: the table rows, their ratios, the goals of issue 4, the
console table and the Markdown for docs/benchmarks.md."""

from __future__ import annotations

import json
import statistics
from typing import Any

#: (group, unit, DecisionLoop's key, [(peer, key)]); unit "req/s" is better when higher
ROWS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "historical retrieval to Arrow",
        "s",
        "dl_arrow",
        [
            ("hand DuckDB ASOF join, TTL as CASE, ORDER BY row", "hand_arrow"),
            ("same, without ORDER BY (rows in any order)", "hand_unordered"),
            ("Feast DuckDB store `to_arrow()`", "feast_duckdb_arrow"),
        ],
    ),
    (
        "historical retrieval to pandas",
        "s",
        "dl_pandas",
        [
            ("Feast file store (default) `to_df()`", "feast_file_pandas"),
            ("Feast DuckDB store `to_df()`", "feast_duckdb_pandas"),
            ("hand ASOF join + `to_pandas()`", "hand_pandas"),
        ],
    ),
    (
        "peak memory of the retrieval process",
        "MB",
        "dl_peak_mb",
        [
            ("hand ASOF join", "hand_peak_mb"),
            ("Feast file store", "feast_file_peak_mb"),
            ("Feast DuckDB store", "feast_duckdb_peak_mb"),
        ],
    ),
    (
        "materialize: latest row per entity into SQLite",
        "s",
        "dl_materialize",
        [
            ("hand: DuckDB `arg_max` + one SQLite row per entity", "hand_materialize"),
            ("Feast `materialize`, file store", "feast_file_materialize"),
            ("Feast `materialize`, DuckDB store", "feast_duckdb_materialize"),
        ],
    ),
    (
        "online, in process, 1 entity (median)",
        "us",
        "dl_one",
        [
            ("plain SQLite primary-key table", "hand_one"),
            ("Feast `get_online_features`", "feast_one"),
        ],
    ),
    (
        "online, in process, 100 entities (median)",
        "us",
        "dl_hundred",
        [
            ("plain SQLite primary-key table", "hand_hundred"),
            ("Feast `get_online_features`", "feast_hundred"),
        ],
    ),
    (
        "HTTP, 1 entity per request, 1 worker, c=8",
        "req/s",
        "dl_http",
        [
            ("same DecisionLoop app, uvicorn's access log off", "dl_quiet_http"),
            ("minimal Starlette app over SQLite, no access log", "minimal_http"),
            (
                "`feast serve` (gunicorn defaults: restarts its worker every ~1,000 requests)",
                "feast_http",
            ),
        ],
    ),
]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(samples: dict[str, list[float]], *, feast: bool = True) -> list[dict[str, Any]]:
    """One row per (measurement, peer): medians over the rounds and the ratio; Feast's rows
    are left out when Feast did not run."""
    rows = []
    for group, unit, ours, peers in ROWS:
        mine = samples.get(ours)
        for peer, key in peers:
            if key.startswith("feast_") and not feast:
                continue
            theirs = samples.get(key)
            value = median(mine) if mine else None
            other = median(theirs) if theirs else None
            ratio = None
            if value and other:
                ratio = value / other if unit == "req/s" else other / value
            rows.append(
                {
                    "group": group,
                    "unit": unit,
                    "decisionloop": value,
                    "decisionloop_p99": median(samples[f"{ours}_p99"])
                    if f"{ours}_p99" in samples
                    else None,
                    "n": len(mine or []),
                    "peer": peer,
                    "peer_key": key,
                    "peer_value": other,
                    "peer_p99": median(samples[f"{key}_p99"]) if f"{key}_p99" in samples else None,
                    "peer_n": len(theirs or []),
                    "ratio": ratio,
                }
            )
    return rows


def goals(
    rows: list[dict[str, Any]], checks: dict[str, Any], samples: dict[str, list[float]]
) -> dict[str, Any]:
    ratio = {r["peer_key"]: r["ratio"] for r in rows}

    def dl(key: str) -> float | None:
        return median(samples[key]) if key in samples else None

    def within(key: str, limit: float) -> bool | None:
        value = ratio.get(key)
        return None if value is None else 1 / value <= limit

    def at_least(value: float | None, limit: float) -> bool | None:
        return None if value is None else value >= limit

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    mine = checks["decisionloop"]
    online = checks["online"].get("decisionloop", {})
    return {
        "rows_out_equal_rows_in": mine["rows"] == mine["other_rows"] and not mine["missing_rows"],
        "10x_faster_than_feast_file_store": at_least(ratio.get("feast_file_pandas"), 10),
        "within_1_2x_of_feast_duckdb_store": within("feast_duckdb_arrow", 1.2),
        "within_1_2x_of_hand_asof": within("hand_arrow", 1.2),
        "peak_memory_under_1_gb": at_most(dl("dl_peak_mb"), 1024),
        "materialize_under_5_s": at_most(dl("dl_materialize"), 5),
        "materialize_6x_feast": at_least(ratio.get("feast_file_materialize"), 6),
        "online_one_at_most_50_us": at_most(dl("dl_one"), 50),
        "online_hundred_at_most_1_ms": at_most(dl("dl_hundred"), 1000),
        "online_5x_feast_one": at_least(ratio.get("feast_one"), 5),
        "online_5x_feast_hundred": at_least(ratio.get("feast_hundred"), 5),
        "http_at_least_3000_per_second": at_least(dl("dl_http"), 3000),
        "ttl_enforced_online": (not online.get("older_than_ttl_served")) if online else None,
    }


def fmt(value: float | None, unit: str, p99: float | None = None) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        text = f"{value:.2f} s" if value >= 1 else f"{value * 1e3:.0f} ms"
    elif unit == "us":
        text = f"{value / 1e3:.2f} ms" if value >= 1000 else f"{value:.0f} µs"
        if p99 is not None:
            text += f" (p99 {fmt(p99, 'us')})"
    elif unit == "MB":
        text = f"{value:,.0f} MB"
    else:
        text = f"{value:,.0f}/s"
    return text


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def table_lines(rows: list[dict[str, Any]], result: dict[str, Any]) -> list[list[str]]:
    http_results = result.get("http") or {}
    lines = []
    previous = None
    for r in rows:
        first = r["group"] != previous
        previous = r["group"]
        ours = fmt(r["decisionloop"], r["unit"], r["decisionloop_p99"])
        theirs = fmt(r["peer_value"], r["unit"], r["peer_p99"])
        if r["unit"] == "req/s":
            side = r["peer_key"].removesuffix("_http")
            ours = http_cell(http_results.get("dl"))
            theirs = http_cell(http_results.get(side))
        lines.append(
            [
                r["group"] if first else "",
                str(r["n"]) if first else "",
                ours if first else "",
                r["peer"],
                theirs,
                fmt_ratio(r["ratio"]),
            ]
        )
    return lines


def http_cell(outcome: dict[str, Any] | None) -> str:
    if not outcome:
        return "not run (--http)"
    if outcome.get("requests_per_second") is None:
        return "pending" if "404" in outcome.get("note", "") else "failed"
    errors = outcome["errors"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in outcome["error_kinds"].items())
    return f"{outcome['requests_per_second']:,.0f}/s, {errors} errors" + (
        f" ({kinds})" if kinds else ""
    )


def print_report(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    data = result["data"]
    table = Table(
        title=f"Feature store: {data['entities']:,} entities x {data['timestamps']} timestamps "
        f"= {data['feature_rows']:,} feature rows, {data['entity_rows']:,} entity rows"
    )
    for name in ("measurement", "n", "DecisionLoop", "peer", "peer's", "ratio"):
        table.add_column(name, justify="right" if name in ("n", "ratio") else "left")
    for cells in table_lines(rows, result):
        table.add_row(*(cell.replace("`", "") for cell in cells))
    console = Console(width=200)
    console.print(table)
    for line in summary_lines(result):
        console.print(line)


def summary_lines(result: dict[str, Any]) -> list[str]:
    checks = result["checks"]
    ref = checks["reference"]
    mine = checks["decisionloop"]
    lines = [
        f"reference (hand ASOF): {ref['rows']:,} rows, {ref['rows_without_features']:,} without "
        f"features ({ref['unknown_entity_rows']:,} unknown entities, "
        f"{ref['rows_outside_ttl_or_before_first']:,} outside the TTL or before the first row)",
        f"DecisionLoop: {mine['rows']:,} rows (in input order: {mine['in_input_order']}), "
        f"{mine['differing']:,} rows differ from the hand ASOF, "
        f"{mine['entity_columns_differing']:,} entity columns differ",
    ]
    for kind in ("duckdb", "file"):
        found = checks.get(f"feast_{kind}")
        if found:
            lines.append(
                f"Feast {kind} store: {found['other_rows']:,} rows, {found['missing_rows']:,} "
                f"entity rows dropped ({found['dropped_outside_ttl']:,} without a value inside "
                f"the TTL, {found['dropped_unknown_entity']:,} of entities without feature "
                f"rows, {found['dropped_with_features']:,} that had features (of which "
                f"{found['dropped_with_features_repeated_pairs']:,} repeat a pair); "
                f"{found['dropped_repeated_pairs']:,} repeat an (entity, time) pair), "
                f"{found['differing']:,} of {found['compared']:,} kept rows differ"
            )
    for side in ("decisionloop", "feast"):
        online = checks["online"].get(side)
        if online:
            lines.append(
                f"online {side}: {online['entities_read']:,} entities read, "
                f"{online['fresh']:,} fresh ({online['fresh_differing']} differ), "
                f"{online['older_than_ttl']:,} older than the TTL of which "
                f"{online['older_than_ttl_served']:,} served, {online['unknown']:,} unknown "
                f"({online['unknown_served']} served)"
            )
    lines.append("goals: " + json.dumps(result["goals"]))
    lines.append(
        "problems: " + ("none" if not checks["problems"] else "; ".join(checks["problems"]))
    )
    return lines


def markdown(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    lines = [
        "| measurement | n | DecisionLoop | peer | peer's | ratio (>1: DL better) |",
        "|---|--:|--:|---|--:|--:|",
    ]
    lines += ["| " + " | ".join(line) + " |" for line in table_lines(rows, result)]
    return "\n".join(lines)
