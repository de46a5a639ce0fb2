"""The validation engine: DuckDB turns a raw batch into stored rows, quarantined rows with
their reasons, skipped rows with theirs, and a report. Nothing is dropped silently.

One table scan evaluates every check (vectorized, multi-threaded); the stored rows are then
written to Parquet with their declared types and the quarantined ones fetched with reasons.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.backends.metadata.records import NewQuarantine
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch
from decisionloop.data.checks import (
    Check,
    column_checks,
    key_check,
    quote,
    sql_text,
    typed_expression,
)
from decisionloop.data.contract import ColumnSpec, ContractSpec
from decisionloop.data.loading import (
    MAX_PAYLOAD,
    RawRelation,
    file_columns,
    load,
    parse_failures,
    rejected_lines,
)
from decisionloop.data.report import BatchReport, CheckResult, Verdict

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "SKIP_CONSENT",
    "SKIP_DUPLICATE",
    "Outcome",
    "Reference",
    "file_columns",
    "validate_batch",
]

#: why rows are skipped (kept out of the snapshot on purpose, and counted)
SKIP_DUPLICATE = "duplicate of a stored record"
SKIP_CONSENT = "no consent for training"


@dataclass(frozen=True)
class Reference:
    """What validation knows beyond the batch: learned outlier bounds, a SQL relation of the
    keys already stored (for de-duplication), and one of the entities that consented."""

    outlier_bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    stored_keys_sql: str | None = None
    consent_sql: str | None = None


@dataclass(frozen=True)
class Outcome:
    report: BatchReport
    quarantined: list[NewQuarantine]
    #: Parquet file of the stored rows with their declared types; None when nothing is stored
    stored_path: Path | None
    columns: dict[str, ColumnSpec]


def validate_batch(
    batch: RawBatch,
    columns: dict[str, ColumnSpec],
    contract: ContractSpec,
    reference: Reference,
    workdir: Path,
) -> Outcome:
    """Validate ``batch`` against the contract and split its rows.

    Rows failing an ``error`` check are quarantined with every reason; ``warn`` checks are
    counted. A ``fail`` verdict stores nothing: a file is quarantined whole (one entry naming
    it, since the file itself is kept), a stream's rows one by one.
    """
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    try:
        try:
            raw = load(con, batch, columns)
            validation = _Validation(con, batch, raw, columns, contract, reference, started)
            validation.materialize()
        except (duckdb.Error, UnicodeDecodeError) as exc:
            # UnicodeDecodeError: DuckDB quotes a file's bad bytes in its error message
            return _unreadable(batch, exc, started)
        return validation.run(workdir)
    finally:
        con.close()


def _unreadable(batch: RawBatch, exc: Exception, started: float) -> Outcome:
    kind = batch.file.format if batch.file else "batch"
    reason = f"unreadable {kind} file: {str(exc).splitlines()[0][:300]}"
    check = CheckResult("readable", None, "error", 1, [], reason)
    report = BatchReport(
        batch.origin, "fail", 1, 0, 1, 0, [check], seconds=time.perf_counter() - started
    )
    entry = NewQuarantine(
        kind="batch",
        position=batch.origin,
        reasons=[reason],
        payload=json.dumps({"origin": batch.origin}),
    )
    return Outcome(report, [entry], None, {})


class _Validation:
    """One batch's plan: typed expressions, row checks, skip rules, batch-level checks."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: RawBatch,
        raw: RawRelation,
        columns: dict[str, ColumnSpec],
        contract: ContractSpec,
        reference: Reference,
        started: float,
    ) -> None:
        self.con, self.batch, self.raw, self.contract = con, batch, raw, contract
        self.started = started
        self.declared = columns or {name: ColumnSpec(type="string") for name in raw.names}
        self.present = [name for name in self.declared if name in raw.names]
        #: each column's typed value as an expression over the raw one, computed once per row
        #: into column ``_dl_t<j>`` (see materialize) when it is not the raw column itself
        self.conversions = {
            name: typed_expression(
                quote(name), self.declared[name], self._text(name), raw.types.get(name, "")
            )
            for name in self.present
        }
        #: what checks, keys and the stored rows read: the typed value's column
        self.typed = {
            name: quote(name) if expression == quote(name) else f"_dl_t{j}"
            for j, (name, expression) in enumerate(self.conversions.items())
        }
        self.checks: list[Check] = []
        for name in self.present:
            self.checks += column_checks(
                name,
                self.declared[name],
                quote(name),
                self._text(name),
                reference.outlier_bounds.get(name),
                raw.types.get(name, ""),
                typed=self.typed[name],
            )
        self.key_ok = all(k in self.typed for k in contract.key)
        duplicate = key_check(contract, self.typed) if self.key_ok else None
        if duplicate is not None:
            self.checks.append(duplicate)
        if raw.has_error:
            self.checks.append(Check("decode", None, "error", f"({quote(ERROR)} IS NOT NULL)"))
        self.skips = self._skip_rules(reference)
        self.batch_checks = self._column_set_checks(columns)

    def _text(self, name: str) -> bool:
        return self.raw.types.get(name) == "VARCHAR"

    def _skip_rules(self, reference: Reference) -> list[tuple[str, str, bool]]:
        """(reason, SQL, deferred): rules with a subquery run as a second pass, since a join
        in the first scan would not keep the rows in source order."""
        rules: list[tuple[str, str, bool]] = []
        key = self.contract.key
        if reference.stored_keys_sql and key and self.key_ok:
            mine = ", ".join(self.typed[k] for k in key)
            theirs = ", ".join(quote(k) for k in key)
            rules.append(
                (
                    SKIP_DUPLICATE,
                    f"(({mine}) IN (SELECT ({theirs}) FROM ({reference.stored_keys_sql})))",
                    True,
                )
            )
        consent = self.contract.consent
        if consent is not None and consent.column is not None and consent.column in self.typed:
            flag = f"TRY_CAST({self.typed[consent.column]} AS BOOLEAN)"
            rules.append((SKIP_CONSENT, f"(NOT coalesce({flag}, FALSE))", False))
        elif consent is not None and reference.consent_sql and key and key[0] in self.typed:
            entity = f"CAST({self.typed[key[0]]} AS VARCHAR)"
            # NOT IN is NULL (not skipped) for a NULL entity or when the table holds a NULL:
            # without a recorded consent the row is skipped
            consented = f"{entity} IN (SELECT entity FROM ({reference.consent_sql}))"
            rules.append((SKIP_CONSENT, f"(NOT coalesce({consented}, FALSE))", True))
        return rules

    def _column_set_checks(self, columns: dict[str, ColumnSpec]) -> list[CheckResult]:
        results = []
        missing = [name for name in self.declared if name not in self.raw.names]
        if missing:
            detail = f"missing column(s): {', '.join(missing)}"
            results.append(CheckResult("columns: missing", None, "error", 1, missing[:5], detail))
        extra = [name for name in self.raw.names if name not in self.declared]
        if extra and columns and self.contract.extra_columns != "ignore":
            severity = "error" if self.contract.extra_columns == "error" else "warn"
            detail = f"undeclared column(s): {', '.join(extra)}"
            results.append(CheckResult("columns: extra", None, severity, 1, extra[:5], detail))
        if not self.key_ok:
            lacking = [k for k in self.contract.key if k not in self.typed]
            detail = f"key column(s) missing: {', '.join(lacking)}"
            results.append(CheckResult("key: columns", None, "error", 1, lacking, detail))
        return results

    def _flag(self, index: int) -> str:
        return f"_dl_f{index}"

    def _kept_in_checked(self, check: Check) -> bool:
        """Flags ``checked`` holds for every row: warnings (counted over all rows) and repeats
        (set by the second pass). Error flags exist only in ``flagged``, the failing rows."""
        return check.partition or check.severity != "error"

    def materialize(self) -> None:
        """One scan of the source into ``checked``: the source columns, one ``_dl_bad`` flag
        (any error-level row check failed), a flag per warning and skip rule, and the typed
        values of unique columns and keys; then repeats of those are flagged in a second,
        narrow pass. Per-check error flags are computed afterwards on the failing rows only."""
        raw = self.raw
        carried = [quote(n) for n in raw.names]
        carried += [quote(ERROR)] if raw.has_error else []
        carried += [quote(PAYLOAD)] if raw.has_payload else []
        carried += [POSITION] if self.batch.table is not None else []
        errors = [c.sql for c in self.checks if c.severity == "error" and not c.partition]
        flags = [f"coalesce({' OR '.join(errors) or 'FALSE'}, FALSE) AS _dl_bad"]
        for i, check in enumerate(self.checks):
            if check.partition:
                flags += [f"FALSE AS {self._flag(i)}", f"({check.sql}) AS _dl_p{i}"]
            elif check.severity != "error":
                flags.append(f"coalesce({check.sql}, FALSE) AS {self._flag(i)}")
        flags += [
            f"FALSE AS _dl_s{i}" if deferred else f"coalesce({sql}, FALSE) AS _dl_s{i}"
            for i, (_, sql, deferred) in enumerate(self.skips)
        ]
        # typed values are computed once, in an inner projection, and read by every check,
        # the keys and the stored rows
        converted = [
            f"{self.conversions[n]} AS {self.typed[n]}"
            for n in self.present
            if self.typed[n] != quote(n)
        ]
        carried += [self.typed[n] for n in self.present if self.typed[n] != quote(n)]
        source = f"(SELECT *, {', '.join(converted)} FROM raw)" if converted else "raw"
        self.con.execute(
            f"CREATE TEMP TABLE checked AS SELECT {', '.join([*carried, *flags])} FROM {source}"
        )
        self.parse_failures: list[CheckResult] = []
        if self.batch.file is not None and self.batch.file.format == "csv":
            self.raw = replace(raw, broken=rejected_lines(self.con, self.batch.file.display, raw))
            self.parse_failures = parse_failures(self.con, self.declared)
        for i, check in enumerate(self.checks):
            if check.partition:
                # only values that repeat at all go through the window
                bad = ", _dl_bad = TRUE" if check.severity == "error" else ""
                self.con.execute(
                    f"UPDATE checked SET {self._flag(i)} = TRUE{bad} WHERE rowid IN (SELECT "
                    f"rowid FROM checked WHERE _dl_p{i} IN (SELECT _dl_p{i} FROM checked "
                    f"GROUP BY ALL HAVING count(*) > 1) QUALIFY row_number() OVER "
                    f"(PARTITION BY _dl_p{i} ORDER BY rowid) > 1)"
                )
        for i, (_, sql, deferred) in enumerate(self.skips):
            if deferred:
                self.con.execute(
                    f"UPDATE checked SET _dl_s{i} = TRUE WHERE rowid IN "
                    f"(SELECT rowid FROM checked WHERE coalesce({sql}, FALSE))"
                )
        self._flag_rows("_dl_bad")

    def _flag_rows(self, where: str) -> None:
        """``flagged``: the rows of ``checked`` matching ``where`` with every check's flag."""
        carried = [quote(n) for n in self.raw.names]
        carried += [quote(ERROR)] if self.raw.has_error else []
        carried += [quote(PAYLOAD)] if self.raw.has_payload else []
        carried += [POSITION] if self.batch.table is not None else []
        carried += [self.typed[n] for n in self.present if self.typed[n] != quote(n)]
        flags = [
            self._flag(i)
            if self._kept_in_checked(check)
            else f"coalesce({check.sql}, FALSE) AS {self._flag(i)}"
            for i, check in enumerate(self.checks)
        ]
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE flagged AS SELECT rowid AS _dl_rid, "
            f"{', '.join([*carried, *flags])} FROM checked WHERE {where}"
        )

    @property
    def position(self) -> str:
        """In ``flagged``: positions of table rows as given; of file rows, their row number
        (0-based) in the source, which
        :meth:`_positions` turns into ``file:line N`` (CSV) or ``file:row N``."""
        return POSITION if self.batch.table is not None else "CAST(_dl_rid AS VARCHAR)"

    def _positions(self, values: list[str]) -> list[str]:
        if self.batch.file is None:
            return values
        display = self.batch.file.display
        if self.batch.file.format != "csv":
            return [f"{display}:row {int(v) + 1}" for v in values]
        # parsed rows are numbered without the lines the reader rejected; put those back
        # (line 1 is the header; one record per line)
        rejected = sorted(int(b.position.rsplit(" ", 1)[1]) for b in self.raw.broken)
        positions, skipped = [], 0
        for value in values:
            line = int(value) + 2 + skipped
            while skipped < len(rejected) and rejected[skipped] <= line:
                skipped += 1
                line += 1
            positions.append(f"{display}:line {line}")
        return positions

    def _records_span_lines(self, rows_in: int) -> bool:
        """Whether the CSV file has more lines than records (quoted fields holding line
        breaks, blank or comment lines): its ``line N`` positions, which count records as
        DuckDB's reader does, would then not match an editor's line numbers."""
        dialect = self.raw.csv
        if self.batch.file is None or dialect is None or not dialect.quote:
            return False  # without quoting, a record cannot span lines
        lines, last = 0, b"\n"
        with open(self.batch.file.local_path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"
        return lines > 1 + dialect.skip + rows_in

    def run(self, workdir: Path) -> Outcome:
        raw = self.raw
        kept = [i for i, c in enumerate(self.checks) if self._kept_in_checked(c)]
        counted = [f"count_if({self._flag(i)})" for i in kept]
        counted += [f"count_if(_dl_s{i} AND NOT _dl_bad)" for i in range(len(self.skips))]
        counted += ["count_if(_dl_bad)", "count(*)"]
        counts = self.con.execute(f"SELECT {', '.join(counted)} FROM checked").fetchone()
        assert counts is not None
        failed = dict(zip(kept, counts, strict=False))
        others = [i for i in range(len(self.checks)) if i not in failed]
        if others:
            # error checks: counted on the failing rows only
            flagged = self.con.execute(
                f"SELECT {', '.join(f'count_if({self._flag(i)})' for i in others)} FROM flagged"
            ).fetchone()
            assert flagged is not None
            failed.update(zip(others, flagged, strict=True))
        rows_in = int(counts[-1] or 0) + len(raw.broken)
        bad_rows = int(counts[-2] or 0) + len(raw.broken)
        skipped = {
            reason: int(counts[len(kept) + i] or 0) for i, (reason, _, _) in enumerate(self.skips)
        }

        results = [*self.parse_failures]
        results += [
            self._result(i, check, int(failed[i] or 0)) for i, check in enumerate(self.checks)
        ]
        batch_level = [*self.batch_checks, *self._dataset_checks(rows_in)]
        bad_share = bad_rows / rows_in if rows_in else 0.0
        if rows_in and bad_share > self.contract.max_error_rate:
            detail = (
                f"{bad_share:.1%} of rows failed, above max_error_rate "
                f"{self.contract.max_error_rate:.0%}"
            )
            batch_level.append(CheckResult("error rate", None, "error", bad_rows, [], detail))
        results += batch_level
        verdict: Verdict = "pass"
        if (
            rows_in == 0
            or bad_rows == rows_in
            or any(c.failed and c.severity == "error" for c in batch_level)
        ):
            verdict = "fail"
        elif bad_rows or any(c.failed for c in results):
            verdict = "warn"

        if verdict == "fail" and self.batch.file is not None:
            reasons = [
                c.detail or f"{c.check}: {c.failed} rows"
                for c in results
                if c.failed and c.severity == "error"
            ]
            entry = NewQuarantine(
                kind="batch",
                position=self.batch.origin,
                reasons=reasons or ["batch rejected"],
                payload=json.dumps({"origin": self.batch.origin}),
            )
            return Outcome(
                self._report(verdict, rows_in, 0, rows_in, {}, results), [entry], None, {}
            )

        quarantined = [*raw.broken, *self._quarantined_rows(verdict, results)]
        if quarantined and self._records_span_lines(rows_in):
            quarantined = [_as_record(q) for q in quarantined]
        if verdict == "fail":
            report = self._report(verdict, rows_in, 0, rows_in, {}, results)
            return Outcome(report, quarantined, None, {})
        stored = rows_in - len(quarantined) - sum(skipped.values())
        path = self._write_stored(workdir) if stored else None
        report = self._report(verdict, rows_in, stored, len(quarantined), skipped, results)
        return Outcome(report, quarantined, path, {n: self.declared[n] for n in self.present})

    def _result(self, index: int, check: Check, failed: int) -> CheckResult:
        examples: list[str] = []
        if failed and check.column is not None:
            value = self._example_value(check.column)
            table = "flagged" if check.severity == "error" else "checked"
            rows = self.con.execute(
                f"SELECT DISTINCT CAST({value} AS VARCHAR) FROM {table} "
                f"WHERE {self._flag(index)} LIMIT 3"
            ).fetchall()
            examples = [repr(row[0]) for row in rows]
        return CheckResult(check.name, check.column, check.severity, failed, examples)

    def _report(
        self,
        verdict: Verdict,
        rows_in: int,
        stored: int,
        quarantined: int,
        skipped: dict[str, int],
        results: list[CheckResult],
    ) -> BatchReport:
        return BatchReport(
            origin=self.batch.origin,
            verdict=verdict,
            rows_in=rows_in,
            rows_stored=stored,
            rows_quarantined=quarantined,
            rows_skipped=sum(skipped.values()),
            checks=results,
            skipped={reason: count for reason, count in skipped.items() if count},
            seconds=time.perf_counter() - self.started,
        )

    def _quarantined_rows(
        self, verdict: Verdict, results: list[CheckResult]
    ) -> list[NewQuarantine]:
        items = [
            f"CASE WHEN {self._flag(i)} THEN {sql_text(c.name)} END"
            for i, c in enumerate(self.checks)
            if c.severity == "error" and c.name != "decode"
        ]
        if self.raw.has_error:
            items.append(
                f"CASE WHEN {quote(ERROR)} IS NOT NULL THEN 'decode: ' || {quote(ERROR)} END"
            )
        reasons = f"list_filter([{', '.join(items)}], lambda x: x IS NOT NULL)" if items else "[]"
        fields = ", ".join(f"{quote(n)} := {self._payload_value(n)}" for n in self.raw.names)
        payload = f"to_json(struct_pack({fields}))::VARCHAR" if fields else "'{}'"
        if self.raw.has_payload:
            payload = f"coalesce({quote(PAYLOAD)}, {payload})"
        if verdict == "fail":
            self._flag_rows("TRUE")  # a failing stream batch is quarantined whole
        rows = self.con.execute(
            f"SELECT {self.position}, {reasons}, {payload} FROM flagged ORDER BY _dl_rid"
        ).fetchall()
        rejected = "batch rejected: " + "; ".join(
            c.detail or c.check for c in results if c.failed and c.severity == "error"
        )
        positions = self._positions([str(row[0]) for row in rows])
        return [
            NewQuarantine(
                kind="row",
                position=position,
                reasons=list(row_reasons) or [rejected],
                payload=str(body)[:MAX_PAYLOAD],
            )
            for position, (_, row_reasons, body) in zip(positions, rows, strict=True)
        ]

    def _payload_value(self, name: str) -> str:
        """A column as it goes into a quarantined row's JSON payload. Numbers stay exact JSON
        numbers: decimals without their scale's trailing zeros, and a CSV integer column's text
        (see loading.CSV_INTEGER) as the number it spells, or as text when it spells none."""
        column = quote(name)
        source_type = self.raw.types.get(name, "")
        if source_type.startswith("DECIMAL"):
            return (
                f"CASE WHEN {column} = trunc({column}) THEN to_json(CAST({column} AS HUGEINT)) "
                f"ELSE to_json(CAST({column} AS DOUBLE)) END"
            )
        spec = self.declared.get(name)
        csv = self.batch.file is not None and self.batch.file.format == "csv"
        if not (csv and source_type == "VARCHAR" and spec is not None and spec.type == "integer"):
            return column
        number = f"TRY_CAST({column} AS DOUBLE)"
        return (
            f"CASE WHEN {self.typed[name]} IS NOT NULL THEN to_json({self.typed[name]}) "
            f"WHEN isfinite({number}) THEN to_json({number}) ELSE to_json({column}) END"
        )

    def _example_value(self, name: str) -> str:
        """A failing value as the report shows it: as written for text columns."""
        if self.raw.types.get(name) == "VARCHAR":
            return quote(name)
        return self._payload_value(name)

    def _write_stored(self, workdir: Path) -> Path:
        keep = "NOT _dl_bad" + "".join(f" AND NOT _dl_s{i}" for i in range(len(self.skips)))
        select = ", ".join(f"{self.typed[n]} AS {quote(n)}" for n in self.present)
        path = workdir / f"batch-{time.time_ns()}.parquet"
        self.con.execute(
            f"COPY (SELECT {select} FROM checked WHERE {keep}) "
            f"TO {sql_text(str(path))} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        )
        return path

    def _dataset_checks(self, rows_in: int) -> list[CheckResult]:
        contract = self.contract
        results: list[CheckResult] = []
        if contract.min_rows is not None and rows_in < contract.min_rows:
            detail = f"{rows_in} rows, fewer than min_rows {contract.min_rows}"
            results.append(CheckResult("rows: min", None, "error", 1, [], detail))
        if contract.max_rows is not None and rows_in > contract.max_rows:
            detail = f"{rows_in} rows, more than max_rows {contract.max_rows}"
            results.append(CheckResult("rows: max", None, "error", 1, [], detail))
        rule = contract.freshness
        if rule is None:
            return results
        if rule.column not in self.typed:
            detail = f"no column {rule.column!r}"
            results.append(CheckResult("freshness", rule.column, rule.severity, 1, [], detail))
            return results
        newest = self.con.execute(
            f"SELECT max(TRY_CAST({self.typed[rule.column]} AS TIMESTAMPTZ)) FROM checked"
        ).fetchone()
        value: Any = newest[0] if newest else None
        if value is None:
            results.append(
                CheckResult("freshness", rule.column, rule.severity, 1, [], "no event timestamps")
            )
            return results
        age = (datetime.now(UTC) - value.astimezone(UTC)).total_seconds() / 3600
        detail = f"newest event {age:.1f} h old (max {rule.max_age_hours:g} h)"
        failed = int(age > rule.max_age_hours)
        results.append(
            CheckResult("freshness", rule.column, rule.severity, failed, [str(value)], detail)
        )
        return results


def _as_record(entry: NewQuarantine) -> NewQuarantine:
    """``file:line N`` (records counted from the header, line 1) as ``file:record N-1``."""
    where, _, number = entry.position.rpartition(":line ")
    if not where or not number.isdigit():
        return entry
    return replace(entry, position=f"{where}:record {int(number) - 1}")
