"""The validation engine on files (CSV, Parquet, JSON) and Arrow tables: every check, the
verdict, the quarantine entries and the stored Parquet. Every row in is stored, quarantined or
skipped: each test checks that balance on its outcome."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, FileRef, RawBatch
from decisionloop.data.contract import (
    ColumnSpec,
    ConsentRule,
    ContractSpec,
    FreshnessRule,
    OutlierRule,
)
from decisionloop.data.engine import (
    SKIP_CONSENT,
    SKIP_DUPLICATE,
    Outcome,
    Reference,
    file_columns,
    validate_batch,
)

C = ColumnSpec
#: a contract that never fails a batch for its share of bad rows
LENIENT = ContractSpec(max_error_rate=1.0)


# --- helpers ---------------------------------------------------------------------------------


def csv_file(folder: Path, text: str, name: str = "data.csv") -> RawBatch:
    path = folder / name
    path.write_text(text)
    return RawBatch(origin=f"{name}#test", file=FileRef(str(path), "csv", name))


def parquet_file(folder: Path, table: pa.Table, name: str = "data.parquet") -> RawBatch:
    path = folder / name
    pq.write_table(table, path)
    return RawBatch(origin=f"{name}#test", file=FileRef(str(path), "parquet", name))


def json_file(folder: Path, records: list[dict[str, Any]], name: str = "data.json") -> RawBatch:
    path = folder / name
    path.write_text(json.dumps(records))
    return RawBatch(origin=f"{name}#test", file=FileRef(str(path), "json", name))


def table(**columns: list[Any]) -> RawBatch:
    """An Arrow batch with positions ``t@0``, ``t@1``, ... (extra reserved columns allowed)."""
    rows = len(next(iter(columns.values())))
    data = {name: pa.array(values) for name, values in columns.items()}
    data.setdefault(POSITION, pa.array([f"t@{i}" for i in range(rows)]))
    return RawBatch(origin="topic@0-9", table=pa.table(data))


def validate(
    batch: RawBatch,
    columns: dict[str, ColumnSpec],
    workdir: Path,
    contract: ContractSpec | None = None,
    reference: Reference | None = None,
) -> Outcome:
    """Validate and check the invariants every outcome keeps."""
    outcome = validate_batch(
        batch, columns, contract or ContractSpec(), reference or Reference(), workdir
    )
    report = outcome.report
    assert report.rows_in == report.rows_stored + report.rows_quarantined + report.rows_skipped
    assert report.to_dict()["balanced"] is True
    assert report.rows_skipped == sum(report.skipped.values())
    assert all(entry.reasons for entry in outcome.quarantined)
    if report.verdict == "fail":
        assert outcome.stored_path is None
        assert report.rows_stored == 0
    if report.verdict != "fail" or batch.table is not None:
        rows = [q for q in outcome.quarantined if q.kind == "row"]
        assert len(rows) == report.rows_quarantined
    if outcome.stored_path is None:
        assert report.rows_stored == 0
    else:
        assert pq.read_metadata(outcome.stored_path).num_rows == report.rows_stored
    return outcome


def stored(outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.stored_path is not None
    rows: list[dict[str, Any]] = pq.read_table(outcome.stored_path).to_pylist()
    return rows


def stored_types(outcome: Outcome) -> dict[str, str]:
    assert outcome.stored_path is not None
    schema = pq.read_schema(outcome.stored_path)
    return {name: str(schema.field(name).type) for name in schema.names}


def failed(outcome: Outcome) -> dict[str, int]:
    """Check name -> failed count, for the checks that failed."""
    return {c.check: c.failed for c in outcome.report.checks if c.failed}


def check(outcome: Outcome, name: str) -> Any:
    (found,) = [c for c in outcome.report.checks if c.check == name]
    return found


def entries(outcome: Outcome) -> dict[str, list[str]]:
    """Quarantine position -> reasons."""
    return {q.position: q.reasons for q in outcome.quarantined}


def good_csv_rows(count: int, start: int = 100) -> str:
    return "".join(f"{i},1.5,true,a\n" for i in range(start, start + count))


MIXED = {
    "id": C(type="integer", nullable=False),
    "x": C(type="number"),
    "b": C(type="boolean"),
    "s": C(type="string"),
}


# --- CSV: values parsed into the declared types ------------------------------------------------


def test_clean_csv_passes_and_stores_every_row_with_declared_types(tmp_path: Path) -> None:
    columns = {**MIXED, "t": C(type="datetime")}
    text = "id,x,b,s,t\n1,1.5,true,a,2024-01-02T03:04:05Z\n2,-2,no,b,2024-02-01 00:00:00+01:00\n"
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path)

    assert outcome.report.verdict == "pass"
    assert (outcome.report.rows_in, outcome.report.rows_stored) == (2, 2)
    assert outcome.quarantined == []
    assert failed(outcome) == {}
    assert stored_types(outcome) == {
        "id": "int64",
        "x": "double",
        "b": "bool",
        "s": "string",
        "t": "timestamp[us, tz=UTC]",
    }
    rows = stored(outcome)
    assert [(r["id"], r["x"], r["b"], r["s"]) for r in rows] == [
        (1, 1.5, True, "a"),
        (2, -2.0, False, "b"),
    ]
    assert rows[0]["t"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows[1]["t"] == datetime(2024, 1, 31, 23, 0, tzinfo=UTC)
    assert set(outcome.columns) == set(columns)


def test_csv_values_that_do_not_parse_quarantine_their_line(tmp_path: Path) -> None:
    text = (
        "id,x,b,s\n"  # line 1
        "1,1.5,true,a\n"  # line 2
        "2,abc,yes,b\n"  # line 3: x
        "3,2,maybe,c\n"  # line 4: b
        "four,3,no,d\n"  # line 5: id
        "5,4,t,e\n"  # line 6
    )
    outcome = validate(csv_file(tmp_path, text), MIXED, tmp_path, LENIENT)

    assert outcome.report.verdict == "warn"
    assert (outcome.report.rows_in, outcome.report.rows_stored) == (6 - 1, 2)
    assert outcome.report.rows_quarantined == 3
    by_position = {q.position: q for q in outcome.quarantined}
    assert sorted(by_position) == ["data.csv:line 3", "data.csv:line 4", "data.csv:line 5"]
    # a line that did not parse is kept as its fields (text) plus the line as read
    assert json.loads(by_position["data.csv:line 3"].payload) == {
        "id": "2",
        "x": "abc",
        "b": "yes",
        "s": "b",
        "_line": "2,abc,yes,b",
    }
    assert json.loads(by_position["data.csv:line 4"].payload)["_line"] == "3,2,maybe,c"
    # integer columns are read as text and converted exactly by the type check, so the row
    # is quarantined as a JSON row like any other check failure
    assert json.loads(by_position["data.csv:line 5"].payload)["id"] == "four"
    (reason,) = by_position["data.csv:line 3"].reasons
    assert reason.startswith("x: type (")
    assert '"abc"' in reason
    assert by_position["data.csv:line 4"].reasons[0].startswith("b: type (")
    assert by_position["data.csv:line 5"].reasons == ["id: type"]
    assert check(outcome, "x: type").failed == 1
    assert check(outcome, "x: type").examples == ["'abc'"]
    assert check(outcome, "b: type").examples == ["'maybe'"]
    assert [r["id"] for r in stored(outcome)] == [1, 5]


def test_csv_fractional_value_in_an_integer_column_is_a_type_error_not_rounded(
    tmp_path: Path,
) -> None:
    text = "id,x,b,s\n1,1,true,a\n4.5,1,true,a\n-2.5,1,true,a\n6.0,1,true,a\n"
    outcome = validate(csv_file(tmp_path, text), MIXED, tmp_path, LENIENT)

    assert [r["id"] for r in stored(outcome)] == [1, 6]
    assert entries(outcome) == {
        "data.csv:line 3": ["id: type"],
        "data.csv:line 4": ["id: type"],
    }
    assert [json.loads(q.payload)["id"] for q in outcome.quarantined] == [4.5, -2.5]
    assert check(outcome, "id: type").failed == 2
    assert check(outcome, "id: type").examples == ["'4.5'", "'-2.5'"]


def test_csv_integers_beyond_double_precision_are_stored_exactly(tmp_path: Path) -> None:
    text = "id\n9007199254740993\n-9007199254740993\n9223372036854775807\n"
    outcome = validate(csv_file(tmp_path, text), {"id": C(type="integer")}, tmp_path)

    assert outcome.report.verdict == "pass"
    assert [r["id"] for r in stored(outcome)] == [
        9007199254740993,
        -9007199254740993,
        9223372036854775807,
    ]


def test_csv_integer_payloads_are_exact_json_numbers(tmp_path: Path) -> None:
    columns = {"id": C(type="integer"), "s": C(type="string", allowed=["ok"])}
    text = "id,s\n9007199254740993,bad\n7,bad\n1,ok\n"
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path, LENIENT)

    assert [q.payload for q in outcome.quarantined] == [
        '{"id":9007199254740993,"s":"bad"}',
        '{"id":7,"s":"bad"}',
    ]


def test_csv_integer_out_of_range_is_a_type_error(tmp_path: Path) -> None:
    text = "id\n1\n99999999999999999999\n"
    outcome = validate(csv_file(tmp_path, text), {"id": C(type="integer")}, tmp_path, LENIENT)

    assert [r["id"] for r in stored(outcome)] == [1]
    assert list(entries(outcome).values()) == [["id: type"]]


def test_csv_boolean_words_and_datetime_rejects(tmp_path: Path) -> None:
    columns = {"b": C(type="boolean"), "t": C(type="datetime")}
    text = "b,t\nTrue,2024-01-01\nFALSE,2024-01-02\n1,2024-01-03\n0,not a date\n"
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path, LENIENT)

    assert [r["b"] for r in stored(outcome)] == [True, False, True]
    (position,) = entries(outcome)
    assert position == "data.csv:line 5"
    assert entries(outcome)[position][0].startswith("t: type (")


def test_malformed_csv_lines_are_quarantined_with_line_number_and_raw_line(
    tmp_path: Path,
) -> None:
    text = "id,x,b,s\n1,1.5,true,a\n8,1,t,b,extra\n9\n" + good_csv_rows(40)
    outcome = validate(csv_file(tmp_path, text), MIXED, tmp_path)

    assert outcome.report.verdict == "warn"
    assert outcome.report.rows_in == 43
    assert outcome.report.rows_stored == 41
    by_position = {q.position: q for q in outcome.quarantined}
    assert sorted(by_position) == ["data.csv:line 3", "data.csv:line 4"]
    too_many = by_position["data.csv:line 3"]
    assert too_many.payload == "8,1,t,b,extra"
    assert too_many.reasons[0].startswith("malformed line: too many columns")
    too_few = by_position["data.csv:line 4"]
    assert too_few.payload == "9"
    assert all(r.startswith("malformed line: missing columns") for r in too_few.reasons)
    malformed = check(outcome, "malformed line")
    assert (malformed.failed, malformed.severity) == (2, "error")
    assert sorted(malformed.examples) == ["'8,1,t,b,extra'", "'9'"]
    assert [r["id"] for r in stored(outcome)][:2] == [1, 100]


def test_file_columns_reads_the_header_of_a_csv_with_a_malformed_line(tmp_path: Path) -> None:
    batch = csv_file(tmp_path, "id,x,b,s\n1,1,true,a\n2,2\n3,3,false,c\n")
    assert batch.file is not None
    assert file_columns(batch.file) == ["id", "x", "b", "s"]


def test_empty_csv_fields_are_missing_values(tmp_path: Path) -> None:
    text = "id,x,b,s\n1,,,\n,2,true,a\n"
    outcome = validate(csv_file(tmp_path, text), MIXED, tmp_path, LENIENT)

    assert stored(outcome) == [{"id": 1, "x": None, "b": None, "s": None}]
    assert entries(outcome) == {"data.csv:line 3": ["id: not null"]}
    assert check(outcome, "id: not null").failed == 1


# --- row checks --------------------------------------------------------------------------------


def test_not_null_on_every_type(tmp_path: Path) -> None:
    columns = {
        "i": C(type="integer", nullable=False),
        "n": C(type="number", nullable=False),
        "s": C(type="string", nullable=False),
        "b": C(type="boolean", nullable=False),
    }
    batch = table(
        i=["1", None, "3", "4", "5"],
        n=["1", "2", " ", "4", "5"],
        s=["a", "b", "c", None, "e"],
        b=["true", "false", "true", "false", ""],
    )
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {
        "t@1": ["i: not null"],
        "t@2": ["n: not null"],
        "t@3": ["s: not null"],
        "t@4": ["b: not null"],
    }
    assert stored(outcome) == [{"i": 1, "n": 1.0, "s": "a", "b": True}]


def test_empty_text_is_a_value_for_a_string_column(tmp_path: Path) -> None:
    outcome = validate(table(s=["", "x"]), {"s": C(type="string", nullable=False)}, tmp_path)

    assert outcome.report.verdict == "pass"
    assert [r["s"] for r in stored(outcome)] == ["", "x"]


def test_type_check_on_text_columns_of_a_table(tmp_path: Path) -> None:
    columns = {
        "i": C(type="integer"),
        "n": C(type="number"),
        "b": C(type="boolean"),
        "t": C(type="datetime"),
    }
    batch = table(
        i=["1", "2.5", "x", "4", "5"],
        n=["1e3", "1", "1", "seven", "2"],
        b=["yes", "n", "true", "0", "perhaps"],
        t=["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-13-45"],
    )
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {
        "t@1": ["i: type"],
        "t@2": ["i: type"],
        "t@3": ["n: type"],
        "t@4": ["b: type", "t: type"],
    }
    assert check(outcome, "i: type").examples == ["'2.5'", "'x'"]
    assert stored(outcome)[0]["n"] == 1000.0
    assert stored(outcome)[0]["b"] is True


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "Infinity", "NaN"])
def test_finite_rejects_infinity_and_nan_in_csv(tmp_path: Path, bad: str) -> None:
    text = f"x\n1.5\n{bad}\n2\n"
    outcome = validate(csv_file(tmp_path, text), {"x": C(type="number")}, tmp_path, LENIENT)

    assert entries(outcome) == {"data.csv:line 3": ["x: finite"]}
    assert [r["x"] for r in stored(outcome)] == [1.5, 2.0]


def test_finite_rejects_infinity_and_nan_in_parquet(tmp_path: Path) -> None:
    data = pa.table({"x": [1.0, math.inf, -math.inf, math.nan, None]})
    outcome = validate(parquet_file(tmp_path, data), {"x": C(type="number")}, tmp_path, LENIENT)

    assert entries(outcome) == {
        "data.parquet:row 2": ["x: finite"],
        "data.parquet:row 3": ["x: finite"],
        "data.parquet:row 4": ["x: finite"],
    }
    assert check(outcome, "x: finite").failed == 3
    assert [r["x"] for r in stored(outcome)] == [1.0, None]


def test_allowed_values(tmp_path: Path) -> None:
    columns = {
        "s": C(type="string", allowed=["red", "green"]),
        "i": C(type="integer", allowed=[1, 2]),
    }
    batch = table(s=["red", "blue", "green", None, "Red"], i=["1", "2", "3", "1", "2"])
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@1": ["s: allowed"], "t@2": ["i: allowed"], "t@4": ["s: allowed"]}
    assert check(outcome, "s: allowed").examples == ["'blue'", "'Red'"]
    assert [r["s"] for r in stored(outcome)] == ["red", None]


def test_min_and_max(tmp_path: Path) -> None:
    columns = {"v": C(type="number", min=0, max=10), "n": C(type="integer", min=-1)}
    batch = table(v=["0", "10", "10.01", "-0.5", "5"], n=["-1", "0", "0", "0", "-2"])
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@2": ["v: max"], "t@3": ["v: min"], "t@4": ["n: min"]}
    assert [r["v"] for r in stored(outcome)] == [0.0, 10.0]


def test_pattern_must_match_the_whole_value(tmp_path: Path) -> None:
    columns = {"code": C(type="string", pattern=r"AB-\d+")}
    batch = table(code=["AB-1", "AB-12x", "xAB-1", "AB-999", None])
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@1": ["code: pattern"], "t@2": ["code: pattern"]}
    assert [r["code"] for r in stored(outcome)] == ["AB-1", "AB-999", None]


def test_max_length(tmp_path: Path) -> None:
    columns = {"s": C(type="string", max_length=3)}
    outcome = validate(table(s=["abc", "abcd", "", "ééé", "éééé"]), columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@1": ["s: max_length"], "t@4": ["s: max_length"]}
    assert [r["s"] for r in stored(outcome)] == ["abc", "", "ééé"]


def test_unique_keeps_the_first_occurrence(tmp_path: Path) -> None:
    columns = {"k": C(type="string", unique=True), "v": C(type="integer")}
    batch = table(k=["a", "b", "a", None, None, "a"], v=["1", "2", "3", "4", "5", "6"])
    outcome = validate(batch, columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@2": ["k: unique"], "t@5": ["k: unique"]}
    assert check(outcome, "k: unique").failed == 2
    assert [r["v"] for r in stored(outcome)] == [1, 2, 4, 5]


def test_key_duplicates_in_a_batch_are_quarantined(tmp_path: Path) -> None:
    columns = {"a": C(type="integer"), "b": C(type="string"), "v": C(type="number")}
    batch = table(a=["1", "1", "1", "2", "01"], b=["x", "y", "x", "x", "y"], v=list("12345"))
    outcome = validate(batch, columns, tmp_path, ContractSpec(key=["a", "b"], max_error_rate=1))

    # "01" is the integer 1: the typed values are compared
    assert entries(outcome) == {
        "t@2": ["key: duplicate in batch"],
        "t@4": ["key: duplicate in batch"],
    }
    assert [r["v"] for r in stored(outcome)] == [1.0, 2.0, 4.0]


def test_key_column_missing_fails_the_batch(tmp_path: Path) -> None:
    outcome = validate(table(a=["1"]), {"a": C(type="integer")}, tmp_path, ContractSpec(key=["id"]))

    assert outcome.report.verdict == "fail"
    assert check(outcome, "key: columns").detail == "key column(s) missing: id"


def test_every_failing_check_of_a_row_is_a_reason(tmp_path: Path) -> None:
    columns = {
        "v": C(type="integer", max=5),
        "s": C(type="string", allowed=["a"], max_length=1),
    }
    outcome = validate(table(v=["9", "1"], s=["bb", "a"]), columns, tmp_path, LENIENT)

    assert entries(outcome) == {"t@0": ["v: max", "s: allowed", "s: max_length"]}
    (row,) = [q for q in outcome.quarantined]
    assert json.loads(row.payload) == {"v": "9", "s": "bb"}
    assert row.kind == "row"


def test_warn_severity_counts_but_stores(tmp_path: Path) -> None:
    columns = {"v": C(type="number", max=1, severity="warn")}
    outcome = validate(table(v=["0.5", "7"]), columns, tmp_path)

    assert outcome.report.verdict == "warn"
    assert outcome.quarantined == []
    assert check(outcome, "v: max").severity == "warn"
    assert failed(outcome) == {"v: max": 1}
    assert [r["v"] for r in stored(outcome)] == [0.5, 7.0]


# --- outliers --------------------------------------------------------------------------------


def test_outliers_outside_the_reference_bounds_warn_without_quarantine(tmp_path: Path) -> None:
    columns = {"v": C(type="number", outliers=OutlierRule(method="iqr", factor=3))}
    reference = Reference(outlier_bounds={"v": (0.0, 10.0)})
    outcome = validate(table(v=["1", "10", "10.5", "-3"]), columns, tmp_path, None, reference)

    assert outcome.report.verdict == "warn"
    assert outcome.quarantined == []
    result = check(outcome, "v: outlier")
    assert (result.failed, result.severity) == (2, "warn")
    assert result.examples == ["'10.5'", "'-3'"]
    assert [r["v"] for r in stored(outcome)] == [1.0, 10.0, 10.5, -3.0]


def test_outliers_with_error_severity_are_quarantined(tmp_path: Path) -> None:
    columns = {"v": C(type="integer", outliers=OutlierRule(method="mad", severity="error"))}
    reference = Reference(outlier_bounds={"v": (0.0, 10.0)})
    batch = table(v=["1", "100", "5"])
    outcome = validate(batch, columns, tmp_path, LENIENT, reference)

    assert entries(outcome) == {"t@1": ["v: outlier"]}
    assert [r["v"] for r in stored(outcome)] == [1, 5]


def test_outliers_without_learned_bounds_are_not_checked(tmp_path: Path) -> None:
    columns = {"v": C(type="number", outliers=OutlierRule(method="iqr"))}
    outcome = validate(table(v=["1", "1e9"]), columns, tmp_path)

    assert outcome.report.verdict == "pass"
    assert all(c.check != "v: outlier" for c in outcome.report.checks)


# --- the column set -------------------------------------------------------------------------


def test_missing_declared_column_fails_a_file_whole(tmp_path: Path) -> None:
    columns = {"a": C(type="integer"), "b": C(type="string"), "c": C(type="string")}
    outcome = validate(csv_file(tmp_path, "a\n1\n2\n"), columns, tmp_path)

    report = outcome.report
    assert report.verdict == "fail"
    assert (report.rows_in, report.rows_stored, report.rows_quarantined) == (2, 0, 2)
    missing = check(outcome, "columns: missing")
    assert missing.detail == "missing column(s): b, c"
    assert missing.examples == ["b", "c"]
    (entry,) = outcome.quarantined
    assert entry.kind == "batch"
    assert entry.position == "data.csv#test"
    assert entry.reasons == ["missing column(s): b, c"]
    assert json.loads(entry.payload) == {"origin": "data.csv#test"}
    assert outcome.columns == {}


def test_missing_declared_column_quarantines_a_stream_batch_row_by_row(tmp_path: Path) -> None:
    outcome = validate(
        table(a=["1", "2"]), {"a": C(type="integer"), "b": C(type="string")}, tmp_path
    )

    assert outcome.report.verdict == "fail"
    assert entries(outcome) == {
        "t@0": ["batch rejected: missing column(s): b"],
        "t@1": ["batch rejected: missing column(s): b"],
    }
    assert [json.loads(q.payload) for q in outcome.quarantined] == [{"a": "1"}, {"a": "2"}]


@pytest.mark.parametrize(
    ("mode", "verdict", "severity"),
    [("warn", "warn", "warn"), ("error", "fail", "error"), ("ignore", "pass", None)],
)
def test_extra_columns(tmp_path: Path, mode: str, verdict: str, severity: str | None) -> None:
    contract = ContractSpec(extra_columns=mode)  # type: ignore[arg-type]  # parametrized str
    batch = csv_file(tmp_path, "a,zz,yy\n1,q,r\n2,s,t\n")
    outcome = validate(batch, {"a": C(type="integer")}, tmp_path, contract)

    assert outcome.report.verdict == verdict
    extra = [c for c in outcome.report.checks if c.check == "columns: extra"]
    if severity is None:
        assert extra == []
    else:
        assert extra[0].severity == severity
        assert extra[0].detail == "undeclared column(s): zz, yy"
    if verdict != "fail":
        # undeclared columns are not stored
        assert stored(outcome) == [{"a": 1}, {"a": 2}]


def test_no_declared_columns_stores_every_column_as_text(tmp_path: Path) -> None:
    outcome = validate(csv_file(tmp_path, "a,b\n1,x\n2,y\n"), {}, tmp_path)

    assert outcome.report.verdict == "pass"
    assert stored_types(outcome) == {"a": "string", "b": "string"}
    assert stored(outcome) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]


# --- batch-level checks --------------------------------------------------------------------


def test_min_rows_and_max_rows(tmp_path: Path) -> None:
    columns = {"a": C(type="integer")}
    few = validate(table(a=["1", "2"]), columns, tmp_path, ContractSpec(min_rows=3))
    many = validate(table(a=["1", "2"]), columns, tmp_path, ContractSpec(max_rows=1))
    within = validate(table(a=["1", "2"]), columns, tmp_path, ContractSpec(min_rows=2, max_rows=2))

    assert few.report.verdict == "fail"
    assert check(few, "rows: min").detail == "2 rows, fewer than min_rows 3"
    assert many.report.verdict == "fail"
    assert check(many, "rows: max").detail == "2 rows, more than max_rows 1"
    assert within.report.verdict == "pass"
    assert [r["a"] for r in stored(within)] == [1, 2]


def test_empty_batch_fails(tmp_path: Path) -> None:
    empty = RawBatch(
        origin="topic@0-0",
        table=pa.table({"a": pa.array([], pa.string()), POSITION: pa.array([], pa.string())}),
    )
    outcome = validate(empty, {"a": C(type="integer")}, tmp_path)
    header_only = validate(csv_file(tmp_path, "a\n"), {"a": C(type="integer")}, tmp_path)

    assert (outcome.report.verdict, outcome.report.rows_in) == ("fail", 0)
    assert outcome.quarantined == []
    assert (header_only.report.verdict, header_only.report.rows_in) == ("fail", 0)
    assert [q.kind for q in header_only.quarantined] == ["batch"]


def _hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


@pytest.mark.parametrize(
    ("age", "severity", "verdict", "failures"),
    [(1, "warn", "pass", 0), (50, "warn", "warn", 1), (50, "error", "fail", 1)],
)
def test_freshness(tmp_path: Path, age: float, severity: str, verdict: str, failures: int) -> None:
    contract = ContractSpec(
        freshness=FreshnessRule(column="t", max_age_hours=24, severity=severity)  # type: ignore[arg-type]
    )
    batch = table(t=[_hours_ago(age + 100), _hours_ago(age)])
    outcome = validate(batch, {"t": C(type="datetime")}, tmp_path, contract)

    assert outcome.report.verdict == verdict
    result = check(outcome, "freshness")
    assert result.failed == failures
    assert result.detail.startswith(f"newest event {age:.1f} h old")


def test_freshness_without_timestamps_or_column(tmp_path: Path) -> None:
    contract = ContractSpec(freshness=FreshnessRule(column="t", max_age_hours=24))
    no_values = validate(table(t=[None, "x"]), {"t": C(type="datetime")}, tmp_path, LENIENT)
    no_values = validate(table(t=[None, None]), {"t": C(type="datetime")}, tmp_path, contract)
    no_column = validate(table(a=["1"]), {"a": C(type="integer")}, tmp_path, contract)

    assert check(no_values, "freshness").detail == "no event timestamps"
    assert check(no_column, "freshness").detail == "no column 't'"
    assert no_column.report.verdict == "warn"


# --- skipped rows: consent and de-duplication ------------------------------------------------


def test_consent_column_skips_rows_without_consent(tmp_path: Path) -> None:
    columns = {"id": C(type="integer"), "ok": C(type="boolean")}
    contract = ContractSpec(consent=ConsentRule(column="ok"))
    batch = table(id=["1", "2", "3", "4", "5"], ok=["true", "false", None, "yes", "0"])
    outcome = validate(batch, columns, tmp_path, contract)

    report = outcome.report
    assert report.verdict == "pass"
    assert (report.rows_in, report.rows_stored, report.rows_skipped) == (5, 2, 3)
    assert report.skipped == {SKIP_CONSENT: 3}
    assert [r["id"] for r in stored(outcome)] == [1, 4]


def test_consent_table_skips_entities_without_a_recorded_consent(tmp_path: Path) -> None:
    contract = ContractSpec(key=["id"], consent=ConsentRule(table="consent.csv"))
    reference = Reference(consent_sql="SELECT * FROM (VALUES ('1'), ('3'), (NULL)) t(entity)")
    batch = table(id=["1", "2", "3", None])
    outcome = validate(batch, {"id": C(type="integer")}, tmp_path, contract, reference)

    assert outcome.report.skipped == {SKIP_CONSENT: 2}
    assert [r["id"] for r in stored(outcome)] == [1, 3]


def test_stored_keys_are_skipped_as_duplicates(tmp_path: Path) -> None:
    reference = Reference(stored_keys_sql="SELECT * FROM (VALUES (2), (4)) t(id)")
    contract = ContractSpec(key=["id"])
    outcome = validate(
        table(id=["1", "2", "3", "4"]), {"id": C(type="integer")}, tmp_path, contract, reference
    )
    everything = validate(
        table(id=["2", "4"]), {"id": C(type="integer")}, tmp_path, contract, reference
    )

    assert outcome.report.skipped == {SKIP_DUPLICATE: 2}
    assert outcome.report.verdict == "pass"
    assert [r["id"] for r in stored(outcome)] == [1, 3]
    assert (everything.report.rows_skipped, everything.report.rows_stored) == (2, 0)
    assert everything.stored_path is None


def test_a_quarantined_row_is_not_counted_as_skipped(tmp_path: Path) -> None:
    reference = Reference(stored_keys_sql="SELECT * FROM (VALUES (2)) t(id)")
    columns = {"id": C(type="integer"), "v": C(type="integer", max=5)}
    batch = table(id=["1", "2", "2"], v=["1", "9", "1"])
    outcome = validate(
        batch, columns, tmp_path, ContractSpec(key=["id"], max_error_rate=1), reference
    )

    # row 1 fails v: max; row 2 is a key repeat: both quarantined, neither skipped
    assert outcome.report.rows_skipped == 0
    assert entries(outcome) == {"t@1": ["v: max"], "t@2": ["key: duplicate in batch"]}
    assert [r["id"] for r in stored(outcome)] == [1]


# --- decode errors in stream batches -------------------------------------------------------------


def test_decode_errors_are_quarantined_with_their_payload(tmp_path: Path) -> None:
    batch = table(
        a=["1", None, "3"],
        **{ERROR: [None, "invalid JSON at byte 3", None], PAYLOAD: [None, '{"a": 1', None]},
    )
    outcome = validate(batch, {"a": C(type="integer")}, tmp_path, LENIENT)

    (entry,) = outcome.quarantined
    assert entry.position == "t@1"
    assert entry.reasons == ["decode: invalid JSON at byte 3"]
    assert entry.payload == '{"a": 1'
    assert check(outcome, "decode").failed == 1
    assert stored(outcome) == [{"a": 1}, {"a": 3}]
    assert stored_types(outcome) == {"a": "int64"}


def test_payload_defaults_to_the_row_as_json(tmp_path: Path) -> None:
    batch = table(a=["x"], b=["y"], **{PAYLOAD: [None]})
    outcome = validate(batch, {"a": C(type="integer"), "b": C(type="string")}, tmp_path, LENIENT)

    (entry,) = outcome.quarantined
    assert json.loads(entry.payload) == {"a": "x", "b": "y"}


def test_long_payloads_are_cut_at_64_kib(tmp_path: Path) -> None:
    batch = table(a=["x" * 100_000])
    outcome = validate(batch, {"a": C(type="string", max_length=10)}, tmp_path, LENIENT)

    (entry,) = outcome.quarantined
    assert len(entry.payload) == 64 * 1024
    assert entry.payload.startswith('{"a":"xxx')


# --- verdicts and the error rate -----------------------------------------------------------------


def test_verdicts(tmp_path: Path) -> None:
    columns = {"v": C(type="integer", max=5)}
    passing = validate(table(v=["1", "2"]), columns, tmp_path, LENIENT)
    warning = validate(table(v=["1", "9"]), columns, tmp_path, LENIENT)
    failing = validate(table(v=["9", "9"]), columns, tmp_path, LENIENT)

    assert [passing.report.verdict, warning.report.verdict, failing.report.verdict] == [
        "pass",
        "warn",
        "fail",
    ]
    assert "warn: 2 in, 1 stored, 1 quarantined" in warning.report.summary()
    # every row failed: the batch fails and its rows are quarantined one by one
    assert entries(failing) == {"t@0": ["v: max"], "t@1": ["v: max"]}


def test_max_error_rate(tmp_path: Path) -> None:
    columns = {"v": C(type="integer", max=5)}
    values = ["9"] + ["1"] * 9  # 10% bad
    at_limit = validate(table(v=values), columns, tmp_path, ContractSpec(max_error_rate=0.1))
    above = validate(table(v=values), columns, tmp_path, ContractSpec(max_error_rate=0.05))

    assert at_limit.report.verdict == "warn"
    assert at_limit.report.rows_stored == 9
    assert above.report.verdict == "fail"
    rate = check(above, "error rate")
    assert rate.failed == 1
    assert rate.detail == "10.0% of rows failed, above max_error_rate 5%"
    # a stream batch above the rate is quarantined row by row, good rows included
    assert len(above.quarantined) == 10
    assert above.quarantined[1].reasons == [
        "batch rejected: v: max; 10.0% of rows failed, above max_error_rate 5%"
    ]


def test_a_failing_file_is_one_batch_entry_with_every_reason(tmp_path: Path) -> None:
    text = "id,x,b,s\n1,x,true,a\n2,y,true,a\n3,1,true,a\n"
    outcome = validate(csv_file(tmp_path, text), MIXED, tmp_path)

    report = outcome.report
    assert report.verdict == "fail"
    assert (report.rows_in, report.rows_quarantined) == (3, 3)
    (entry,) = outcome.quarantined
    assert entry.kind == "batch"
    assert entry.reasons == ["x: type: 2 rows", "66.7% of rows failed, above max_error_rate 10%"]


# --- unreadable files ------------------------------------------------------------------------


def _parquet_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), path)
    return path.read_bytes()


@pytest.mark.parametrize("cut", ["half", "garbage", "header"])
def test_unreadable_parquet_is_one_batch_entry(tmp_path: Path, cut: str) -> None:
    data = _parquet_bytes(tmp_path)
    content = {"half": data[: len(data) // 2], "garbage": b"not parquet", "header": data[:4]}[cut]
    path = tmp_path / "broken.parquet"
    path.write_bytes(content)
    batch = RawBatch(origin="broken#1", file=FileRef(str(path), "parquet", "broken.parquet"))
    outcome = validate(batch, {"a": C(type="integer")}, tmp_path)

    report = outcome.report
    assert (report.verdict, report.rows_in, report.rows_quarantined) == ("fail", 1, 1)
    (result,) = report.checks
    assert result.check == "readable"
    (entry,) = outcome.quarantined
    assert entry.kind == "batch"
    assert entry.position == "broken#1"
    assert entry.reasons[0].startswith("unreadable parquet file: ")


def test_unreadable_json_is_one_batch_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"a": 1}, {"a": ')
    batch = RawBatch(origin="bad#1", file=FileRef(str(path), "json", "bad.json"))
    outcome = validate(batch, {"a": C(type="integer")}, tmp_path)

    assert outcome.report.verdict == "fail"
    assert [q.kind for q in outcome.quarantined] == ["batch"]
    assert outcome.quarantined[0].reasons[0].startswith("unreadable json file: ")


def test_file_whose_bytes_break_the_error_message_is_one_batch_entry(tmp_path: Path) -> None:
    # DuckDB quotes the bad bytes of this file in its error, cut mid-character
    path = tmp_path / "odd.json"
    path.write_text("\x80", encoding="utf-8")
    batch = RawBatch(origin="odd#1", file=FileRef(str(path), "json", "odd.json"))
    outcome = validate(batch, {"a": C(type="integer")}, tmp_path)

    assert (outcome.report.verdict, outcome.report.rows_in) == ("fail", 1)
    assert [q.kind for q in outcome.quarantined] == ["batch"]
    assert outcome.quarantined[0].reasons[0].startswith("unreadable json file: ")


# --- other file formats ----------------------------------------------------------------------


def test_parquet_native_types_are_stored_as_declared(tmp_path: Path) -> None:
    data = pa.table(
        {
            "i": pa.array([1, 2, None], pa.int32()),
            "n": pa.array([1, 2, 3], pa.int64()),
            "f": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "b": pa.array([True, None, False]),
            "s": pa.array(["a", "b", "c"]),
        }
    )
    columns = {
        "i": C(type="integer"),
        "n": C(type="number"),
        "f": C(type="number"),
        "b": C(type="boolean"),
        "s": C(type="string"),
    }
    outcome = validate(parquet_file(tmp_path, data), columns, tmp_path)

    assert outcome.report.verdict == "pass"
    assert stored_types(outcome) == {
        "i": "int64",
        "n": "double",
        "f": "double",
        "b": "bool",
        "s": "string",
    }
    assert stored(outcome) == [
        {"i": 1, "n": 1.0, "f": 0.5, "b": True, "s": "a"},
        {"i": 2, "n": 2.0, "f": 1.5, "b": None, "s": "b"},
        {"i": None, "n": 3.0, "f": 2.5, "b": False, "s": "c"},
    ]


def test_parquet_float_in_an_integer_column(tmp_path: Path) -> None:
    data = pa.table({"i": pa.array([1.0, 2.5, 3.0])})
    outcome = validate(parquet_file(tmp_path, data), {"i": C(type="integer")}, tmp_path, LENIENT)

    assert entries(outcome) == {"data.parquet:row 2": ["i: type"]}
    assert [r["i"] for r in stored(outcome)] == [1, 3]
    assert stored_types(outcome) == {"i": "int64"}


def test_parquet_in_a_hive_style_folder_has_only_its_own_columns(tmp_path: Path) -> None:
    folder = tmp_path / "day=2024-01-01"
    folder.mkdir()
    outcome = validate(
        parquet_file(folder, pa.table({"a": [1, 2]})),
        {"a": C(type="integer")},
        tmp_path,
        ContractSpec(extra_columns="error"),
    )

    assert outcome.report.verdict == "pass"
    assert stored(outcome) == [{"a": 1}, {"a": 2}]


def test_json_records_with_wrong_types(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"id": 1, "x": 1.5, "b": True, "s": "a"},
        {"id": "two", "x": "nan", "b": "maybe", "s": "b"},
        {"id": 3, "x": None, "b": None, "s": None},
    ]
    outcome = validate(json_file(tmp_path, records), MIXED, tmp_path, LENIENT)

    assert entries(outcome) == {"data.json:row 2": ["id: type", "x: finite", "b: type"]}
    assert json.loads(outcome.quarantined[0].payload)["id"] == "two"
    assert stored(outcome) == [
        {"id": 1, "x": 1.5, "b": True, "s": "a"},
        {"id": 3, "x": None, "b": None, "s": None},
    ]
    assert stored_types(outcome) == {"id": "int64", "x": "double", "b": "bool", "s": "string"}


def test_stored_rows_exclude_exactly_the_bad_rows_in_order(tmp_path: Path) -> None:
    columns = {"id": C(type="integer", nullable=False), "v": C(type="number", min=0)}
    bad = {3, 17, 18, 42, 99}
    lines = ["id,v"]
    for i in range(100):
        lines.append(f"{i},{-1 if i in bad else i / 2}")
    outcome = validate(csv_file(tmp_path, "\n".join(lines) + "\n"), columns, tmp_path)

    assert outcome.report.verdict == "warn"
    assert [r["id"] for r in stored(outcome)] == [i for i in range(100) if i not in bad]
    assert [q.position for q in outcome.quarantined] == [
        f"data.csv:line {i + 2}" for i in sorted(bad)
    ]
    assert [json.loads(q.payload)["id"] for q in outcome.quarantined] == sorted(bad)


def test_long_allowed_lists_and_repeated_keys_keep_source_order(tmp_path: Path) -> None:
    """A long `allowed` list must not reorder rows: the first of a repeated key is the one kept,
    and the stored file and its hash are the same on every run."""
    kinds = [f"k{i}" for i in range(12)]
    lines = ["id,kind"]
    for i in range(30_000):
        lines.append(f"{i % 20_000},{kinds[i % 12] if i % 997 else 'zz'}")
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    columns = {
        "id": ColumnSpec(type="integer", nullable=False),
        "kind": ColumnSpec(type="string", allowed=list(kinds)),
    }
    contract = ContractSpec(key=["id"], max_error_rate=0.9)
    batch = RawBatch(origin="o", file=FileRef(str(path), "csv", "data.csv"))
    first = validate(batch, columns, tmp_path, contract)
    ids = [row["id"] for row in stored(first)]
    assert ids == sorted(ids)  # the first 20,000 rows are kept, in file order
    assert len(ids) == len(set(ids))
    duplicates = [q.position for q in first.quarantined if "key: duplicate in batch" in q.reasons]
    assert duplicates[0] == "data.csv:line 20002"  # id 0 again, 20,001 data lines later
    second = validate(batch, columns, tmp_path, contract)
    assert stored(second) == stored(first)


def test_csv_line_numbers_count_rejected_lines(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("id,x\n1,2\n2,3,9\n3,oops\n4,5\nbad\n5,-1\n")
    columns = {"id": ColumnSpec(type="integer"), "x": ColumnSpec(type="number", min=0)}
    batch = RawBatch(origin="o", file=FileRef(str(path), "csv", "data.csv"))
    outcome = validate(batch, columns, tmp_path, ContractSpec(max_error_rate=0.9))
    assert set(entries(outcome)) == {
        "data.csv:line 3",
        "data.csv:line 4",
        "data.csv:line 6",
        "data.csv:line 7",
    }
    assert entries(outcome)["data.csv:line 7"] == ["x: min"]


def test_csv_lines_of_the_wrong_shape_are_kept_as_read(tmp_path: Path) -> None:
    columns = {"id": C(type="integer"), "x": C(type="number")}
    outcome = validate(csv_file(tmp_path, "id,x\n1,2\n2,3,9\n3,4\n"), columns, tmp_path, LENIENT)
    (entry,) = outcome.quarantined
    assert entry.position == "data.csv:line 3"
    assert entry.payload == "2,3,9"


def test_quoted_csv_fields_keep_their_fields_in_the_payload(tmp_path: Path) -> None:
    columns = {"id": C(type="integer"), "x": C(type="number"), "s": C(type="string")}
    text = 'id,x,s\n1,2,"a, b"\n2,oops,"say ""hi"""\n'
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path, LENIENT)
    (entry,) = outcome.quarantined
    assert json.loads(entry.payload) == {
        "id": "2",
        "x": "oops",
        "s": 'say "hi"',
        "_line": '2,oops,"say ""hi"""',
    }


