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
        self.typed = {
            name: typed_expression(
                quote(name), self.declared[name], self._text(name), raw.types.get(name, "")
            )
            for name in self.present
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

    @property
    def error_any(self) -> str:
        errors = [f"f{i}" for i, c in enumerate(self.checks) if c.severity == "error"]
        return " OR ".join(errors) or "FALSE"

    def materialize(self) -> None:
        """One scan of the source: every row-level check becomes a flag column of ``checked``;
        then repeats of unique values and keys are flagged in a second, narrow pass."""
        raw = self.raw
        carried = [quote(n) for n in raw.names]
        carried += [quote(ERROR)] if raw.has_error else []
        carried += [quote(PAYLOAD)] if raw.has_payload else []
        carried += [POSITION] if self.batch.table is not None else []
        flags = [
            f"FALSE AS f{i}" if c.partition else f"coalesce({c.sql}, FALSE) AS f{i}"
            for i, c in enumerate(self.checks)
        ]
        flags += [
            f"FALSE AS s{i}" if deferred else f"coalesce({sql}, FALSE) AS s{i}"
            for i, (_, sql, deferred) in enumerate(self.skips)
        ]
        self.con.execute(
            f"CREATE TEMP TABLE checked AS SELECT {', '.join([*carried, *flags])} FROM raw"
        )
        self.parse_failures: list[CheckResult] = []
        if self.batch.file is not None and self.batch.file.format == "csv":
            self.raw = replace(raw, broken=rejected_lines(self.con, self.batch.file.display))
            self.parse_failures = parse_failures(self.con, self.declared)
        for i, check in enumerate(self.checks):
            if check.partition:
                # only values that repeat at all go through the window
                self.con.execute(
                    f"UPDATE checked SET f{i} = TRUE WHERE rowid IN (SELECT rowid FROM checked "
                    f"WHERE ({check.sql}) IN (SELECT ({check.sql}) FROM checked GROUP BY ALL "
                    f"HAVING count(*) > 1) QUALIFY row_number() OVER "
                    f"(PARTITION BY {check.sql} ORDER BY rowid) > 1)"
                )
        for i, (_, sql, deferred) in enumerate(self.skips):
            if deferred:
                self.con.execute(
                    f"UPDATE checked SET s{i} = TRUE WHERE rowid IN "
                    f"(SELECT rowid FROM checked WHERE coalesce({sql}, FALSE))"
                )

    @property
    def position(self) -> str:
        """Positions of table rows as given; of file rows, their row number (0-based), which
        :meth:`_positions` turns into ``file:line N`` (CSV) or ``file:row N``."""
        return POSITION if self.batch.table is not None else "CAST(rowid AS VARCHAR)"

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

    def run(self, workdir: Path) -> Outcome:
        raw = self.raw
        counted = [f"count_if(f{i})" for i in range(len(self.checks))]
        counted += [f"count_if(s{i} AND NOT ({self.error_any}))" for i in range(len(self.skips))]
        counted += [f"count_if({self.error_any})", "count(*)"]
        counts = self.con.execute(f"SELECT {', '.join(counted)} FROM checked").fetchone()
        assert counts is not None
        n_checks = len(self.checks)
        rows_in = int(counts[-1] or 0) + len(raw.broken)
        bad_rows = int(counts[-2] or 0) + len(raw.broken)
        skipped = {
            reason: int(counts[n_checks + i] or 0) for i, (reason, _, _) in enumerate(self.skips)
        }

        results = [*self.parse_failures]
        results += [
            self._result(i, check, int(counts[i] or 0)) for i, check in enumerate(self.checks)
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
            value = self._payload_value(check.column)
            rows = self.con.execute(
                f"SELECT DISTINCT CAST({value} AS VARCHAR) FROM checked WHERE f{index} LIMIT 3"
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
            f"CASE WHEN f{i} THEN {sql_text(c.name)} END"
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
        where = "TRUE" if verdict == "fail" else self.error_any
        rows = self.con.execute(
            f"SELECT {self.position}, {reasons}, {payload} FROM checked "
            f"WHERE {where} ORDER BY rowid"
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
        """A column as it goes into a quarantined row's JSON payload; decimals (CSV integers
        are read as DECIMAL) as exact JSON numbers, without the scale's trailing zeros."""
        column = quote(name)
        if not self.raw.types.get(name, "").startswith("DECIMAL"):
            return column
        return (
            f"CASE WHEN {column} = trunc({column}) THEN to_json(CAST({column} AS HUGEINT)) "
            f"ELSE to_json(CAST({column} AS DOUBLE)) END"
        )

    def _write_stored(self, workdir: Path) -> Path:
        keep = f"NOT ({self.error_any})" + "".join(f" AND NOT s{i}" for i in range(len(self.skips)))
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
