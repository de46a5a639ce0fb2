"""`decisionloop models history|search|diff|status|tag|describe`: thin over the registry API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from decisionloop.cli.output import headline_metric, out, print_json, version_dict
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import AliasEvent, ModelVersion
    from decisionloop.platform import Platform, VersionDiff

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
RefArgument = Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION.")]


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


def registered_version_dict(v: ModelVersion) -> dict[str, Any]:
    """A version as JSON, with its lifecycle status, description and tags."""
    return {**version_dict(v), "status": v.status, "description": v.description, "tags": v.tags}


def parse_when(text: str) -> datetime:
    """An ISO 8601 date or time; one without a timezone is taken as UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(
            f"not a date or time: {text!r}",
            hint="write ISO 8601, e.g. 2026-03-01 or 2026-03-01T09:30",
        ) from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def models_history(
    ref: Annotated[str, typer.Argument(help="NAME@ALIAS (or NAME for every alias).")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="Only say which version the alias pointed at then (ISO 8601)."),
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Every move of an alias (who, when, from which version, why), or its version at a time."""
    from decisionloop.refs import ModelRef

    parsed = ModelRef.parse(ref)
    if parsed.version is not None:
        raise Invalid(f"{ref} names a version, not an alias", hint="write NAME@ALIAS")
    with _platform(project) as platform:
        if at is not None:
            if parsed.alias is None:
                raise Invalid("--at needs an alias", hint="write NAME@ALIAS, e.g. churn@champion")
            when = parse_when(at)
            version = platform.alias_at(parsed.name, parsed.alias, when)
            if json:
                print_json(
                    {"model": parsed.name, "alias": parsed.alias, "at": when, "version": version}
                )
            else:
                target = f"version {version}" if version is not None else "no version"
                out.print(f"{parsed.name}@{parsed.alias} pointed at {target} at {when.isoformat()}")
            return
        events = platform.alias_history(parsed.name, parsed.alias)
    if json:
        print_json([_event_dict(e) for e in events])
    else:
        out.print(_history_table(str(parsed), events))


def _event_dict(event: AliasEvent) -> dict[str, Any]:
    return {
        "model": event.model_name,
        "alias": event.alias,
        "version": event.version,
        "previous_version": event.previous_version,
        "actor": event.actor,
        "at": event.at.isoformat(),
        "reason": event.reason,
    }


def _history_table(title: str, events: list[AliasEvent]) -> Table:
    table = Table(title=title)
    for column in ("at", "alias", "version", "previous", "actor", "reason"):
        table.add_column(column)
    for e in events:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            f"@{e.alias}",
            str(e.version) if e.version is not None else "[red]deleted[/]",
            str(e.previous_version) if e.previous_version is not None else "-",
            e.actor,
            e.reason or "",
        )
    return table


def models_search(
    name: Annotated[str | None, typer.Argument(help="Only this model's versions.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="KEY=VALUE the version carries (repeatable).")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="candidate, staging, production or archived.")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="A threshold such as 'test_auc>=0.8' (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many versions.")] = 100,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Find versions by model name, tags, lifecycle status and metric thresholds."""
    from decisionloop.refs import parse_tag

    tags = dict(parse_tag(text) for text in tag or [])
    with _platform(project) as platform:
        found = platform.search_versions(
            name=name, tags=tags, status=status, metrics=metric or [], limit=limit
        )
    if json:
        print_json([registered_version_dict(v) for v in found])
        return
    table = Table(title=f"{len(found)} versions")
    shown = headline_metric([v.metrics for v in found])
    for column in ("version", "status", "aliases", shown, "tags", "created"):
        table.add_column(column)
    for v in found:
        value = v.metrics.get(shown)
        table.add_row(
            f"{v.model_name}/{v.version}",
            v.status,
            ", ".join(f"@{a}" for a in v.aliases) or "-",
            f"{value:.4f}" if value is not None else "-",
            ", ".join(f"{k}={val}" for k, val in sorted(v.tags.items())) or "-",
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


def models_diff(
    a: RefArgument,
    b: RefArgument,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """What differs between two versions: params, metrics, data snapshot, features, signature."""
    with _platform(project) as platform:
        diff = platform.diff_versions(a, b)
    if json:
        print_json(diff.to_dict())
    else:
        out.print(_diff_table(diff))


def _diff_table(diff: VersionDiff) -> Table:
    first = f"{diff.a.model_name}/{diff.a.version}"
    second = f"{diff.b.model_name}/{diff.b.version}"
    table = Table(title=f"{first} → {second}")
    for column in ("what", first, second, "change"):
        table.add_column(column, overflow="fold")
    for key, (x, y, delta) in diff.metrics.items():
        change = f"{delta:+.4f}" if delta is not None else ""
        table.add_row(f"metric {key}", _show(x), _show(y), change)
    for key, (x, y) in diff.params.items():
        table.add_row(f"param {key}", _show(x), _show(y), "")
    if diff.snapshot is not None:
        table.add_row("data snapshot", _show(diff.snapshot[0]), _show(diff.snapshot[1]), "changed")
    for name in diff.features_added:
        table.add_row(f"feature {name}", "-", "✓", "added")
    for name in diff.features_removed:
        table.add_row(f"feature {name}", "✓", "-", "removed")
    for key, (x, y) in diff.feature_versions.items():
        table.add_row(f"feature version {key}", _show(x), _show(y), "")
    for key, (x, y) in diff.signature_changes.items():
        table.add_row(f"signature {key}", _show(x), _show(y), "")
    return table


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return text[:16] + "…" if len(text) > 40 else text


def models_status(
    ref: RefArgument,
    status: Annotated[str, typer.Argument(help="candidate, staging, production or archived.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (kept in the history).")
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Move a version along its lifecycle: candidate → staging → production → archived."""
    with _platform(project) as platform:
        change = platform.set_status(ref, status, reason=reason)
    if json:
        print_json(
            {
                "model": change.model_name,
                "version": change.version,
                "from": change.from_status,
                "to": change.to_status,
                "actor": change.actor,
                "at": change.at.isoformat(),
                "reason": change.reason,
            }
        )
    else:
        out.print(
            f"{change.model_name}/{change.version}: {change.from_status} → {change.to_status}"
        )


def models_tag(
    ref: Annotated[str, typer.Argument(help="NAME (the model) or NAME/VERSION, NAME@ALIAS.")],
    tags: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE ...")] = None,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Remove this tag key (repeatable).")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Set (or with --delete remove) tags of a model or of a version."""
    from decisionloop.refs import parse_tag

    pairs = [parse_tag(text) for text in tags or []]
    if not pairs and not delete:
        raise Invalid("no tags given", hint="write KEY=VALUE ... or --delete KEY")
    with _platform(project) as platform:
        for key, value in pairs:
            platform.set_tag(ref, key, value)
        for key in delete or []:
            platform.delete_tag(ref, key)
    out.print(f"{ref}: {len(pairs)} tags set, {len(delete or [])} removed")


def models_describe(
    ref: Annotated[str, typer.Argument(help="NAME (the model) or NAME/VERSION, NAME@ALIAS.")],
    text: Annotated[str, typer.Argument(help="The description.")],
    project: ProjectOption = None,
) -> None:
    """Set the description of a model or of a version."""
    with _platform(project) as platform:
        platform.set_description(ref, text)
    out.print(f"{ref}: description set")


def register_model_commands(models_app: typer.Typer) -> None:
    """Add these commands to the `models` group."""
    models_app.command("history")(models_history)
    models_app.command("search")(models_search)
    models_app.command("diff")(models_diff)
    models_app.command("status")(models_status)
    models_app.command("tag")(models_tag)
    models_app.command("describe")(models_describe)
