"""`decisionloop`: parse, call one Platform verb, print. Errors become one line and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from decisionloop.cli.card_commands import card
from decisionloop.cli.data_commands import data_app, ingest
from decisionloop.cli.export_commands import export_app
from decisionloop.cli.features_commands import features_app
from decisionloop.cli.gates_commands import gates_app
from decisionloop.cli.registry_commands import register_model_commands
from decisionloop.cli.runs_commands import runs_app
from decisionloop.errors import DecisionLoopError, Invalid

if TYPE_CHECKING:
    from decisionloop.platform import Platform
    from decisionloop.project import TaskChoice

app = typer.Typer(
    name="decisionloop",
    help="DecisionLoop: the MLOps loop for business decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(help="Registered models and their versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(export_app, name="export")
app.add_typer(gates_app, name="gates")
app.add_typer(features_app, name="features")
register_model_commands(models_app)
app.command()(ingest)
app.command("card")(card)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", "-p", help="Project folder (default: DECISIONLOOP_PROJECT_DIR or .)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
_state = {"debug": False}


def _print_version(requested: bool) -> None:
    # eager and import-free beyond the package root, so `--version` starts in ~0.1 s
    if requested:
        from decisionloop import __version__

        sys.stdout.write(f"decisionloop {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    _state["debug"] = debug


def _platform(project: Path | None) -> Platform:
    from decisionloop.platform import Platform

    return Platform.open(project)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Project folder to create or fill.")],
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file to learn from.")],
    target: Annotated[
        str, typer.Option("--target", help="Column to predict (two classes, or a number).")
    ],
    positive: Annotated[
        str | None, typer.Option(help="Target value that is the positive class.")
    ] = None,
    entity: Annotated[
        str | None, typer.Option(help="Column identifying the entity (e.g. customer).")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Event time column; splits by time.")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Comma-separated sensitive columns.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Model name (default: the folder's name).")
    ] = None,
    copy_data: Annotated[
        bool, typer.Option("--copy-data", help="Copy the data into the project.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing project file.")
    ] = False,
    task: Annotated[
        str,
        typer.Option(
            help="auto, classification or regression (auto: a numeric target with more than "
            "two values is a regression)."
        ),
    ] = "auto",
) -> None:
    """Profile a data file and write DIR/decisionloop.yaml."""
    from decisionloop.cli.output import out
    from decisionloop.project import init_project

    path = init_project(
        folder,
        data=data,
        target=target,
        positive=positive,
        entity=entity,
        timestamp=timestamp,
        sensitive=[s.strip() for s in sensitive.split(",") if s.strip()] if sensitive else [],
        name=name,
        copy_data=copy_data,
        force=force,
        task=_task_choice(task),
    )
    out.print(f"wrote {path}\nnext: decisionloop run {folder}")


def _task_choice(task: str) -> TaskChoice:
    choices: dict[str, TaskChoice] = {
        "auto": "auto",
        "classification": "classification",
        "regression": "regression",
    }
    if task not in choices:
        raise Invalid(f"--task {task!r} is not a task", hint=f"use {', '.join(choices)}")
    return choices[task]


@app.command()
def run(
    folder: Annotated[Path | None, typer.Argument(help="Project folder (default: .).")] = None,
    json: JsonOption = False,
    no_tune: Annotated[
        bool,
        typer.Option("--no-tune", help="Skip model.tuning; train model.params as given."),
    ] = False,
) -> None:
    """Run the loop: ingest, validate, train, evaluate, gate, register, promote (with
    model.tuning set, a parameter search first: one line per trial)."""
    from decisionloop.cli.output import loop_progress, loop_summary, out, print_json

    with _platform(folder) as platform, loop_progress(enabled=not json) as progress:

        def report(step: str, message: str) -> None:
            # trials are part of training: each leaves its line under the bar's `train` step
            progress("train" if step == "tune" else step, message)

        result = platform.run(report, tune=not no_tune)
    if json:
        print_json(result.to_dict())
    else:
        out.print(loop_summary(result))
        if result.tuning is not None:
            tuning = result.tuning
            out.print(
                f"tuned: best of {tuning['trials']} trials is trial {tuning['best_trial'] + 1}"
                f" ({tuning['metric']} {tuning['best_value']:.4f}): {tuning['best_params']}"
            )


@models_app.command("list")
def models_list(project: ProjectOption = None, json: JsonOption = False) -> None:
    """List registered models with their latest version and aliases."""
    from decisionloop.cli.output import models_table, out, print_json

    with _platform(project) as platform:
        models = platform.list_models()
    if json:
        print_json(
            [
                {"name": m.name, "latest_version": m.latest_version, "aliases": m.aliases}
                for m in models
            ]
        )
    else:
        out.print(models_table(models))


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Show a model's versions, or one version in full."""
    from decisionloop.cli.output import out, print_json, versions_table
    from decisionloop.cli.registry_commands import registered_version_dict as version_dict
    from decisionloop.refs import ModelRef

    parsed = ModelRef.parse(ref)
    with _platform(project) as platform:
        if parsed.alias is None and parsed.version is None:
            versions = platform.list_versions(parsed.name)
            if json:
                print_json([version_dict(v) for v in versions])
            else:
                out.print(versions_table(parsed.name, versions))
            return
        version = platform.get_version(parsed)
    if json:
        print_json(version_dict(version))
    else:
        out.print_json(data=version_dict(version))


