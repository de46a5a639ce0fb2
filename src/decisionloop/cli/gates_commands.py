"""`decisionloop gates show REF`: the gate report stored with a version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from decisionloop.cli.output import out, print_json

if TYPE_CHECKING:
    from decisionloop.platform import Platform

gates_app = typer.Typer(help="Evaluation gates stored with each version.", no_args_is_help=True)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


def gates_table(title: str, report: dict[str, Any]) -> Table:
    """One row per gate: kind, what it measured, value, bound, severity, verdict and why."""
    table = Table(title=title, show_header=True)
    for column in ("kind", "gate", "value", "bound", "severity", "passed", "why"):
        table.add_column(column, overflow="fold")
    for gate in report.get("results", []):
        passed = bool(gate.get("passed"))
        verdict = "pass" if passed else ("[red]FAIL[/]" if gate["severity"] == "block" else "warn")
        bound = gate.get("bound") or " and ".join(
            f"{sign} {gate[key]:g}"
            for key, sign in (("min", ">="), ("max", "<="))
            if gate.get(key) is not None
        )
        table.add_row(
            gate.get("kind", "threshold"),
            escape(str(gate.get("metric", ""))),
            f"{gate['value']:.4f}",
            bound,
            gate.get("severity", "block"),
            verdict,
            escape(str(gate.get("why", ""))),
        )
    return table


@gates_app.command("show")
def gates_show(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Every gate of a version: kind, value, bound, severity, verdict and why it failed."""
    with _platform(project) as platform:
        version, report = platform.gate_report(ref)
    name = f"{version.model_name}/{version.version}"
    if json:
        print_json({"model": version.model_name, "version": version.version, **report})
        return
    out.print(gates_table(name, report))
    if report.get("passed", version.gate_passed):
        out.print(f"{name}: every blocking gate passed")
    else:
        out.print(f"[red]{name} is blocked[/]: it can never be @champion")
