"""`decisionloop features ...`: plan and apply definitions, list them, materialize, look
features up online, and check training/serving skew."""

from __future__ import annotations

import json as jsonlib
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from decisionloop.cli.output import out, print_json

if TYPE_CHECKING:
    from decisionloop.features.planning import FeaturePlan
    from decisionloop.platform import Platform

features_app = typer.Typer(
    help="The feature store: definitions, materialization, online lookups, skew.",
    no_args_is_help=True,
)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

_COLOURS = {"add": "green", "change": "yellow", "remove": "red", "same": "dim"}


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


def plan_table(plan: FeaturePlan, title: str) -> Table:
    table = Table(title=title)
    for column in ("action", "kind", "name", "version", "what changed"):
        table.add_column(column, overflow="fold")
    for change in plan.changes:
        colour = _COLOURS[change.action]
        version = change.version or ""
        if change.action == "change":
            version = f"{(change.previous or '')[:8]} -> {version[:8]}"
        table.add_row(
            f"[{colour}]{change.action}[/]",
            change.kind.replace("_", " "),
            escape(change.name),
            version[:20],
            escape("; ".join(change.details)),
        )
    return table


@features_app.command("plan")
def features_plan(project: ProjectOption = None, json: JsonOption = False) -> None:
    """Show how the project's definitions differ from the applied ones."""
    with _platform(project) as platform:
        plan = platform.features.plan()
    if json:
        print_json(plan.to_dict())
        return
    out.print(plan_table(plan, f"{len(plan.pending)} change(s) to apply"))


@features_app.command("apply")
def features_apply(project: ProjectOption = None, json: JsonOption = False) -> None:
    """Record the project's definitions in the metadata store (audited)."""
    with _platform(project) as platform:
        plan = platform.features.apply()
    if json:
        print_json(plan.to_dict())
        return
    if not plan.pending:
        out.print("nothing to apply: the definitions are applied as they are")
        return
    out.print(plan_table(plan, f"applied {len(plan.pending)} change(s)"))


@features_app.command("list")
def features_list(project: ProjectOption = None, json: JsonOption = False) -> None:
    """The applied definitions with their versions."""
    with _platform(project) as platform:
        definitions = platform.metadata.features.list_definitions()
    if json:
        print_json(
            [
                {
                    "kind": d.kind,
                    "name": d.name,
                    "version": d.version,
                    "applied_at": d.applied_at,
                    "applied_by": d.applied_by,
                    "spec": d.spec,
                }
                for d in definitions
            ]
        )
        return
    table = Table(title="applied feature definitions")
    for column in ("kind", "name", "version", "applied", "by", "summary"):
        table.add_column(column, overflow="fold")
    for d in definitions:
        table.add_row(
            d.kind.replace("_", " "),
            escape(d.name),
            d.version[:12],
            f"{d.applied_at:%Y-%m-%d %H:%M}",
            escape(d.applied_by),
            escape(_summary(d.kind, d.spec)),
        )
    out.print(table)


def _summary(kind: str, spec: dict[str, Any]) -> str:
    if kind == "entity":
        return f"key {spec.get('join_key')}"
    if kind == "feature_view":
        ttl = spec.get("ttl") or "no ttl"
        return f"{len(spec.get('features', {}))} features from {spec.get('source')}, ttl {ttl}"
    if kind == "on_demand_feature_view":
        how = "sql" if spec.get("sql") else f"python ({spec.get('mode')})"
        return f"{', '.join(spec.get('outputs', {}))} by {how}"
    return ", ".join(spec.get("features", []))


