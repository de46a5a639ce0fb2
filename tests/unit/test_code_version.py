"""code_version: the project's git commit, ``-dirty`` with changes, None outside git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from decisionloop.pipelines.loop import code_version

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=folder, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_outside_a_repository(tmp_path: Path) -> None:
    assert code_version(tmp_path) is None
    assert code_version(tmp_path / "missing") is None


def test_commit_dirty_and_subfolders(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    assert code_version(tmp_path) is None  # no commit yet
    (tmp_path / "decisionloop.yaml").write_text("name: churn\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "project").mkdir()
    assert code_version(tmp_path) == head
    assert code_version(tmp_path / "project") == head
    (tmp_path / "decisionloop.yaml").write_text("name: changed\n")
    assert code_version(tmp_path) == f"{head}-dirty"
    _git(tmp_path, "checkout", "-q", "--", "decisionloop.yaml")
    (tmp_path / "untracked.py").write_text("x = 1\n")
    assert code_version(tmp_path) == f"{head}-dirty"
