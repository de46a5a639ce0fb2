"""`decisionloop demo` end to end: the whole loop on the Telco data, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_runs_the_loop_and_writes_the_model_card(tmp_path: Path) -> None:
    folder = tmp_path / "telco"
    done = subprocess.run(
        [sys.executable, "-m", "decisionloop", "demo", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    # the customers' validation report, with the planted bad records quarantined (7,043
    # current profiles, older and newer ones of the synthetic history, 4 bad records)
    assert "10178 in = 10174 stored + 4 quarantined + 0 skipped" in out
    # scored by id: the features come from the online store through the feature service
    assert "their features looked up online by id" in out
    assert '"customer_id": "C' in out
    assert "gates passed, aliases: @champion" in out
    assert '"predictions"' in out
    card = (folder / "churn-model-card.html").read_text(encoding="utf-8")
    assert card.startswith("<!DOCTYPE html>")
    assert "retrain if test AUC &lt; 0.80" in card or "retrain if test AUC < 0.80" in card