@app.command()
def predict(
    ref: Annotated[
        str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION (default alias: champion).")
    ],
    input: Annotated[
        Path, typer.Option("--input", "-i", help="CSV, Parquet or JSON rows to score.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write .csv or .json here (default: CSV on stdout)."),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Score a file in batch; writes the input columns plus probability and label
    (classification) or value (regression)."""
    from decisionloop.cli.output import err, writing
    from decisionloop.config import request_lean_imports
    from decisionloop.data.sources import read_table

    request_lean_imports()  # this process only scores
    frame = read_table(str(input))
    with _platform(project) as platform:
        result = platform.predict(ref, frame)
    if result.values is not None:
        scored = frame.assign(value=result.values)
    else:
        scored = frame.assign(probability=result.probabilities, label=result.labels)
    if output is None:
        scored.to_csv(sys.stdout, index=False)
    elif output.suffix.lower() not in (".csv", ".json"):
        raise Invalid(f"unsupported output type {output.suffix!r}", hint="use .csv or .json")
    else:
        with writing(output):
            if output.suffix.lower() == ".json":
                scored.to_json(output, orient="records", indent=1)
            else:
                scored.to_csv(output, index=False)
    err.print(f"scored {len(scored)} rows with {result.model_name}/{result.version}")


@app.command()
def serve(
    project: ProjectOption = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: serving.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: serving.workers).")
    ] = None,
) -> None:
    """Start the HTTP prediction service."""
    import uvicorn

    from decisionloop.config import export_project_dir, load_settings, request_lean_imports

    request_lean_imports()  # this process and its workers only score models

    settings = load_settings(project)
    export_project_dir(settings.project_dir)
    uvicorn.run(
        "decisionloop.serving.http:app_from_environment",
        factory=True,
        host=host or settings.serving.host,
        port=port if port is not None else settings.serving.port,
        workers=workers or settings.serving.workers,
        log_level="info",
        access_log=settings.serving.access_log,
    )


@app.command()
def demo(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Where to build the example (default: a temporary folder)."),
    ] = None,
) -> None:
    """Run the Telco churn example end to end and tell what happened."""
    from decisionloop.cli.demo import run_demo

    run_demo(folder)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage and user errors print one line and exit 2."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # standalone mode: typer prints usage errors and exits 2 by itself
        app(args=args, prog_name="decisionloop")
    except DecisionLoopError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2 if exc.user_error else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)\n"
        )
        sys.exit(1)
