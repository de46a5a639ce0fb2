"""`decisionloop export mlflow` against a real `mlflow server` (its own venv, SQLite, a free port).

What is exported is read back through MLflow's REST API and compared with DecisionLoop's
records: params, every metric step, tags, status, times, the model version, its tags and aliases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from decisionloop.backends.metadata.records import ModelVersion, Run
from decisionloop.platform import Platform
from decisionloop.project import init_project
from tests.conftest import unavailable
from tests.datasets import loan_defaults, write
from tests.mlflow_server import MLflowUnavailable, free_port, mlflow_server, rest

pytestmark = pytest.mark.slow
NAME = "loans-export"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "decisionloop", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def export_json(project: Path, url: str, *args: str) -> dict[str, Any]:
    result = cli("export", "mlflow", "--tracking-uri", url, "-p", str(project), "--json", *args)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project trained twice: two runs with learning curves, two versions, a champion."""
    root = tmp_path_factory.mktemp("export")
    data = write(loan_defaults(), root / "input" / "loans.csv")
    folder = root / NAME
    init_project(folder, data=data, target="status", name=NAME)
    with Platform.open(folder) as platform:
        platform.run()
        platform.run()
    return folder


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
            yield url
    except MLflowUnavailable as exc:
        unavailable(f"MLflow server: {exc}")


def champion(project: Path) -> tuple[ModelVersion, Run, list[Any]]:
    with Platform.open(project) as platform:
        version = platform.get_version(f"{NAME}@champion")
        assert version.run_id is not None
        run = platform.runs.get(version.run_id)
        return version, run, platform.runs.metric_history(run.id)


