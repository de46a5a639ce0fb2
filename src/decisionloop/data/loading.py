"""Loading a raw batch into DuckDB: relation ``raw`` over an Arrow table or a file (CSV parsed
straight into the declared types, lines that do not parse kept as rejects with their line)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from decisionloop.backends.metadata.records import NewQuarantine
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, FileRef, RawBatch
from decisionloop.data.checks import DUCKDB_TYPES, sql_text
from decisionloop.data.contract import ColumnSpec
from decisionloop.data.report import CheckResult
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import duckdb

MAX_PAYLOAD = 64 * 1024
RESERVED = {POSITION, ERROR, PAYLOAD, "_rowid"}


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written, as DuckDB's sniffer saw it ('' for none)."""

    delimiter: str
    quote: str
    escape: str
    new_line: str
    comment: str
    skip: int

    def options(self) -> str:
        """The dialect as read_csv options."""
        options = [
            f"delim={sql_text(self.delimiter)}",
            f"quote={sql_text(self.quote)}",
            f"escape={sql_text(self.escape)}",
            f"comment={sql_text(self.comment)}",
            f"skip={self.skip}",
        ]
        if self.new_line:
            options.append(f"new_line={sql_text(self.new_line)}")
        return ", ".join(options)

    def fields(self, line: str) -> list[str] | None:
        """A record's fields as this dialect splits them; None when it does not parse."""
        quoted = bool(self.quote)
        escape = self.escape if self.escape and self.escape != self.quote else None
        try:
            rows = list(
                csv.reader(
                    io.StringIO(line, newline=""),
                    delimiter=self.delimiter or ",",
                    quotechar=self.quote if quoted else None,
                    quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
                    escapechar=escape,
                    doublequote=self.escape in ("", self.quote),
                    strict=True,
                )
            )
        except (csv.Error, TypeError, ValueError):
            return None
        return rows[0] if len(rows) == 1 else None


@dataclass(frozen=True)
class RawRelation:
    #: source column names and their DuckDB types
    names: list[str]
    types: dict[str, str]
    text: bool
    broken: list[NewQuarantine]
    has_error: bool
    has_payload: bool
    #: the dialect of a CSV file
    csv: CsvDialect | None = None


def load(
    con: duckdb.DuckDBPyConnection, batch: RawBatch, columns: dict[str, ColumnSpec]
) -> RawRelation:
    """Name the batch's rows as relation ``raw``. CSV files are parsed straight into the
    declared types by DuckDB's reader; lines that do not parse are kept as rejects."""
    if batch.table is not None:
        con.register("raw", batch.table)
        names = [n for n in batch.table.column_names if n not in RESERVED]
        present = set(batch.table.column_names)
        return RawRelation(names, _types(con), False, [], ERROR in present, PAYLOAD in present)
    assert batch.file is not None
    path = sql_text(batch.file.local_path)
    if batch.file.format == "csv":
        names, dialect = _sniff(con, path)
        declared = {n: _duckdb_type(columns.get(n)) for n in names}
        types = ", ".join(f"{sql_text(n)}: {sql_text(t)}" for n, t in declared.items())
        con.execute(
            f"CREATE TEMP VIEW raw AS SELECT * FROM read_csv({path}, {dialect.options()}, "
            f"header=true, auto_detect=false, columns={{{types}}}, store_rejects=true)"
        )
        # the reader's types are the declared ones (no second sniff of the file to ask)
        return RawRelation(names, declared, False, [], False, False, dialect)
    reader = (
        f"read_parquet({path}, hive_partitioning=false)"
        if batch.file.format == "parquet"
        else f"read_json({path}, format='array')"
    )
    con.execute(f"CREATE TEMP VIEW raw AS SELECT * FROM {reader}")
    names = [row[0] for row in con.execute("DESCRIBE raw").fetchall() if row[0] not in RESERVED]
    return RawRelation(names, _types(con), False, [], False, False)


def _sniff(con: duckdb.DuckDBPyConnection, path: str) -> tuple[list[str], CsvDialect]:
    """A CSV file's column names and its dialect, sniffed once (each query over an
    auto-detecting reader would sniff the file again).

    ignore_errors: a malformed line must not make the sniffer give up on the delimiter (it
    would read the header as one column); such lines are rejects of the read itself."""
    row = con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns "
        f"FROM sniff_csv({path}, header=true, all_varchar=true, ignore_errors=true)"
    ).fetchone()
    assert row is not None
    delimiter, quote, escape, new_line, comment = (
        "" if value == "(empty)" else str(value) for value in row[:5]
    )
    dialect = CsvDialect(delimiter, quote, escape, new_line, comment, skip=int(row[5]))
    return [str(column["name"]) for column in row[6]], dialect


