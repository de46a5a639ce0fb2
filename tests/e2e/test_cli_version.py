"""`decisionloop --version` answers from a fresh process without loading the heavy stack."""

from __future__ import annotations

import json
import subprocess
import sys

from decisionloop import __version__

HEAVY = ("pandas", "xgboost", "duckdb", "sqlalchemy")


def test_version_prints_the_version_and_exits_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "decisionloop", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"decisionloop {__version__}\n"
    assert proc.stderr == ""


def test_version_wins_over_a_missing_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "decisionloop", "--debug", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, f"decisionloop {__version__}\n")


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (
        "import json, sys; import decisionloop.cli.main; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
