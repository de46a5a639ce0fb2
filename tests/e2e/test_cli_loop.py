"""The CLI end to end on a data set the code has never seen: init, run, models, predict, serve."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.datasets import loan_defaults, write

pytestmark = pytest.mark.slow


def cli(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "decisionloop", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"exit {result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loans")
    data = write(loan_defaults(), root / "input" / "loans.csv")
    folder = root / "loans-risk"
    cli("init", str(folder), "--data", str(data), "--target", "status", "--sensitive", "region")
    return folder


@pytest.fixture(scope="module")
def trained(project: Path) -> dict[str, object]:
    result = cli("run", str(project), "--json")
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_init_profiles_the_data_and_writes_the_project_file(project: Path) -> None:
    import yaml

    document = yaml.safe_load((project / "decisionloop.yaml").read_text())
    assert document["name"] == "loans-risk"
    assert document["data"]["target"] == "status"
    assert document["data"]["positive"] == "default"
    assert document["data"]["sensitive"] == ["region"]
    assert document["data"]["exclude"] == ["loan_ref"]
    columns = document["data"]["columns"]
    outliers = {"method": "iqr", "factor": 3.0, "severity": "warn"}
    assert columns["applicant_income"] == {"type": "number", "outliers": outliers}
    assert columns["age"] == {"type": "integer", "nullable": False, "outliers": outliers}
    assert columns["has_guarantor"] == {"type": "boolean", "nullable": False}
    assert columns["region"] == {
        "type": "string",
        "nullable": False,
        "allowed": ["east", "north", "south", "west"],
    }
    assert columns["loan_ref"] == {"type": "string", "nullable": False}
    assert document["gates"][0]["metric"] == "test_auc"


def test_run_json_reports_version_aliases_snapshot_and_metrics(trained: dict[str, object]) -> None:
    assert trained["model"] == "loans-risk"
    assert trained["version"] == 1
    assert trained["aliases"] == ["champion"]
    snapshot_hash = trained["snapshot_hash"]
    assert isinstance(snapshot_hash, str)
    assert len(snapshot_hash) == 64
    metrics = trained["metrics"]
    assert isinstance(metrics, dict)
    for name in ("train_auc", "test_auc", "train_accuracy", "test_accuracy", "test_log_loss"):
        assert 0.0 <= metrics[name] <= 10.0, name
    assert metrics["test_auc"] > 0.75
    assert trained["rows"] == 800


def test_models_list_and_show(project: Path, trained: dict[str, object]) -> None:
    listed = json.loads(cli("models", "list", "--json", "-p", str(project)).stdout)
    assert listed == [{"name": "loans-risk", "latest_version": 1, "aliases": {"champion": 1}}]
    shown = json.loads(
        cli("models", "show", "loans-risk@champion", "--json", "-p", str(project)).stdout
    )
    assert shown["version"] == 1
    assert shown["snapshot_hash"] == trained["snapshot_hash"]
    assert len(shown["artifact"]["sha256"]) == 64
    assert {c["name"] for c in shown["signature"]["inputs"]} == {
        "applicant_income",
        "age",
        "region",
        "has_guarantor",
        "debt_ratio",
    }
    assert shown["gates"]["passed"] is True
    table = cli("models", "show", "loans-risk", "-p", str(project)).stdout
    assert "champion" in table


def test_predict_writes_scores_for_every_row(
    project: Path, trained: dict[str, object], tmp_path: Path
) -> None:
    rows = loan_defaults(rows=50, seed=11).drop(columns=["status"])
    source = write(rows, tmp_path / "new.parquet")
    target = tmp_path / "scored.json"
    cli(
        "predict",
        "loans-risk@champion",
        "--input",
        str(source),
        "--output",
        str(target),
        "-p",
        str(project),
    )
    scored = pd.read_json(target, orient="records")
    assert len(scored) == 50
    assert scored["probability"].between(0, 1).all()
    assert set(scored["label"]) <= {"default", "repaid"}
    assert (scored["label"] == "default").tolist() == (scored["probability"] >= 0.5).tolist()
    csv_out = cli("predict", "loans-risk/1", "--input", str(source), "-p", str(project)).stdout
    from_stdout = pd.read_csv(io.StringIO(csv_out))["probability"].to_numpy()
    assert np.allclose(from_stdout, scored["probability"].to_numpy(), atol=1e-6)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_predictions_over_http(
    project: Path, trained: dict[str, object], tmp_path: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "decisionloop",
            "serve",
            "-p",
            str(project),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        instances = loan_defaults(rows=3, seed=5).drop(columns=["status"]).to_dict(orient="records")
        request = urllib.request.Request(
            f"{base}/v1/models/loans-risk/predict",
            data=json.dumps({"instances": instances}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["model"] == "loans-risk"
        assert answer["version"] == 1
        assert len(answer["request_id"]) == 32
        assert len(answer["predictions"]) == 3
        assert all(0 <= p["probability"] <= 1 for p in answer["predictions"])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