#: CSV integers are read as text: DuckDB's reader would round "4.5" to 5 in a BIGINT column, and
#: an exact DECIMAL(38,18) costs more than text; checks.typed_expression converts the text
#: exactly (a fractional or out-of-range value fails the column's type check)
CSV_INTEGER = "VARCHAR"


def _duckdb_type(spec: ColumnSpec | None) -> str:
    if spec is None:
        return "VARCHAR"
    return CSV_INTEGER if spec.type == "integer" else DUCKDB_TYPES[spec.type]


def _types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in con.execute("DESCRIBE raw").fetchall()}


def file_columns(ref: FileRef) -> list[str]:
    """The column names of a data file, read from its header or schema."""
    import duckdb

    path = sql_text(ref.local_path)
    readers = {
        "csv": f"read_csv({path}, header=true, all_varchar=true, ignore_errors=true)",
        "parquet": f"read_parquet({path}, hive_partitioning=false)",
        "json": f"read_json({path}, format='array')",
    }
    try:
        with duckdb.connect() as con:
            rows = con.execute(f"DESCRIBE SELECT * FROM {readers[ref.format]}").fetchall()
    except (duckdb.Error, UnicodeDecodeError) as exc:
        raise Invalid(
            f"cannot read {ref.format} file {ref.display}: {str(exc).splitlines()[0][:200]}",
            hint=f"check that the file is a valid, uncorrupted {ref.format} file",
        ) from exc
    return [str(row[0]) for row in rows]


def rejected_lines(
    con: duckdb.DuckDBPyConnection, display: str, raw: RawRelation
) -> list[NewQuarantine]:
    """CSV lines that did not parse (wrong shape, or a value not of its column's type), one
    entry per line with every problem DuckDB saw.

    A line with the header's number of fields is kept as a JSON object of its fields as text
    plus ``_line``, the line as read, so a replay can validate it again like any row; a line of
    the wrong shape is kept as read."""
    rows = con.execute(
        "SELECT line, list(DISTINCT CASE WHEN error_type = 'CAST' THEN column_name || ': type ('"
        " || error_message || ')' ELSE 'malformed line: ' || lower(CAST(error_type AS VARCHAR))"
        " || ' (' || error_message || ')' END), any_value(csv_line) FROM reject_errors"
        " GROUP BY line ORDER BY line"
    ).fetchall()
    return [
        NewQuarantine(
            kind="row",
            position=f"{display}:line {line}",
            reasons=sorted(problems),
            payload=_line_payload(str(csv_line), raw)[:MAX_PAYLOAD],
        )
        for line, problems, csv_line in rows
    ]


def _line_payload(line: str, raw: RawRelation) -> str:
    fields = raw.csv.fields(line) if raw.csv is not None else None
    if fields is None or len(fields) != len(raw.names):
        return line
    return json.dumps({**dict(zip(raw.names, fields, strict=True)), "_line": line})


def parse_failures(
    con: duckdb.DuckDBPyConnection, declared: dict[str, ColumnSpec]
) -> list[CheckResult]:
    """Per column, the CSV values its declared type could not parse (their lines are rejects)."""
    rows = con.execute(
        "SELECT column_name, count(DISTINCT line), list(DISTINCT regexp_extract(error_message,"
        " 'string \"(.*)\" to', 1))[1:3] FROM reject_errors WHERE error_type = 'CAST'"
        " GROUP BY column_name ORDER BY column_name"
    ).fetchall()
    results = [
        CheckResult(
            f"{column}: type",
            str(column),
            declared[column].severity if column in declared else "error",
            int(count),
            [repr(value) for value in examples],
        )
        for column, count, examples in rows
    ]
    # lines of the wrong shape (too many or too few columns, broken quoting) are quarantined
    # too, so the report counts them: a warn verdict must name what failed
    shape = con.execute(
        "SELECT count(DISTINCT line), list(DISTINCT csv_line)[1:3] FROM reject_errors"
        " WHERE error_type <> 'CAST'"
    ).fetchone()
    if shape is not None and shape[0]:
        examples = [repr(str(line)[:100]) for line in shape[1]]
        results.append(CheckResult("malformed line", None, "error", int(shape[0]), examples))
    return results
