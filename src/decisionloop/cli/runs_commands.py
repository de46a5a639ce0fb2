"""`decisionloop runs list|show|compare|reproduce`: thin over Platform.runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from decisionloop.cli.output import out, print_json
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import MetricPoint, Run, RunStatus
    from decisionloop.platform import Platform

runs_app = typer.Typer(
    help="Training runs: params, metrics per step, environment.", no_args_is_help=True
)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed")


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


def run_dict(run: Run, history: list[MetricPoint] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": run.id,
        "model": run.model_name,
        "status": run.status,
        "params": run.params,
        "metrics": run.metrics,
        "tags": run.tags,
        "started_at": run.started_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "duration_seconds": run.duration_seconds,
        "parent_run_id": run.parent_run_id,
        "snapshot_id": run.snapshot_id,
        "code_version": run.code_version,
        "environment": run.environment,
        "feature_versions": run.feature_versions,
        "error": run.error,
    }
    if history is not None:
        document["metric_history"] = [
            {"key": p.key, "step": p.step, "value": p.value} for p in history
        ]
    return document


@runs_app.command("list")
def runs_list(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's runs.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="running, finished or failed.")
    ] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only the trials of this run.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.")] = 50,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Runs, newest first, by model, status or parent run."""
    wanted = next((s for s in _STATUSES if s == status), None)
    if status is not None and wanted is None:
        raise Invalid(f"unknown run status {status!r}", hint=f"use one of: {', '.join(_STATUSES)}")
    with _platform(project) as platform:
        runs = platform.runs.list(model, status=wanted, parent_run_id=parent, limit=limit)
    if json:
        print_json([run_dict(r) for r in runs])
        return
    table = Table(title="runs")
    for column in ("id", "model", "status", "started", "duration", "test_auc", "parent"):
        table.add_column(column, no_wrap=column in ("id", "parent"))
    for r in runs:
        auc = r.metrics.get("test_auc")
        table.add_row(
            r.id[:12],
            r.model_name,
            r.status,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            f"{r.duration_seconds:.1f}s" if r.duration_seconds is not None else "-",
            f"{auc:.4f}" if auc is not None else "-",
            (r.parent_run_id or "-")[:12],
        )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id (or a unique prefix).")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """One run in full: params, metrics (and their steps), tags, environment, data, code."""
    with _platform(project) as platform:
        run = platform.runs.get(_resolve(platform, run_id))
        history = platform.runs.metric_history(run.id)
    document = run_dict(run, history)
    if json:
        print_json(document)
        return
    environment = document.pop("environment") or {}
    document["environment"] = {
        "python": environment.get("python"),
        "lock_hash": environment.get("lock_hash"),
        "packages": len(environment.get("packages") or {}),
    }
    steps: dict[str, int] = {}
    for point in history:
        steps[point.key] = steps.get(point.key, 0) + 1
    document["metric_history"] = {key: f"{count} steps" for key, count in steps.items()}
    out.print_json(data=document, default=str)


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids (or unique prefixes).")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Runs side by side: every param and metric, changed params marked."""
    if len(run_ids) < 2:
        raise Invalid("compare needs two or more runs", hint="decisionloop runs compare ID ID ...")
    with _platform(project) as platform:
        comparison = platform.runs.compare([_resolve(platform, r) for r in run_ids])
    if json:
        print_json(
            {
                "runs": [r.id for r in comparison.runs],
                "params": comparison.params,
                "metrics": comparison.metrics,
                "changed_params": comparison.changed_params,
            }
        )
        return
    table = Table(title="runs compared")
    table.add_column("key")
    for r in comparison.runs:
        table.add_column(r.id[:12])
    changed = set(comparison.changed_params)
    for key, values in comparison.params.items():
        label = f"[bold]param {key}[/] *" if key in changed else f"param {key}"
        table.add_row(label, *("-" if v is None else str(v) for v in values))
    for key, numbers in comparison.metrics.items():
        table.add_row(f"metric {key}", *("-" if v is None else f"{v:.4f}" for v in numbers))
    out.print(table)


def _resolve(platform: Platform, text: str) -> str:
    """A full run id from an id or a unique prefix of one among recent runs."""
    if len(text) == 32:
        return text
    matches = [r.id for r in platform.runs.list(limit=1000) if r.id.startswith(text)]
    if len(matches) != 1:
        raise Invalid(
            f"{text!r} matches {len(matches)} runs",
            hint="give more characters of the id (see `decisionloop runs list`)",
        )
    return matches[0]


@runs_app.command("reproduce")
def runs_reproduce(
    run_id: Annotated[str, typer.Argument(help="The run's id (or a unique prefix).")],
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Largest difference that still matches.")
    ] = 1e-9,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Retrain a run from its recorded snapshot, params, seed and split (no version is
    registered) and compare its metrics. Exit 0 when all match, 1 when any differs."""
    from decisionloop.cli.output import loop_progress

    if not tolerance >= 0:
        raise Invalid(f"tolerance {tolerance} is negative", hint="use 0 or more, e.g. 1e-9")
    with _platform(project) as platform:
        resolved = _resolve(platform, run_id)
        with loop_progress(enabled=not json) as progress:
            result = platform.runs.reproduce(resolved, progress, tolerance=tolerance)
    if json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"run {result.original_run_id[:12]} reproduced as {result.run_id[:12]}")
        for column in ("metric", "original", "reproduced", "match"):
            table.add_column(column)
        for check in result.metrics:
            table.add_row(
                check.name,
                _number(check.original),
                _number(check.reproduced),
                "[green]yes[/]" if check.matches else "[red]NO[/]",
            )
        table.add_row(
            "split (test rows)", "", "", "[green]yes[/]" if result.split_matches else "[red]NO[/]"
        )
        out.print(table)
        out.print(
            "reproduced: every metric matches" if result.matches else "[red]NOT reproduced[/]"
        )
    if not result.matches:
        raise typer.Exit(1)


def _number(value: float | None) -> str:
    return "-" if value is None else repr(value)