def test_records_spanning_lines_are_positioned_by_record_number(tmp_path: Path) -> None:
    """A quoted field holding line breaks makes line numbers differ from record numbers:
    positions then name the record (1 = the first after the header), which stays exact."""
    columns = {"id": C(type="integer"), "x": C(type="number", min=0), "s": C(type="string")}
    text = 'id,x,s\n1,2,"a\nb"\n2,oops,c\n3,4,"d\ne\nf"\n4,-1,g\n5,6,h\n'
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path, LENIENT)
    assert entries(outcome) == {
        "data.csv:record 2": [entries(outcome)["data.csv:record 2"][0]],
        "data.csv:record 4": ["x: min"],
    }
    assert entries(outcome)["data.csv:record 2"][0].startswith("x: type (")
    assert [r["id"] for r in stored(outcome)] == [1, 3, 5]


def test_records_on_one_line_each_keep_line_positions_even_with_quotes(tmp_path: Path) -> None:
    columns = {"id": C(type="integer"), "x": C(type="number", min=0), "s": C(type="string")}
    text = 'id,x,s\n1,2,"a"\n2,oops,"c"\n3,-1,"d"\n'
    outcome = validate(csv_file(tmp_path, text), columns, tmp_path, LENIENT)
    assert set(entries(outcome)) == {"data.csv:line 3", "data.csv:line 4"}
