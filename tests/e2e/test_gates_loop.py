"""Gates end to end: a worse model is blocked by the champion gate, and can never be champion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from decisionloop.errors import GateFailed
from decisionloop.platform import Platform
from tests.datasets import loan_defaults, write

pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "decisionloop", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},  # a table as wide as a wide terminal
    )


def _project(make_project: Callable[..., Path], folder: Path, exclude: list[str]) -> Path:
    data = folder.parent / "loans.csv"
    if not data.exists():
        write(loan_defaults(rows=1500), data)
    (folder / "checks.py").parent.mkdir(parents=True, exist_ok=True)
    (folder / "checks.py").write_text(
        "def has_rows(context):\n    return len(context.y_true) > 100, 'enough test rows'\n"
    )
    return make_project(
        {
            "name": "loans",
            "data": {"source": str(data), "target": "status", "exclude": ["loan_ref", *exclude]},
            "model": {"trainer": "logistic_regression"},
            "gates": [
                {"metric": "test_auc", "min": 0.55},
                {"kind": "champion", "metric": "test_auc", "margin": 0.01, "resamples": 300},
                {"kind": "overfit", "metric": "auc", "max_gap": 0.2, "severity": "warn"},
                {"kind": "calibration", "max_ece": 0.5},
                {"kind": "custom", "function": "checks:has_rows"},
            ],
        },
        folder,
    )


def test_a_worse_model_is_blocked_and_never_champion(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    folder = _project(make_project, tmp_path / "loans", [])
    first = cli("run", str(folder), "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["promoted"] is True
    champion_gate = one["gates"]["results"][1]
    assert champion_gate["passed"] is True
    assert "no @champion yet" in champion_gate["why"]
    assert "test_ece" in one["metrics"]
    assert "test_lift_at_10" in one["metrics"]

    # the same rows without the two strongest features: a clearly worse model
    _project(make_project, folder, ["debt_ratio", "applicant_income"])
    second = cli("run", str(folder), "--json")
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert two["promoted"] is False
    assert two["aliases"] == []
    blocked = two["gates"]["results"][1]
    assert blocked["kind"] == "champion"
    assert blocked["passed"] is False
    assert blocked["details"]["champion_version"] == 1
    assert blocked["details"]["high"] < -0.01
    assert "worse than @champion" in blocked["why"]
    assert two["gates"]["blocking_failures"] == [blocked["why"]]

    shown = cli("gates", "show", "loans/2", "--project", str(folder))
    assert shown.returncode == 0, shown.stderr
    assert "worse than" in shown.stdout
    assert "blocked" in shown.stdout
    for kind in ("threshold", "champion", "overfit", "calibration", "custom"):
        assert kind in shown.stdout
    as_json = json.loads(cli("gates", "show", "loans@champion", "-p", str(folder), "--json").stdout)
    assert (as_json["version"], as_json["passed"]) == (1, True)
    assert len(as_json["results"]) == 5

    with Platform.open(folder) as platform:
        with pytest.raises(GateFailed) as info:
            platform.set_alias("loans", "champion", 2)
        assert "worse than @champion" in info.value.message
        assert "decisionloop gates show loans/2" in info.value.hint
        with pytest.raises(GateFailed):  # the metadata path refuses it too
            platform.metadata.models.set_alias("loans", "champion", 2, actor="test")
        assert platform.get_version("loans@champion").version == 1
        platform.set_alias("loans", "challenger", 2)  # other aliases are allowed
        _, report = platform.gate_report("loans@challenger")
        assert report["passed"] is False

    missing = cli("gates", "show", "loans/9", "-p", str(folder))
    assert missing.returncode == 2
    assert "error:" in missing.stderr


def test_an_unfair_model_is_blocked_by_the_fairness_gate(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    """The label depends on the sensitive column itself, so the model selects one region far
    more often than the others: the statistical parity ratio gate blocks it and says why,
    and the stored report fills the version's card."""
    import numpy as np

    frame = loan_defaults(rows=1500)
    rng = np.random.default_rng(3)
    favoured = frame["region"] == "north"
    frame["status"] = np.where(favoured | (rng.random(len(frame)) < 0.05), "default", "repaid")
    data = write(frame, tmp_path / "loans.csv")
    folder = make_project(
        {
            "name": "loans",
            "data": {
                "source": str(data),
                "target": "status",
                "positive": "default",
                "exclude": ["loan_ref"],
                "sensitive": ["region"],
            },
            "model": {"params": {"n_estimators": 50}},
            "gates": [
                {"metric": "test_auc", "min": 0.6},
                {
                    "kind": "fairness",
                    "column": "region",
                    "measure": "statistical_parity_ratio",
                    "min": 0.8,
                },
                {"kind": "drift", "max_share": 0.5, "severity": "warn"},
            ],
        },
        tmp_path / "loans",
    )
    with Platform.open(folder) as platform:
        result = platform.run()
        assert result.promoted is False
        (why,) = result.gates["blocking_failures"]
        assert "statistical_parity_ratio" in why
        fairness = next(r for r in result.gates["results"] if r["kind"] == "fairness")
        assert fairness["passed"] is False
        assert fairness["value"] < 0.8
        drift = next(r for r in result.gates["results"] if r["kind"] == "drift")
        assert drift["severity"] == "warn"
        with pytest.raises(GateFailed):
            platform.set_alias("loans", "champion", result.version)

    shown = cli("card", f"loans/{result.version}", "--format", "md", "--project", str(folder))
    assert shown.returncode == 0, shown.stderr
    assert "Statistical Parity" in shown.stdout or "statistical parity" in shown.stdout.lower()
