"""Ingestion: a raw batch becomes a validated, stored, quarantined and recorded batch, and a
new snapshot of its data set. Every row in ends stored, quarantined or skipped, with a reason."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from decisionloop.backends.metadata.records import (
    Batch,
    NewBatch,
    NewQuarantine,
    NewSnapshot,
    Snapshot,
)
from decisionloop.data.batches import RawBatch
from decisionloop.data.checks import quote, sql_text
from decisionloop.data.contract import ColumnSpec, ContractSpec
from decisionloop.data.engine import Outcome, Reference, validate_batch
from decisionloop.data.offline import local_files, manifest_bytes, snapshot_hash, store_batch_file
from decisionloop.data.report import BatchReport
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import pyarrow as pa

    from decisionloop.platform import Platform

Mode = Literal["replace", "append"]


@dataclass(frozen=True)
class Ingested:
    """What became of one batch."""

    batch: Batch
    report: BatchReport
    snapshot: Snapshot | None

    def to_dict(self) -> dict[str, object]:
        return {
            "batch_id": self.batch.id,
            "origin": self.batch.origin,
            "verdict": self.report.verdict,
            "rows_in": self.report.rows_in,
            "rows_stored": self.report.rows_stored,
            "rows_quarantined": self.report.rows_quarantined,
            "rows_skipped": self.report.rows_skipped,
            "snapshot_id": self.snapshot.id if self.snapshot else None,
            "snapshot_hash": self.snapshot.content_hash if self.snapshot else None,
        }


def latest_snapshot(platform: Platform, dataset: str) -> Snapshot | None:
    """The current snapshot: the one the last batch made (or the newest, for data sets whose
    snapshots were recorded without batches)."""
    current = platform.metadata.ingestion.current_snapshot_id(dataset)
    if current is not None:
        return platform.metadata.datasets.get_snapshot(current)
    found = platform.metadata.datasets.list_snapshots(dataset, limit=1)
    return found[0] if found else None


def _reference(
    platform: Platform,
    previous: Snapshot | None,
    columns: dict[str, ColumnSpec],
    contract: ContractSpec,
    mode: Mode,
) -> Reference:
    """Outlier bounds learned from the previous snapshot, its keys (for de-duplication when
    appending), and the consenting entities."""
    import duckdb

    bounds: dict[str, tuple[float, float]] = {}
    stored_keys = None
    if previous is not None:
        paths = local_files(platform.artifacts, previous, platform.settings.state_dir / "cache")
        listing = "[" + ", ".join(sql_text(p) for p in paths) + "]"
        relation = f"read_parquet({listing}, union_by_name=true, hive_partitioning=false)"
        stored = set(previous.columns)
        learned = [
            (name, spec)
            for name, spec in columns.items()
            if spec.outliers is not None and name in stored and spec.type in ("integer", "number")
        ]
        if learned:
            with duckdb.connect() as con:
                for name, spec in learned:
                    bounds[name] = _robust_bounds(con, relation, name, spec)
        if mode == "append" and contract.key and all(k in stored for k in contract.key):
            stored_keys = f"SELECT {', '.join(quote(k) for k in contract.key)} FROM {relation}"
    consent_sql = None
    rule = contract.consent
    if rule is not None and rule.table is not None:
        table = platform.settings.project_dir / rule.table
        if not table.exists():
            raise Invalid(
                f"consent table not found: {table}", hint="fix data.contract.consent.table"
            )
        reader = (
            f"read_parquet({sql_text(str(table))})"
            if table.suffix == ".parquet"
            else f"read_csv({sql_text(str(table))}, header=true)"
        )
        consent_sql = (
            f"SELECT CAST(entity AS VARCHAR) AS entity FROM {reader} "
            f"WHERE purpose = {sql_text(rule.purpose)} "
            # "at" quoted: AT is a keyword in DuckDB's grammar (AT TIME ZONE)
            'QUALIFY row_number() OVER (PARTITION BY entity ORDER BY "at" DESC) = 1 AND '
            "coalesce(TRY_CAST(granted AS BOOLEAN), FALSE)"
        )
    return Reference(outlier_bounds=bounds, stored_keys_sql=stored_keys, consent_sql=consent_sql)


def _robust_bounds(con: object, relation: str, name: str, spec: ColumnSpec) -> tuple[float, float]:
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    assert spec.outliers is not None
    column = quote(name)
    if spec.outliers.method == "iqr":
        row = con.execute(
            f"SELECT quantile_cont({column}, 0.25), quantile_cont({column}, 0.75) FROM {relation}"
        ).fetchone()
        assert row is not None
        q1, q3 = float(row[0]), float(row[1])
        spread = (q3 - q1) * spec.outliers.factor
        return q1 - spread, q3 + spread
    row = con.execute(f"SELECT median({column}), mad({column}) FROM {relation}").fetchone()
    assert row is not None
    center, mad = float(row[0]), float(row[1])
    spread = spec.outliers.factor * 1.4826 * mad
    return center - spread, center + spread


def ingest_batch(
    platform: Platform,
    dataset: str,
    batch: RawBatch,
    *,
    columns: dict[str, ColumnSpec],
    contract: ContractSpec,
    mode: Mode = "append",
    strict: bool = False,
    replayed: list[int] | None = None,
    inspect: Callable[[pa.Table], None] | None = None,
) -> Ingested:
    """Validate, store and record one batch, then acknowledge it to its source.

    ``strict`` refuses a failing batch with :class:`Invalid` before anything is written (for
    files that stay where they are, such as the training file of ``decisionloop run``);
    ``inspect`` sees the rows about to be stored and may refuse them the same way.
    """
    previous = latest_snapshot(platform, dataset)
    reference = _reference(platform, previous, columns, contract, mode)
    # beside the state, so the stored file can be moved into a local artifact store
    scratch = platform.settings.state_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=scratch))
    try:
        outcome = validate_batch(batch, columns, contract, reference, workdir)
        report = outcome.report
        if strict and report.verdict == "fail":
            raise Invalid(
                f"the data failed validation: {report.summary()}",
                hint="fix the data or the contract (data.columns, data.contract)",
            )
        if inspect is not None:
            import pyarrow.parquet as pq

            empty = outcome.stored_path is None
            inspect(pq.read_table(outcome.stored_path) if not empty else _empty(outcome))
        ingested = _record(platform, dataset, batch, outcome, previous, mode, replayed or [])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    batch.acknowledge()
    return ingested


def _empty(outcome: Outcome) -> pa.Table:
    import pyarrow as pa

    return pa.table({name: pa.array([], type=pa.string()) for name in outcome.columns})


def _record(
    platform: Platform,
    dataset: str,
    batch: RawBatch,
    outcome: Outcome,
    previous: Snapshot | None,
    mode: Mode,
    replayed: list[int],
) -> Ingested:
    report = outcome.report
    quarantined = outcome.quarantined
    if batch.table is not None and quarantined and not replayed:
        # a stream re-delivered after a crash: its bad rows are quarantined once (a replay
        # re-reads quarantined positions on purpose: what still fails is quarantined anew)
        seen = platform.metadata.ingestion.quarantined_positions(
            dataset, [q.position for q in quarantined if q.kind == "row"]
        )
        if seen:
            quarantined = [q for q in quarantined if q.position not in seen]
            skipped = {
                **report.skipped,
                SKIP_QUARANTINED: report.skipped.get(SKIP_QUARANTINED, 0) + len(seen),
            }
            report = replace(
                report,
                rows_quarantined=len(quarantined),
                rows_skipped=report.rows_skipped + len(seen),
                skipped=skipped,
            )
    if any(q.kind == "batch" for q in quarantined) and batch.file is not None:
        # keep the rejected file itself, so a replay reads exactly what came in
        kept = platform.artifacts.put_file(Path(batch.file.local_path))
        payload = json.dumps(
            {
                "origin": batch.origin,
                "artifact": kept.key,
                "sha256": kept.sha256,
                "format": batch.file.format,
            }
        )
        quarantined = [
            NewQuarantine(kind=q.kind, position=q.position, reasons=q.reasons, payload=payload)
            if q.kind == "batch"
            else q
            for q in quarantined
        ]
    key = sha256 = None
    snapshot = None
    if outcome.stored_path is not None:
        stored = store_batch_file(
            platform.artifacts, dataset, outcome.stored_path, platform.settings.state_dir / "cache"
        )
        key, sha256 = stored.key, stored.sha256
        entry = {"key": key, "sha256": sha256, "rows": report.rows_stored, "origin": batch.origin}
        carried = list(previous.batches) if (mode == "append" and previous is not None) else []
        files = [*carried, entry]
        columns = {
            name: spec.model_dump(exclude_defaults=True) | {"type": spec.type}
            for name, spec in outcome.columns.items()
        }
        manifest = platform.artifacts.put(manifest_bytes(dataset, files, columns))
        snapshot = NewSnapshot(
            content_hash=snapshot_hash(files),
            row_count=sum(int(f["rows"]) for f in files),
            columns=columns,
            artifact_key=manifest.key,
            source=batch.origin,
            batches=files,
            parent_id=previous.id if carried and previous is not None else None,
        )
    recorded, made = platform.metadata.ingestion.record_batch(
        dataset,
        NewBatch(
            origin=batch.origin,
            verdict=report.verdict,
            rows_in=report.rows_in,
            rows_stored=report.rows_stored,
            rows_quarantined=report.rows_quarantined,
            rows_skipped=report.rows_skipped,
            report=report.to_dict(),
            artifact_key=key,
            sha256=sha256,
        ),
        quarantined=quarantined,
        snapshot=snapshot,
        actor=platform.actor,
        replayed=replayed,
    )
    return Ingested(recorded, report, made)


#: a re-delivered row whose position is already in the quarantine
SKIP_QUARANTINED = "already quarantined"
