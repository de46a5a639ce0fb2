"""A real `mlflow server` for the export tests, from its own virtual environment.

MLflow's pins clash with ours, so it lives in ``.venvs/mlflow`` (git-ignored), built once per
machine by ``make mlflow-venv`` (which ``make test`` runs) or, failing that, here. The server
runs on SQLite on a free loopback port, in its own process group, stopped after the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MLFLOW_VENV = REPO / ".venvs" / "mlflow"
#: the same requirement as the Makefile's mlflow-venv target
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
#: the machine may be offline: keep MLflow's telemetry from trying the network
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


class MLflowUnavailable(Exception):
    """MLflow's venv could not be built or its server did not start (the reason is the text)."""


def ensure_mlflow_venv() -> Path:
    """The ``mlflow`` executable of ``.venvs/mlflow``, built here if ``make`` has not yet."""
    executable = MLFLOW_VENV / "bin" / "mlflow"
    stamp = MLFLOW_VENV / ".installed"
    if executable.exists() and stamp.exists():
        return executable
    python = MLFLOW_VENV / "bin" / "python"
    steps = [
        [shutil.which("python3") or sys.executable, "-m", "venv", str(MLFLOW_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", MLFLOW_REQUIREMENT],
    ]
    for step in steps:
        try:
            subprocess.run(step, check=True, capture_output=True, text=True, timeout=900)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()[-3:]
            raise MLflowUnavailable(
                f"could not build {MLFLOW_VENV} (`make mlflow-venv`): {' '.join(detail)}"
            ) from exc
    stamp.write_text(MLFLOW_REQUIREMENT + "\n")
    return executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def mlflow_server(folder: Path, *, startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Start ``mlflow server`` on SQLite in ``folder``; yield its URL; stop it after."""
    executable = ensure_mlflow_venv()
    port = free_port()
    log_path = folder / "mlflow-server.log"
    command = [
        str(executable),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root",
        str(folder / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={**os.environ, **QUIET_ENV},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log_path, startup_timeout_s)
        yield url
    finally:
        _stop(process)


def _wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MLflowUnavailable(f"mlflow server exited: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    _stop(process)
    raise MLflowUnavailable(f"mlflow server did not answer in {timeout_s:.0f}s: {_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server's process group (its workers and job runner included)."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:])


def rest(url: str, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
    """Read back through MLflow's REST API, independently of DecisionLoop's client."""
    target = f"{url}/api/2.0/mlflow/{endpoint}"
    data = None
    if method == "GET" and body:
        target += "?" + urllib.parse.urlencode(body)
    elif body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        target, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())