def dotted(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys, as MLflow shows them."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def mlflow_runs_of(url: str, run_id: str) -> list[dict[str, Any]]:
    experiment = rest(url, "GET", "experiments/get-by-name", {"experiment_name": NAME})
    found = rest(
        url,
        "POST",
        "runs/search",
        {
            "experiment_ids": [experiment["experiment"]["experiment_id"]],
            "filter": f"tags.`decisionloop.run_id` = '{run_id}'",
        },
    )
    return list(found.get("runs", []))


def mlflow_history(url: str, mlflow_run_id: str, key: str) -> list[tuple[int, float]]:
    answer = rest(url, "GET", "metrics/get-history", {"run_id": mlflow_run_id, "metric_key": key})
    return sorted((int(m.get("step", 0)), float(m["value"])) for m in answer["metrics"])


def mlflow_versions(url: str) -> list[dict[str, Any]]:
    answer = rest(url, "GET", "model-versions/search", {"filter": f"name = '{NAME}'"})
    return list(answer.get("model_versions", []))


def mlflow_aliases(url: str) -> dict[str, str]:
    model = rest(url, "GET", "registered-models/get", {"name": NAME})["registered_model"]
    return {a["alias"]: a["version"] for a in model.get("aliases", [])}


def test_export_run_and_champion_read_back(project: Path, mlflow_url: str) -> None:
    version, run, history = champion(project)
    summary = export_json(project, mlflow_url, "--runs", run.id, "--models", f"{NAME}@champion")

    assert [r["run_id"] for r in summary["runs"]] == [run.id]
    assert summary["runs"][0]["created"] is True
    exported = summary["model_versions"]
    assert [(v["model"], v["version"], v["aliases"]) for v in exported] == [
        (NAME, version.version, ["champion"])
    ]

    # the run: one MLflow run, its params, every metric step, tags, status and times
    (found,) = mlflow_runs_of(mlflow_url, run.id)
    info, data = found["info"], found["data"]
    assert info["run_id"] == summary["runs"][0]["mlflow_run_id"]
    assert info["status"] == "FINISHED"
    assert info["start_time"] == round(run.started_at.timestamp() * 1000)
    assert run.ended_at is not None
    assert info["end_time"] == round(run.ended_at.timestamp() * 1000)
    params = {p["key"]: p["value"] for p in data["params"]}
    expected_params = dotted(run.params)
    assert set(params) == set(expected_params)
    for key, value in expected_params.items():
        assert (params[key] if isinstance(value, str) else json.loads(params[key])) == value, key
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["decisionloop.run_id"] == run.id
    assert tags["decisionloop.model"] == NAME
    assert tags["decisionloop.snapshot_id"] == run.snapshot_id
    assert tags["trainer"] == run.tags["trainer"]
    assert run.environment is not None
    assert tags["decisionloop.environment.python"] == run.environment["python"]
    assert tags["decisionloop.environment.lock_hash"] == run.environment["lock_hash"]
    packages = "".join(v for k, v in sorted(tags.items()) if k.startswith("decisionloop.env"))
    assert "pandas==" in packages
    if run.code_version:
        assert tags["decisionloop.code_version"] == run.code_version

    curves = {p.key for p in history if p.step > 0}
    assert curves, "the trained run has per-step metrics"
    for key in {p.key for p in history}:
        expected = sorted((p.step, p.value) for p in history if p.key == key)
        assert mlflow_history(mlflow_url, info["run_id"], key) == expected, key
    latest = {m["key"]: m["value"] for m in data["metrics"]}
    assert latest["test_auc"] == pytest.approx(run.metrics["test_auc"])
    assert set(latest) == set(run.metrics) | {p.key for p in history}

    # the version: a catalog entry pointing at the DecisionLoop manifest, tagged, aliased
    (mlflow_version,) = mlflow_versions(mlflow_url)
    assert mlflow_version["run_id"] == info["run_id"]
    assert mlflow_version["source"].startswith("decisionloop-file:///")
    assert mlflow_version["source"].endswith("/" + version.artifact_key)
    version_tags = {t["key"]: t["value"] for t in mlflow_version["tags"]}
    assert version_tags["decisionloop.version"] == str(version.version)
    assert version_tags["decisionloop.status"] == version.status
    assert version_tags["decisionloop.artifact_sha256"] == version.artifact_sha256
    assert version_tags["decisionloop.gate_passed"] == "true"
    assert float(version_tags["decisionloop.metric.test_auc"]) == version.metrics["test_auc"]
    assert mlflow_aliases(mlflow_url) == {"champion": mlflow_version["version"]}


def test_reexport_updates_and_does_not_duplicate(project: Path, mlflow_url: str) -> None:
    version, run, history = champion(project)
    export_json(project, mlflow_url, "--runs", run.id, "--models", f"{NAME}@champion")
    with Platform.open(project) as platform:
        runs = platform.runs.list(NAME)
        versions = platform.list_versions(NAME)
        other = next(v for v in versions if v.version != version.version)
        platform.set_description(f"{NAME}/{version.version}", "the first champion")

    first = export_json(project, mlflow_url)  # everything
    second = export_json(project, mlflow_url)
    assert len(first["runs"]) == len(runs) == 2
    created = {r["run_id"]: r["created"] for r in first["runs"]}
    assert created[run.id] is False  # exported by the earlier call
    assert second["created"] == {"runs": 0, "model_versions": 0}
    assert all(r["metrics_logged"] == 0 and r["params_logged"] == 0 for r in second["runs"])
    for each in runs:
        assert len(mlflow_runs_of(mlflow_url, each.id)) == 1
    (found,) = mlflow_runs_of(mlflow_url, run.id)
    for key in {p.key for p in history}:
        assert len(mlflow_history(mlflow_url, found["info"]["run_id"], key)) == len(
            [p for p in history if p.key == key]
        )
    exported = mlflow_versions(mlflow_url)
    by_number = {
        next(t["value"] for t in v["tags"] if t["key"] == "decisionloop.version"): v
        for v in exported
    }
    assert sorted(by_number) == sorted(str(v.version) for v in versions)
    assert by_number[str(version.version)]["description"] == "the first champion"

    # the alias follows DecisionLoop's: moved, it moves; deleted, it goes
    with Platform.open(project) as platform:
        platform.set_alias(NAME, "challenger", other.version)
    export_json(project, mlflow_url, "--models", NAME)
    aliases = mlflow_aliases(mlflow_url)
    assert aliases["challenger"] == by_number[str(other.version)]["version"]
    assert aliases["champion"] == by_number[str(version.version)]["version"]


def test_unreachable_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(cli("export", "mlflow", "--tracking-uri", closed, "-p", str(tmp_path)))
    assert "unreachable" in line
    assert closed in line


def test_server_error_answer_is_one_line_and_exit_2(project: Path, mlflow_url: str) -> None:
    result = cli(
        "export", "mlflow", "--tracking-uri", f"{mlflow_url}/not-mlflow", "-p", str(project)
    )
    line = one_error_line(result)
    assert "404" in line


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "who are you?"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A stand-in that records the Authorization header and answers 401."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_credentials_come_from_mlflow_environment_variables(
    refusing_server: str, tmp_path: Path
) -> None:
    args = ("export", "mlflow", "--tracking-uri", refusing_server, "-p", str(tmp_path))
    line = one_error_line(cli(*args, env={"MLFLOW_TRACKING_TOKEN": "s3cret"}))
    assert "who are you?" in line
    assert "MLFLOW_TRACKING_TOKEN" in line  # the hint
    basic = {"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "pw"}
    one_error_line(cli(*args, env=basic))
    assert _Recorder.seen == ["Bearer s3cret", "Basic YWRhOnB3"]
