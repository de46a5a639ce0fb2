"""Printing for the CLI: rich tables and progress on stderr, JSON on stdout for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    from decisionloop.backends.metadata.records import ModelVersion, RegisteredModel
    from decisionloop.pipelines.loop import LoopResult
    from decisionloop.platform import ProgressCallback

out = Console()
err = Console(stderr=True)


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Write an output file the user named: its folder is created, and a path that cannot be
    written (a file where a folder should be, no permission) is bad input, not a crash."""
    from decisionloop.errors import Invalid

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        raise Invalid(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="choose an output path in a folder you can write to",
        ) from exc


LOOP_STEPS = ("ingest", "validate", "snapshot", "train", "evaluate", "gate", "register", "promote")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def loop_progress(enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress bar over the loop's steps, on stderr; each finished step leaves a line."""
    if not enabled:
        yield lambda step, message: None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[step]:<9}[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task("starting", total=len(LOOP_STEPS), step="")
    current: list[tuple[str, str]] = []

    def finish_current(mark: str) -> None:
        if current:
            step, message = current.pop()
            progress.console.print(f"{mark} [bold]{step:<9}[/] {message}")

    def report(step: str, message: str) -> None:
        finish_current("[green]✓[/]")
        current.append((step, message))
        done = LOOP_STEPS.index(step) if step in LOOP_STEPS else 0
        progress.update(task, completed=done, description=message, step=step)

    with progress:
        try:
            yield report
        except BaseException:
            finish_current("[red]✗[/]")
            raise
        finish_current("[green]✓[/]")
        progress.update(task, completed=len(LOOP_STEPS))


#: the metrics a run's summary shows, those the task has (classification, then regression)
SUMMARY_METRICS = ("auc", "accuracy", "log_loss", "f1", "r2", "rmse", "mae")


def headline_metric(metrics: list[dict[str, float]]) -> str:
    """The metric a table of versions or runs shows: test AUC, or test R² for regressions."""
    return next((m for m in ("test_auc", "test_r2") if any(m in d for d in metrics)), "test_auc")


def loop_summary(result: LoopResult) -> Table:
    table = Table(title=f"{result.model}/{result.version}", show_header=True)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("aliases", ", ".join(f"@{a}" for a in result.aliases) or "(none)")
    table.add_row("gates", "passed" if result.gates["passed"] else "[red]FAILED[/]")
    for gate in result.gates["results"]:
        verdict = "pass" if gate["passed"] else ("FAIL" if gate["severity"] == "block" else "warn")
        table.add_row(
            f"  gate {gate['metric']}", f"{gate['value']:.4f} (min {gate['min']}) {verdict}"
        )
    table.add_row("snapshot", f"{result.snapshot_hash[:16]}... ({result.rows} rows)")
    table.add_row(
        "split",
        "{strategy}: {train_rows} train / {test_rows} test".format(**result.split),
    )
    for name in SUMMARY_METRICS:
        train, test = result.metrics.get("train_" + name), result.metrics.get("test_" + name)
        if train is not None and test is not None:
            table.add_row(name, f"train {train:.4f}   test {test:.4f}")
    table.add_row("run", result.run_id)
    return table


def models_table(models: list[RegisteredModel]) -> Table:
    table = Table(title="models")
    for column in ("name", "latest", "aliases", "created"):
        table.add_column(column)
    for model in models:
        aliases = ", ".join(f"@{a}→{v}" for a, v in sorted(model.aliases.items()))
        table.add_row(
            model.name,
            str(model.latest_version or "-"),
            aliases or "-",
            f"{model.created_at:%Y-%m-%d %H:%M}",
        )
    return table


def versions_table(name: str, versions: list[ModelVersion]) -> Table:
    table = Table(title=name)
    metric = headline_metric([v.metrics for v in versions])
    for column in ("version", "aliases", metric, "gates", "snapshot", "created"):
        table.add_column(column)
    for v in versions:
        value = v.metrics.get(metric)
        table.add_row(
            str(v.version),
            ", ".join(f"@{a}" for a in v.aliases) or "-",
            f"{value:.4f}" if value is not None else "-",
            "passed" if v.gate_passed else "failed",
            (v.snapshot_hash or "-")[:12],
            f"{v.created_at:%Y-%m-%d %H:%M}",
        )
    return table


def version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "model": v.model_name,
        "version": v.version,
        "aliases": list(v.aliases),
        "run_id": v.run_id,
        "artifact": {"key": v.artifact_key, "sha256": v.artifact_sha256},
        "snapshot_hash": v.snapshot_hash,
        "code_version": v.code_version,
        "metrics": v.metrics,
        "params": v.params,
        "signature": v.signature,
        "gates": v.gate_report,
        "created_at": v.created_at.isoformat(),
    }
