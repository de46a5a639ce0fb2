"""Property: whatever comes in (wrong types, missing or extra columns, NaN/inf, huge strings, bad
UTF-8, empty fields, truncated Parquet, random CSV text), ``validate_batch`` never raises, and
every row in is stored, quarantined or skipped, each quarantined row with a reason."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, FileRef, RawBatch
from decisionloop.data.contract import ColumnSpec, ConsentRule, ContractSpec, OutlierRule
from decisionloop.data.engine import Outcome, Reference, validate_batch

#: examples per property; raise it (DL_PROPERTY_EXAMPLES=500) for a deeper search
EXAMPLES = int(os.environ.get("DL_PROPERTY_EXAMPLES", "30"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NAMES = ["id", "amount", "flag", "kind", "at"]

# --- strategies ------------------------------------------------------------------------------

specs = st.fixed_dictionaries(
    {
        "id": st.sampled_from(
            [ColumnSpec(type="integer", nullable=False), ColumnSpec(type="integer", unique=True)]
        ),
        "amount": st.sampled_from(
            [
                ColumnSpec(type="number"),
                ColumnSpec(type="number", min=0, max=1000),
                ColumnSpec(type="number", outliers=OutlierRule(method="iqr", severity="error")),
            ]
        ),
        "flag": st.sampled_from(
            [ColumnSpec(type="boolean"), ColumnSpec(type="boolean", nullable=False)]
        ),
        "kind": st.sampled_from(
            [
                ColumnSpec(type="string"),
                ColumnSpec(type="string", allowed=["a", "b"]),
                ColumnSpec(type="string", pattern=r"[a-z]+", max_length=5),
            ]
        ),
        "at": st.sampled_from(
            [ColumnSpec(type="datetime"), ColumnSpec(type="datetime", severity="warn")]
        ),
    }
)

contracts = st.builds(
    ContractSpec,
    key=st.sampled_from([[], ["id"], ["id", "kind"]]),
    consent=st.sampled_from([None, ConsentRule(column="flag")]),
    extra_columns=st.sampled_from(["ignore", "warn", "error"]),
    max_error_rate=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    min_rows=st.sampled_from([None, 0, 3]),
    max_rows=st.sampled_from([None, 50]),
)

references = st.builds(
    Reference,
    outlier_bounds=st.sampled_from([{}, {"amount": (0.0, 100.0)}]),
    stored_keys_sql=st.sampled_from(
        [None, "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, kind)"]
    ),
)

huge = st.integers(90_000, 110_000).map(lambda n: "x" * n)
text_cells = st.one_of(
    st.just(""),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "null", "NULL", "true", "no"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["2024-01-01", "2024-13-45", "1970-01-01T00:00:00Z", "a", "b", "abc"]),
    st.text(max_size=12),
    st.text(alphabet=",\"'\n\r;|\\\t ", max_size=6),
)


def cell_strategy(allow_huge: bool) -> st.SearchStrategy[str]:
    return st.one_of(text_cells, huge) if allow_huge else text_cells


def csv_escape(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """A CSV file: a header of declared, missing and extra columns; rows of random width with
    wrong types, NaN/inf, empty fields, quotes, sometimes a huge value or bad UTF-8."""
    header = draw(
        st.lists(st.sampled_from([*NAMES, "extra", "note"]), min_size=1, max_size=7, unique=True)
    )
    allow_huge = draw(st.booleans()) and draw(st.booleans())
    rows = draw(
        st.lists(
            st.lists(cell_strategy(allow_huge), min_size=0, max_size=len(header) + 2),
            min_size=0,
            max_size=12,
        )
    )
    lines = [",".join(header)] + [",".join(csv_escape(c) for c in row) for row in rows]
    data = ("\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))).encode("utf-8", "replace")
    if draw(st.booleans()):
        # bad UTF-8: invalid bytes somewhere after the header
        at = draw(st.integers(min(len(data), len(lines[0].encode()) + 1), len(data)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x82", b"\x00"]))
        data = data[:at] + junk + data[at:]
    return data


def python_value(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            text_cells,
        )
    )


@st.composite
def records(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = st.sampled_from([*NAMES, "extra"])
    count = draw(st.integers(0, 10))
    return [
        {k: python_value(draw) for k in draw(st.lists(keys, max_size=6, unique=True))}
        for _ in range(count)
    ]


@st.composite
def arrow_tables(draw: st.DrawFn) -> pa.Table:
    """A stream batch: text columns (declared, missing, extra), positions, decode errors."""
    names = draw(st.lists(st.sampled_from([*NAMES, "extra"]), min_size=0, max_size=6, unique=True))
    rows = draw(st.integers(0, 10))
    allow_huge = draw(st.booleans()) and draw(st.booleans())
    values = st.one_of(st.none(), cell_strategy(allow_huge))
    data: dict[str, Any] = {
        name: pa.array([draw(values) for _ in range(rows)], pa.string()) for name in names
    }
    data[POSITION] = pa.array([f"topic/0@{i}" for i in range(rows)], pa.string())
    if draw(st.booleans()):
        errors = [draw(st.one_of(st.none(), st.just("bad message"))) for _ in range(rows)]
        data[ERROR] = pa.array(errors, pa.string())
        data[PAYLOAD] = pa.array(
            [draw(st.text(max_size=20)) if e is not None else None for e in errors], pa.string()
        )
    return pa.table(data)


@st.composite
def parquet_bytes(draw: st.DrawFn) -> bytes:
    """A Parquet file of native columns (some of the wrong type), possibly truncated."""
    rows = draw(st.integers(0, 10))
    columns: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*NAMES, "extra"]), max_size=6, unique=True)):
        kind = draw(st.sampled_from(["int", "float", "text", "bool"]))
        if kind == "int":
            strategy: st.SearchStrategy[Any] = st.integers(-(2**63), 2**63 - 1)
            arrow_type = pa.int64()
        elif kind == "float":
            strategy = st.floats(allow_nan=True, allow_infinity=True)
            arrow_type = pa.float64()
        elif kind == "bool":
            strategy = st.booleans()
            arrow_type = pa.bool_()
        else:
            strategy = text_cells
            arrow_type = pa.string()
        columns[name] = pa.array(
            [draw(st.one_of(st.none(), strategy)) for _ in range(rows)], arrow_type
        )
    if not columns:
        columns["extra"] = pa.array([None] * rows, pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    data = buffer.getvalue()
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


# --- the property ----------------------------------------------------------------------------


def check_outcome(batch: RawBatch, outcome: Outcome) -> None:
    report = outcome.report
    assert report.rows_in >= 0
    assert min(report.rows_stored, report.rows_quarantined, report.rows_skipped) >= 0
    assert report.rows_in == report.rows_stored + report.rows_quarantined + report.rows_skipped
    assert report.rows_skipped == sum(report.skipped.values())
    assert report.verdict in ("pass", "warn", "fail")
    for entry in outcome.quarantined:
        assert entry.kind in ("row", "batch")
        assert entry.reasons
        assert all(isinstance(r, str) and r for r in entry.reasons)
        assert len(entry.payload) <= 64 * 1024
    rows = [q for q in outcome.quarantined if q.kind == "row"]
    batches = [q for q in outcome.quarantined if q.kind == "batch"]
    if batches:
        assert batch.file is not None
        assert report.verdict == "fail"
        assert len(batches) == 1
    elif report.verdict != "fail" or batch.table is not None:
        assert len(rows) == report.rows_quarantined
    if report.verdict == "fail":
        assert outcome.stored_path is None
    if outcome.stored_path is None:
        assert report.rows_stored == 0
    else:
        stored = pq.read_table(outcome.stored_path)
        assert stored.num_rows == report.rows_stored > 0
        assert set(stored.column_names) <= set(NAMES)
        json.dumps(report.to_dict())  # the report is recorded as JSON


def run(
    batch: RawBatch, columns: dict[str, ColumnSpec], contract: ContractSpec, reference: Reference
) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        outcome = validate_batch(batch, columns, contract, reference, Path(workdir))
        check_outcome(batch, outcome)


def file_batch(folder: str, data: bytes, suffix: str) -> RawBatch:
    path = Path(folder) / f"input.{suffix}"
    path.write_bytes(data)
    return RawBatch(origin=f"input.{suffix}#x", file=FileRef(str(path), suffix, path.name))  # type: ignore[arg-type]


@PROPERTY
@given(data=csv_bytes(), columns=specs, contract=contracts, reference=references)
def test_generated_csv_files(
    data: bytes, columns: dict[str, ColumnSpec], contract: ContractSpec, reference: Reference
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(file_batch(folder, data, "csv"), columns, contract, reference)


@PROPERTY
@given(data=st.binary(max_size=300), columns=specs, contract=contracts)
def test_random_bytes_as_csv(
    data: bytes, columns: dict[str, ColumnSpec], contract: ContractSpec
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(file_batch(folder, data, "csv"), columns, contract, Reference())


@PROPERTY
@given(
    text=st.text(alphabet=st.sampled_from(list('abc01,;"\n\r\t .-')), max_size=200),
    columns=specs,
    contract=contracts,
)
def test_random_csv_text(text: str, columns: dict[str, ColumnSpec], contract: ContractSpec) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(
            file_batch(folder, ("id,amount\n" + text).encode(), "csv"),
            columns,
            contract,
            Reference(),
        )


@PROPERTY
@given(data=parquet_bytes(), columns=specs, contract=contracts, reference=references)
def test_generated_parquet_files(
    data: bytes, columns: dict[str, ColumnSpec], contract: ContractSpec, reference: Reference
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(file_batch(folder, data, "parquet"), columns, contract, reference)


@PROPERTY
@given(
    content=st.one_of(records().map(json.dumps), st.text(max_size=80)),
    columns=specs,
    contract=contracts,
)
def test_generated_json_files(
    content: str, columns: dict[str, ColumnSpec], contract: ContractSpec
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(file_batch(folder, content.encode(), "json"), columns, contract, Reference())


@PROPERTY
@given(data=arrow_tables(), columns=specs, contract=contracts, reference=references)
def test_generated_stream_batches(
    data: pa.Table, columns: dict[str, ColumnSpec], contract: ContractSpec, reference: Reference
) -> None:
    run(RawBatch(origin="topic/0@0-9", table=data), columns, contract, reference)


def test_nan_and_infinity_never_reach_the_store() -> None:
    """A concrete case of the property, so it fails loudly if NaN slips through."""
    table = pa.table(
        {
            "amount": pa.array(["1", "nan", "inf", "-inf", "2"]),
            POSITION: pa.array([f"p{i}" for i in range(5)]),
        }
    )
    with tempfile.TemporaryDirectory() as workdir:
        outcome = validate_batch(
            RawBatch(origin="o", table=table),
            {"amount": ColumnSpec(type="number")},
            ContractSpec(max_error_rate=1.0),
            Reference(),
            Path(workdir),
        )
        check_outcome(RawBatch(origin="o", table=table), outcome)
        assert outcome.stored_path is not None
        values = pq.read_table(outcome.stored_path).column("amount").to_pylist()
    assert values == [1.0, 2.0]
    assert all(math.isfinite(v) for v in values)