@features_app.command("materialize")
def features_materialize(
    views: Annotated[
        list[str] | None, typer.Argument(help="Feature views (default: every online view).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild from every stored row, not only new files.")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(
            "--every", min=1.0, help="Keep materializing every N seconds until interrupted."
        ),
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Load each view's newest rows per entity into the online store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if every else None
    try:
        with _platform(project) as platform:
            while True:
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=out,
                    transient=True,
                    disable=json,
                ) as bar:
                    results = platform.features.materialize(
                        views or None, full=full, progress=_bar_reporter(bar)
                    )
                _show(results, json)
                if every is None or stop.wait(every):
                    break
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _bar_reporter(bar: Any) -> Any:
    """A materialization progress callback drawing one bar per view."""
    tasks: dict[str, Any] = {}

    def report(view: str, done: int, total: int) -> None:
        if view not in tasks:
            tasks[view] = bar.add_task(f"materializing {view}", total=total)
        bar.update(tasks[view], completed=done)

    return report


def _show(results: list[Any], json: bool) -> None:
    if json:
        print_json([r.to_dict() for r in results])
        return
    table = Table(title="materialized")
    for column in ("view", "mode", "rows read", "entities", "written", "seconds"):
        table.add_column(column)
    for r in results:
        table.add_row(
            escape(r.view),
            r.mode,
            str(r.rows_read),
            str(r.entities),
            str(r.rows_written),
            f"{r.seconds:.2f}",
        )
    out.print(table)


@features_app.command("history")
def features_history(
    view: Annotated[str | None, typer.Argument(help="Feature view (default: all).")] = None,
    limit: int = 20,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Past materializations, newest first."""
    with _platform(project) as platform:
        done = platform.features.materializations(view, limit=limit)
    if json:
        print_json(
            [
                {
                    "id": m.id,
                    "view": m.view,
                    "mode": m.mode,
                    "rows_read": m.rows_read,
                    "rows_written": m.rows_written,
                    "watermark": m.watermark,
                    "snapshot_id": m.snapshot_id,
                    "finished_at": m.finished_at,
                    "actor": m.actor,
                }
                for m in done
            ]
        )
        return
    table = Table(title="materializations")
    for column in ("id", "view", "mode", "read", "written", "watermark", "finished", "by"):
        table.add_column(column, overflow="fold")
    for m in done:
        table.add_row(
            str(m.id),
            escape(m.view),
            m.mode,
            str(m.rows_read),
            str(m.rows_written),
            f"{m.watermark:%Y-%m-%d %H:%M:%S}" if m.watermark else "",
            f"{m.finished_at:%Y-%m-%d %H:%M:%S}",
            escape(m.actor),
        )
    out.print(table)


@features_app.command("get")
def features_get(
    service: Annotated[str, typer.Argument(help="The feature service.")],
    entities: Annotated[
        list[str],
        typer.Argument(help="Entity ids, or JSON objects with join keys and request fields."),
    ],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Look a service's features up in the online store."""
    with _platform(project) as platform:
        plan, _ = platform.features.online_plan(service)
        rows = [_entity_row(text, plan.join_keys) for text in entities]
        found = platform.features.get_online_features(service, rows)
    if json:
        print_json(found.to_dict())
        return
    table = Table(title=f"online features of {service}")
    table.add_column("feature")
    records = found.records()
    for index in range(len(records)):
        table.add_column(f"#{index + 1}", overflow="fold")
    for name in found.columns:
        table.add_row(escape(name), *(escape(repr(r[name])) for r in records))
    out.print(table)


def _entity_row(text: str, join_keys: tuple[str, ...]) -> dict[str, Any]:
    from decisionloop.errors import Invalid

    if text.lstrip().startswith("{"):
        try:
            row = jsonlib.loads(text)
        except jsonlib.JSONDecodeError as exc:
            raise Invalid(f"not a JSON object: {text[:60]}", hint=str(exc)) from exc
        if not isinstance(row, dict):
            raise Invalid(f"not a JSON object: {text[:60]}")
        return row
    if len(join_keys) != 1:
        raise Invalid(
            f"this service joins on {', '.join(join_keys)}: pass JSON objects",
            hint='e.g. \'{"customer_id": "C1", "region": "EU"}\'',
        )
    return {join_keys[0]: text}


@features_app.command("check-skew")
def features_check_skew(
    service: Annotated[str, typer.Argument(help="The feature service.")],
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="How many logged lookups to recompute.")
    ] = 1000,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Recompute logged online feature vectors offline, point in time, and report any skew."""
    with _platform(project) as platform:
        report = platform.features.check_skew(service, sample=sample)
    if json:
        print_json(report.to_dict())
        return
    verdict = "[green]no skew[/]" if report.consistent else "[red]SKEW[/]"
    table = Table(
        title=f"{verdict}: {report.rows} logged lookups of {service} recomputed offline",
    )
    for column in ("feature", "compared", "differ", "rate", "example (entity: online vs offline)"):
        table.add_column(column, overflow="fold")
    for feature in report.features:
        example = feature.examples[0] if feature.examples else None
        table.add_row(
            escape(feature.name),
            str(feature.compared),
            str(feature.mismatches),
            f"{feature.rate:.2%}",
            escape(f"{example[0]}: {example[1]!r} vs {example[2]!r}") if example else "",
        )
    out.print(table)
    if not report.consistent:
        raise typer.Exit(1)
