"""`decisionloop ingest` and `decisionloop data ...`: thin commands over Platform.data."""

from __future__ import annotations

import json as jsonlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from decisionloop.cli.output import err, out, print_json

if TYPE_CHECKING:
    from decisionloop.data.ingest import Ingested
    from decisionloop.data.report import BatchReport
    from decisionloop.platform import Platform

data_app = typer.Typer(
    help="Snapshots, validation reports and the quarantine.", no_args_is_help=True
)
quarantine_app = typer.Typer(
    help="Rows kept aside by validation: list, show, replay, discard.", no_args_is_help=True
)
data_app.add_typer(quarantine_app, name="quarantine")

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


def report_table(report: BatchReport) -> Table:
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}[report.verdict]
    table = Table(
        title=f"[{colour}]{report.verdict.upper()}[/]  {report.rows_in} in = "
        f"{report.rows_stored} stored + {report.rows_quarantined} quarantined + "
        f"{report.rows_skipped} skipped",
        caption=report.origin,
    )
    for column in ("check", "severity", "failed", "examples / detail"):
        table.add_column(column)
    for check in report.checks:
        if not check.failed:
            continue
        style = "red" if check.severity == "error" else "yellow"
        detail = ", ".join(check.examples) or check.detail
        table.add_row(check.check, f"[{style}]{check.severity}[/]", str(check.failed), detail)
    for reason, count in report.skipped.items():
        table.add_row(f"skipped: {reason}", "info", str(count), "")
    if not report.failed_checks and not report.skipped:
        table.add_row(f"all {len(report.checks)} checks passed", "", "0", "")
    return table


def ingest(
    folder: Annotated[Path | None, typer.Argument(help="Project folder (default: .).")] = None,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Source URL (default: data.source).")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="SQL query for a postgresql:// source.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep ingesting new data until interrupted.")
    ] = False,
    mode: Annotated[
        str | None,
        typer.Option(help="replace or append (default: replace for one file, else append)."),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Most rows per batch of a stream or query.")
    ] = 100_000,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="A data set declared under `datasets` (default: the project's)."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Ingest a source: validate, store good rows, quarantine bad ones, record a snapshot."""
    from decisionloop.errors import Invalid

    if mode not in (None, "replace", "append"):
        raise Invalid(f"unknown mode {mode!r}", hint="use replace or append")
    with _platform(folder) as platform:
        service = platform.dataset(dataset)
        previous = signal.signal(signal.SIGINT, lambda *_: service.stop()) if follow else None

        def show(result: Ingested) -> None:
            if json:
                if follow:
                    print_json(result.to_dict())
            else:
                out.print(report_table(result.report))
                if result.snapshot is not None:
                    snapshot = result.snapshot
                    out.print(
                        f"snapshot {snapshot.id} ({snapshot.row_count} rows, "
                        f"{snapshot.content_hash[:16]}...)"
                    )

        try:
            done = service.ingest(
                source,
                query=query,
                follow=follow,
                mode="replace" if mode == "replace" else "append" if mode == "append" else None,
                max_batch_rows=batch_rows,
                on_batch=show,
            )
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    if json and not follow:
        print_json(done[0].to_dict() if len(done) == 1 else [d.to_dict() for d in done])
    elif not done:
        err.print("nothing new to ingest")


@data_app.command("report")
def data_report(
    batch: Annotated[str | None, typer.Argument(help="Batch id (default: the latest).")] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show a batch's validation report."""
    from decisionloop.data.report import BatchReport
    from decisionloop.errors import NotFound

    with _platform(project) as platform:
        ingestion = platform.metadata.ingestion
        if batch is None:
            latest = ingestion.list_batches(platform.settings.name, limit=1)
            if not latest:
                raise NotFound("no batch ingested yet", hint="run `decisionloop ingest` first")
            record = latest[0]
        else:
            record = ingestion.get_batch(batch)
    if json:
        print_json({"batch_id": record.id, **record.report})
    else:
        out.print(report_table(BatchReport.from_dict(record.report)))
        out.print(f"batch {record.id} at {record.created_at:%Y-%m-%d %H:%M:%S}")


