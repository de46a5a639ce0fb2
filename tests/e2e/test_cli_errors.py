"""Bad input gets one readable line, exit code 2, and leaves the metadata store unchanged."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.datasets import loan_defaults, write
from tests.e2e.test_cli_loop import cli

pytestmark = pytest.mark.slow

TABLES = (
    "datasets",
    "snapshots",
    "runs",
    "registered_models",
    "model_versions",
    "model_aliases",
    "deployments",
    "audit_events",
)


def state(folder: Path) -> dict[str, int]:
    """Row counts of every metadata table plus the number of stored artifacts."""
    db = folder / ".decisionloop" / "metadata.db"
    counts: dict[str, int] = {}
    if db.exists():
        with sqlite3.connect(db) as conn:
            for table in TABLES:
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    artifacts = folder / ".decisionloop" / "artifacts"
    counts["artifacts"] = (
        sum(1 for p in artifacts.rglob("*") if p.is_file()) if artifacts.exists() else 0
    )
    return counts


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    data = write(loan_defaults(rows=300), root / "loans.csv")
    folder = root / "base"
    cli("init", str(folder), "--data", str(data), "--target", "status", "--copy-data")
    cli("run", str(folder))
    return folder


@pytest.fixture
def project(trained_project: Path, tmp_path: Path) -> Path:
    """A copy of a project that has run once, so there is state to leave untouched."""
    folder = tmp_path / "project"
    shutil.copytree(trained_project, folder)
    return folder


def edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "decisionloop.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))


def missing_file(folder: Path) -> None:
    edit(folder, lambda d: d["data"].update(source="data/nope.csv"))


def unknown_target(folder: Path) -> None:
    edit(folder, lambda d: d["data"].update(target="no_such_column"))


def one_class(folder: Path) -> None:
    frame = loan_defaults(rows=300)
    frame["status"] = "repaid"
    write(frame, folder / "data" / "loans.csv")


def empty_file(folder: Path) -> None:
    (folder / "data" / "loans.csv").write_bytes(b"")


def corrupt_parquet(folder: Path) -> None:
    (folder / "data" / "loans.parquet").write_bytes(b"PAR1" + np.random.default_rng(1).bytes(500))
    edit(folder, lambda d: d["data"].update(source="data/loans.parquet"))


def text_in_numeric_column(folder: Path) -> None:
    """A column declared numeric that holds words: the contract and the data disagree."""
    frame = loan_defaults(rows=300)
    frame["age"] = "forty-two"
    write(frame, folder / "data" / "loans.csv")


def malformed_yaml(folder: Path) -> None:
    path = folder / "decisionloop.yaml"
    path.write_text(path.read_text() + "\nmodel: [unclosed\n  seed: 1\n")


def wrong_setting_type(folder: Path) -> None:
    edit(folder, lambda d: d["model"].update(test_size="a lot"))


def gate_on_unknown_metric(folder: Path) -> None:
    edit(folder, lambda d: d.update(gates=[{"metric": "test_aucc", "min": 0.5}]))


CASES = {
    "missing file": (missing_file, "not found"),
    "unknown target": (unknown_target, "no_such_column"),
    "one class": (one_class, "only one class"),
    "empty file": (empty_file, "empty"),
    "corrupt parquet": (corrupt_parquet, "parquet"),
    "text in numeric column": (text_in_numeric_column, "age: type"),
    "malformed yaml": (malformed_yaml, "decisionloop.yaml"),
    "wrong setting type": (wrong_setting_type, "model.test_size"),
    "gate on unknown metric": (gate_on_unknown_metric, "test_aucc"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(project: Path, case: str) -> None:
    breaker, expected = CASES[case]
    before = state(project)
    assert before["model_versions"] == 1
    breaker(project)
    result = cli("run", str(project), check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # progress lines may come first; the error itself is one line, the last
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], result.stderr
    assert expected.lower() in errors[0].lower()
    assert "hint:" in errors[0]
    assert state(project) == before


def test_debug_shows_the_traceback(project: Path) -> None:
    missing_file(project)
    result = cli("--debug", "run", str(project), check=False)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "status", "--data", "{missing}"], "not found"),
        (["--target", "nope", "--data", "{data}"], "nope"),
        (["--target", "status", "--data", "{data}", "--positive", "maybe"], "maybe"),
        (["--target", "status", "--data", "{single}"], "only one class"),
        (["--target", "status", "--data", "{data}", "--task", "bogus"], "is not a task"),
        (["--target", "status", "--data", "{data}", "--task", "regression"], "not numeric"),
    ],
)
def test_init_refuses_bad_input_without_writing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    data = write(loan_defaults(rows=100), tmp_path / "loans.csv")
    single = loan_defaults(rows=100)
    single["status"] = "repaid"
    single_path = write(single, tmp_path / "single.csv")
    paths = {
        "missing": str(tmp_path / "missing.csv"),
        "data": str(data),
        "single": str(single_path),
    }
    folder = tmp_path / "new"
    result = cli("init", str(folder), *[a.format(**paths) for a in args], check=False)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert not (folder / "decisionloop.yaml").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert cli("init", str(tmp_path), check=False).returncode == 2  # --data missing
    assert cli("models", "show", "bad ref!", "-p", str(tmp_path), check=False).returncode == 2
    result = cli("models", "show", "ghost", "-p", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "ghost" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["card", "ghost@champion"], "ghost"),
        (["card", "loans@champion", "--format", "pdf"], "not a card format"),
        (["gates", "show", "loans/99"], "no version 99"),
        (["models", "search", "--metric", "auc=>1"], "not a metric filter"),
        (["runs", "reproduce", "nope"], "matches 0 runs"),
    ],
)
def test_new_commands_refuse_bad_input_in_one_line(
    trained_project: Path, args: list[str], expected: str
) -> None:
    result = cli(*args, "-p", str(trained_project), check=False)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["card", "predict"])
def test_an_unwritable_output_path_is_bad_input(trained_project: Path, command: str) -> None:
    under_a_file = trained_project / "decisionloop.yaml" / "out.csv"
    # the project is named after its folder, "base"
    args = ["card", "base/1"] if command == "card" else ["predict", "base/1"]
    if command == "predict":
        args += ["-i", str(trained_project / "data" / "loans.csv")]
    result = cli(*args, "-o", str(under_a_file), "-p", str(trained_project), check=False)
    assert result.returncode == 2, result.stderr
    assert "cannot write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
