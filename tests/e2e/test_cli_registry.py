"""The registry and run commands end to end: history, status, tags, search, diff, runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.datasets import loan_defaults, write
from tests.e2e.test_cli_loop import cli

pytestmark = pytest.mark.slow
NAME = "loans-registry"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    data = write(loan_defaults(), root / "input" / "loans.csv")
    folder = root / NAME
    cli("init", str(folder), "--data", str(data), "--target", "status")
    cli("run", str(folder), "--json")
    cli("run", str(folder), "--json")
    return folder


def run_json(project: Path, *args: str) -> Any:
    return json.loads(cli(*args, "--json", "-p", str(project)).stdout)


def expect_user_error(project: Path, *args: str, message: str) -> str:
    result = cli(*args, "-p", str(project), check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    return lines[0]


def test_runs_list_show_and_compare(project: Path) -> None:
    runs = run_json(project, "runs", "list", "--model", NAME)
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert all(r["duration_seconds"] >= 0 for r in runs)
    newest, oldest = runs[0]["id"], runs[1]["id"]
    shown = run_json(project, "runs", "show", newest[:10])
    assert shown["id"] == newest
    assert shown["params"] == runs[0]["params"]
    assert shown["metrics"]["test_auc"] > 0.5
    assert isinstance(shown["metric_history"], list)
    compared = run_json(project, "runs", "compare", oldest, newest)
    assert compared["runs"] == [oldest, newest]
    assert set(compared["metrics"]) >= {"test_auc", "train_auc"}
    assert len(compared["metrics"]["test_auc"]) == 2
    assert run_json(project, "runs", "list", "--status", "failed") == []
    table = cli("runs", "list", "-p", str(project)).stdout
    assert newest[:12] in table
    expect_user_error(project, "runs", "list", "--status", "done", message="unknown run status")
    expect_user_error(project, "runs", "compare", newest, message="two or more runs")
    expect_user_error(project, "runs", "show", "0" * 32, message="no run")


def test_alias_history_and_alias_at(project: Path) -> None:
    history = run_json(project, "models", "history", f"{NAME}@champion")
    assert [(e["version"], e["previous_version"]) for e in history] == [(1, None), (2, 1)]
    at_first = history[0]["at"]
    answer = run_json(project, "models", "history", f"{NAME}@champion", "--at", at_first)
    assert answer["version"] == 1
    before = run_json(project, "models", "history", f"{NAME}@champion", "--at", "2001-01-01")
    assert before["version"] is None
    text = cli("models", "history", f"{NAME}@champion", "-p", str(project)).stdout
    assert "@champion" in text
    expect_user_error(
        project, "models", "history", f"{NAME}@champion", "--at", "yesterday", message="not a date"
    )


def test_status_tag_describe_and_search(project: Path) -> None:
    moved = run_json(project, "models", "status", f"{NAME}/1", "staging", "--reason", "review")
    assert (moved["from"], moved["to"], moved["reason"]) == ("candidate", "staging", "review")
    line = expect_user_error(
        project, "models", "status", f"{NAME}/2", "production", message="cannot move to"
    )
    assert "hint: from candidate a version may move to: staging, archived" in line
    expect_user_error(project, "models", "status", f"{NAME}/2", "shipped", message="unknown")

    cli("models", "tag", f"{NAME}/1", "team=growth", "owner=ana", "-p", str(project))
    cli("models", "tag", NAME, "domain=credit", "-p", str(project))
    cli("models", "describe", f"{NAME}/1", "the first loans model", "-p", str(project))
    shown = run_json(project, "models", "show", f"{NAME}/1")
    assert user_tags(shown) == {"team": "growth", "owner": "ana"}
    assert (shown["status"], shown["description"]) == ("staging", "the first loans model")

    def versions(*args: str) -> list[int]:
        return [v["version"] for v in run_json(project, "models", "search", *args)]

    assert versions("--tag", "team=growth") == [1]
    assert versions(NAME, "--status", "staging") == [1]
    assert versions(NAME, "--metric", "test_auc>=0") == [2, 1]
    assert versions(NAME, "--metric", "test_auc>1") == []
    assert versions(NAME, "--tag", "team=growth", "--status", "candidate") == []
    cli("models", "tag", f"{NAME}/1", "--delete", "owner", "-p", str(project))
    assert user_tags(run_json(project, "models", "show", f"{NAME}/1")) == {"team": "growth"}
    expect_user_error(project, "models", "search", "--metric", "auc>>1", message="metric filter")
    expect_user_error(project, "models", "tag", f"{NAME}/1", "novalue", message="not a tag")
    expect_user_error(project, "models", "tag", f"{NAME}/9", "a=b", message="no version 9")


def test_models_diff(project: Path) -> None:
    diff = run_json(project, "models", "diff", f"{NAME}/1", f"{NAME}/2")
    assert (diff["a"], diff["b"]) == (f"{NAME}/1", f"{NAME}/2")
    assert "test_auc" in diff["metrics"]
    # the same data and project trained twice: same snapshot, same features
    assert diff["snapshot"] is None
    assert (diff["features_added"], diff["features_removed"]) == ([], [])
    table = cli("models", "diff", f"{NAME}/1", f"{NAME}@champion", "-p", str(project)).stdout
    assert "metric test_auc" in table
    expect_user_error(project, "models", "diff", f"{NAME}/1", "bad ref!", message="not a model")


def user_tags(shown: dict[str, Any]) -> dict[str, str]:
    """A version's tags without the system's own (``decisionloop.*``, set by the loop)."""
    return {k: v for k, v in shown["tags"].items() if not k.startswith("decisionloop.")}
