"""`decisionloop features ...` end to end in fresh processes: plan, apply, list, materialize,
history, get and check-skew, and their errors (exit 2, one readable line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_cli_loop import cli
from tests.feature_project import write_feature_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_feature_project(tmp_path_factory.mktemp("features"))
    cli("ingest", str(folder), "--dataset", "history", "--json")
    return folder


def run_json(project: Path, *args: str) -> Any:
    return json.loads(cli(*args, "--json", "-p", str(project)).stdout)


def expect_user_error(project: Path, *args: str, message: str) -> None:
    result = cli(*args, "-p", str(project), check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_the_feature_store_from_the_command_line(project: Path) -> None:
    plan = run_json(project, "features", "plan")
    assert plan["pending"] == 6
    assert {c["action"] for c in plan["changes"]} == {"add"}
    expect_user_error(
        project, "features", "get", "churn_svc", "c002", message="is not applied as defined"
    )
    applied = run_json(project, "features", "apply")
    assert applied["pending"] == 6
    assert run_json(project, "features", "plan")["pending"] == 0
    listed = run_json(project, "features", "list")
    assert {(d["kind"], d["name"]) for d in listed} >= {
        ("feature_view", "profile"),
        ("feature_service", "churn_svc"),
    }

    materialized = run_json(project, "features", "materialize")
    assert materialized == [
        {
            "view": "profile",
            "mode": "full",
            "rows_read": 202,
            "rows_written": 200,
            "entities": 200,
            "snapshot_id": materialized[0]["snapshot_id"],
            "seconds": materialized[0]["seconds"],
        }
    ]
    assert run_json(project, "features", "materialize", "profile")[0]["mode"] == "incremental"
    history = run_json(project, "features", "history", "profile")
    assert [h["mode"] for h in history] == ["incremental", "full"]

    found = run_json(project, "features", "get", "churn_svc", "c000", '{"customer_id": "c001"}')
    assert found["features"]["customer_id"] == ["c000", "c001"]
    assert found["features"]["spend"] == [99.0, None]  # c001's row is older than the TTL
    assert found["found"] == {"profile": [True, False]}
    table = cli("features", "get", "churn_svc", "c000", "-p", str(project)).stdout
    assert "visit_band" in table
    assert "'high'" in table

    # the lookups above were logged (log_sample_rate 1.0): recomputed offline, they agree
    skew = run_json(project, "features", "check-skew", "churn_svc")
    assert skew["consistent"] is True
    assert skew["rows"] >= 3


def test_mistakes_are_one_line_errors(project: Path) -> None:
    expect_user_error(project, "features", "get", "nope", "c1", message="no feature service 'nope'")
    expect_user_error(
        project, "features", "get", "churn_svc", "{not json", message="not a JSON object"
    )
    expect_user_error(
        project, "features", "materialize", "ghost", message="no feature view 'ghost'"
    )
    expect_user_error(
        project,
        "features",
        "check-skew",
        "with_request",
        message="no logged online lookups of 'with_request'",
    )
    result = cli("ingest", str(project), "--dataset", "nothing", check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no data set 'nothing' is declared" in result.stderr


def test_a_broken_definition_names_its_key(tmp_path: Path) -> None:
    folder = write_feature_project(tmp_path / "broken")
    document = yaml.safe_load((folder / "decisionloop.yaml").read_text())
    document["features"]["views"]["profile"]["entity"] = "shopper"
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(document))
    expect_user_error(folder, "features", "plan", message="features.views.profile.entity")
    document["features"]["views"]["profile"]["entity"] = "customer"
    document["features"]["views"]["profile"]["ttl"] = "soon"
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(document))
    expect_user_error(folder, "features", "plan", message="features.views.profile.ttl")