@data_app.command("batches")
def data_batches(project: ProjectOption = None, json: JsonOption = False, limit: int = 20) -> None:
    """List ingested batches with their counts and verdicts."""
    with _platform(project) as platform:
        batches = platform.metadata.ingestion.list_batches(platform.settings.name, limit=limit)
    if json:
        print_json([_batch_dict(b) for b in batches])
        return
    table = Table(title="batches")
    for column in ("id", "when", "verdict", "in", "stored", "quarantined", "skipped", "origin"):
        table.add_column(column, overflow="fold")
    for b in batches:
        table.add_row(
            b.id[:12],
            f"{b.created_at:%Y-%m-%d %H:%M}",
            b.verdict,
            str(b.rows_in),
            str(b.rows_stored),
            str(b.rows_quarantined),
            str(b.rows_skipped),
            b.origin,
        )
    out.print(table)


def _batch_dict(batch: Any) -> dict[str, Any]:
    fields = (
        "id",
        "origin",
        "verdict",
        "rows_in",
        "rows_stored",
        "rows_quarantined",
        "rows_skipped",
        "artifact_key",
        "sha256",
        "created_at",
    )
    return {name: getattr(batch, name) for name in fields}


@data_app.command("snapshots")
def data_snapshots(
    project: ProjectOption = None,
    json: JsonOption = False,
    limit: int = 20,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="A data set under `datasets`.")
    ] = None,
) -> None:
    """List the data set's snapshots (versions), newest first."""
    with _platform(project) as platform:
        snapshots = platform.dataset(dataset).snapshots(limit=limit)
    if json:
        print_json(
            [
                {
                    "id": s.id,
                    "hash": s.content_hash,
                    "rows": s.row_count,
                    "files": len(s.batches),
                    "parent_id": s.parent_id,
                    "source": s.source,
                    "created_at": s.created_at,
                }
                for s in snapshots
            ]
        )
        return
    table = Table(title="snapshots")
    for column in ("id", "when", "rows", "files", "hash", "source"):
        table.add_column(column, overflow="fold")
    for s in snapshots:
        table.add_row(
            s.id,
            f"{s.created_at:%Y-%m-%d %H:%M}",
            str(s.row_count),
            str(len(s.batches) or 1),
            s.content_hash[:16],
            s.source,
        )
    out.print(table)


@quarantine_app.command("list")
def quarantine_list(
    project: ProjectOption = None,
    status: Annotated[str, typer.Option(help="open, replayed, discarded or all.")] = "open",
    limit: int = 50,
    json: JsonOption = False,
) -> None:
    """List quarantined rows with their reasons."""
    with _platform(project) as platform:
        entries = platform.metadata.ingestion.list_quarantine(
            platform.settings.name, status=None if status == "all" else status, limit=limit
        )
        total = platform.metadata.ingestion.count_quarantine(
            platform.settings.name, status=None if status == "all" else status
        )
    if json:
        print_json([_entry_dict(e) for e in entries])
        return
    table = Table(title=f"quarantine: {total} {status}")
    for column in ("id", "position", "reasons", "status"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e.id), e.position, "; ".join(e.reasons), e.status)
    out.print(table)


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "batch_id": entry.batch_id,
        "kind": entry.kind,
        "position": entry.position,
        "reasons": entry.reasons,
        "payload": entry.payload,
        "status": entry.status,
        "created_at": entry.created_at,
        "resolved_at": entry.resolved_at,
        "resolution": entry.resolution,
    }


@quarantine_app.command("show")
def quarantine_show(
    entry: Annotated[int, typer.Argument(help="Quarantine entry id.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show one quarantined row: where it came from, why, and its raw payload."""
    with _platform(project) as platform:
        found = platform.metadata.ingestion.get_quarantined(entry)
    if json:
        print_json(_entry_dict(found))
        return
    out.print(f"[bold]#{found.id}[/] {found.kind} at {found.position} ({found.status})")
    for reason in found.reasons:
        out.print(f"  - {reason}")
    try:
        out.print_json(data=jsonlib.loads(found.payload))
    except ValueError:
        out.print(found.payload, markup=False)


@quarantine_app.command("replay")
def quarantine_replay(
    entries: Annotated[
        list[int] | None, typer.Argument(help="Entry ids (default: every open entry).")
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Validate quarantined rows again under the current contract; what passes is stored."""
    with _platform(project) as platform:
        results = platform.data.replay(entries or None)
    if json:
        print_json([r.to_dict() for r in results])
        return
    for result in results:
        out.print(report_table(result.report))


@quarantine_app.command("discard")
def quarantine_discard(
    entries: Annotated[list[int], typer.Argument(help="Entry ids to discard.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
    project: ProjectOption = None,
) -> None:
    """Mark quarantined rows as discarded, with a reason (they stay on record)."""
    with _platform(project) as platform:
        changed = platform.data.discard(entries, reason)
    out.print(f"discarded {changed} entr{'y' if changed == 1 else 'ies'}")
