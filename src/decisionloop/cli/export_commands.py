"""`decisionloop export mlflow` (runs and model versions to an MLflow tracking server) and
`decisionloop export onnx` (a model version as one ONNX file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from decisionloop.cli.output import err, out, print_json

if TYPE_CHECKING:
    from decisionloop.export.mlflow import ExportProgress, ExportSummary, Selection

export_app = typer.Typer(
    help="Export runs and models to other tools (docs/export.md).", no_args_is_help=True
)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@export_app.command("mlflow")
def export_mlflow(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri",
            metavar="URL",
            envvar="MLFLOW_TRACKING_URI",
            help="The MLflow tracking server, e.g. http://127.0.0.1:5000.",
        ),
    ],
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            metavar="NAME",
            help="Put every run in this experiment (default: the model's name).",
        ),
    ] = None,
    runs: Annotated[
        list[str] | None,
        typer.Option(
            "--runs",
            metavar="all|ID",
            help="'all', or run ids (or unique prefixes); repeat or separate with commas.",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            metavar="all|REF",
            help="'all', or NAME (every version), NAME@ALIAS or NAME/VERSION; repeatable.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MLFLOW_TRACKING_TOKEN",
            help="Bearer token (prefer the environment variable).",
        ),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option("--username", envvar="MLFLOW_TRACKING_USERNAME", help="Basic-auth user name."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="MLFLOW_TRACKING_PASSWORD",
            help="Basic-auth password (prefer the environment variable).",
        ),
    ] = None,
    insecure_tls: Annotated[
        bool,
        typer.Option(
            "--insecure-tls",
            envvar="MLFLOW_TRACKING_INSECURE_TLS",
            help="Do not verify the server's TLS certificate.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each answer.")
    ] = 30.0,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Export runs (params, metrics per step, tags, status, environment) and model versions
    (as catalog entries with metrics, status and aliases); a re-export updates, never
    duplicates. Without --runs and --models, everything is exported."""
    from decisionloop.export.mlflow import MLflowExporter
    from decisionloop.export.mlflow_rest import MLflowCredentials, MLflowRestClient
    from decisionloop.platform import Platform

    everything = runs is None and models is None
    client = MLflowRestClient(
        tracking_uri,
        credentials=MLflowCredentials(
            token=token, username=username, password=password, insecure_tls=insecure_tls
        ),
        timeout_s=timeout,
    )
    with Platform.open(project) as platform, _progress(enabled=not json) as progress:
        summary = MLflowExporter(platform, client, experiment=experiment).export(
            runs="all" if everything else _selection(runs),
            models="all" if everything else _selection(models),
            progress=progress,
        )
    if json:
        print_json(summary.to_dict())
    else:
        for table in _tables(summary):
            out.print(table)


def _selection(values: list[str] | None) -> Selection:
    items = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return "all" if "all" in items else items


@contextmanager
def _progress(*, enabled: bool) -> Iterator[ExportProgress]:
    """A bar over the runs and versions being exported, on stderr (nothing with --json)."""
    if not enabled:
        yield lambda done, total, what: None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]export[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("connecting", total=None)

    def report(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total, description=what)

    with bar:
        yield report


def _tables(summary: ExportSummary) -> list[Table]:
    tables = []
    if summary.runs:
        runs = Table(title=f"runs → {summary.tracking_uri}")
        for column in ("run", "MLflow run", "experiment", "", "logged"):
            runs.add_column(column, no_wrap=column != "experiment")
        for r in summary.runs:
            runs.add_row(
                r.run_id[:12],
                r.mlflow_run_id[:12],
                f"{r.experiment} ({r.experiment_id})",
                "created" if r.created else "updated",
                f"{r.params_logged} params, {r.metrics_logged} points, {r.tags_set} tags",
            )
        tables.append(runs)
    if summary.versions:
        versions = Table(
            title=f"model versions → {summary.tracking_uri}",
            caption="sources name DecisionLoop artifacts: catalog entries (docs/export.md)",
        )
        for column in ("version", "MLflow version", "", "aliases", "MLflow run"):
            versions.add_column(column, no_wrap=True)
        for v in summary.versions:
            versions.add_row(
                f"{v.model}/{v.version}",
                f"{v.model}/{v.mlflow_version}",
                "created" if v.created else "updated",
                ", ".join(f"@{a}" for a in v.aliases) or "-",
                (v.mlflow_run_id or "-")[:12],
            )
        tables.append(versions)
    if not tables:
        table = Table(title="nothing to export")
        table.add_column("hint")
        table.add_row("train first (decisionloop run), or check --runs / --models")
        tables.append(table)
    return tables


@export_app.command("onnx")
def export_onnx(
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version: NAME@ALIAS or NAME/VERSION.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="FILE", help="Where to write the .onnx file."),
    ],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Write a model version as one ONNX file (raw columns in, preprocessing and model
    inside), after checking onnxruntime reproduces its scores. Needs
    pip install 'decisionloop[onnx]'."""
    from decisionloop.export.onnx import export_onnx as export
    from decisionloop.platform import Platform

    with Platform.open(project) as platform:
        result = export(platform, ref, output)
    if json:
        print_json(result.to_dict())
        return
    table = Table(title=f"{result.model}/{result.version} → {result.path}")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("model", f"{result.flavor} {result.task}, ONNX opset {result.opset}")
    table.add_row("sha256", result.sha256)
    table.add_row("inputs", ", ".join(f"{t.name} {t.onnx_type}" for t in result.inputs))
    table.add_row("outputs", ", ".join(f"{t.name} {t.onnx_type}" for t in result.outputs))
    table.add_row(
        "checked",
        f"{result.rows_checked} rows scored alike by onnxruntime and the model "
        f"(largest difference {result.max_abs_diff:.2g})",
    )
    out.print(table)
