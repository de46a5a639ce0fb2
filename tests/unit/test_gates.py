"""Gate kinds: threshold, overfit, champion, calibration, fairness, drift and custom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from decisionloop.config import GateSpec, load_settings
from decisionloop.errors import InvalidConfig
from decisionloop.evaluation.gates import (
    ChampionScores,
    GateContext,
    check_gates,
    drift_gate,
    evaluate_gates,
    fairness_gate,
    load_gate_function,
)
from decisionloop.evaluation.metrics import gate_metric_names

METRICS = {"train_auc": 0.99, "test_auc": 0.80, "train_log_loss": 0.1, "test_log_loss": 0.4}


def _context(rows: int = 1500, seed: int = 0) -> GateContext:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    scores = np.clip(0.4 * y + 0.6 * rng.uniform(size=rows), 0, 1)
    return GateContext(metrics=METRICS, y_true=y, scores=scores)


def test_old_project_files_without_kind_still_load(tmp_path: Path) -> None:
    (tmp_path / "decisionloop.yaml").write_text(
        yaml.safe_dump({"gates": [{"metric": "test_auc", "min": 0.8, "severity": "warn"}]})
    )
    (gate,) = load_settings(tmp_path).gates
    assert (gate.kind, gate.metric, gate.min, gate.severity) == (
        "threshold",
        "test_auc",
        0.8,
        "warn",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "overfit", "metric": "auc"}, "needs `max_gap`"),
        ({"kind": "calibration"}, "needs `max_ece`"),
        ({"kind": "drift", "max_share": 0.3, "metric": "test_auc"}, "`metric` does not apply"),
        ({"kind": "custom", "function": "no colon"}, "module:function"),
        ({"kind": "fairness", "column": "sex", "measure": "disparate_impact"}, "`min` or `max`"),
    ],
)
def test_wrong_gate_keys_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GateSpec(**spec)  # type: ignore[arg-type]


def test_threshold_failure_says_why() -> None:
    report = evaluate_gates([GateSpec(metric="test_auc", min=0.85)], METRICS)
    (result,) = report.results
    assert report.passed is False
    assert result.why == "test_auc is 0.8000, below the minimum 0.85"
    assert report.to_dict()["blocking_failures"] == [result.why]


def test_overfit_gate_uses_the_oriented_gap() -> None:
    failing = evaluate_gates([GateSpec(kind="overfit", metric="auc", max_gap=0.1)], METRICS)
    assert failing.passed is False
    assert failing.results[0].value == pytest.approx(0.19)
    assert "overfits" in failing.results[0].why
    passing = evaluate_gates([GateSpec(kind="overfit", metric="test_auc", max_gap=0.2)], METRICS)
    assert passing.passed is True
    # log loss: lower is better, so the gap is test - train
    loss = evaluate_gates([GateSpec(kind="overfit", metric="log_loss", max_gap=0.2)], METRICS)
    assert loss.results[0].value == pytest.approx(0.3)
    assert loss.passed is False


def test_calibration_gate_passes_and_fails() -> None:
    context = _context()
    from decisionloop.evaluation.calibration import expected_calibration_error

    ece = expected_calibration_error(context.y_true, context.scores)
    ok = evaluate_gates(
        [GateSpec(kind="calibration", max_ece=ece + 0.01)], METRICS, context=context
    )
    bad = evaluate_gates([GateSpec(kind="calibration", max_ece=ece / 2)], METRICS, context=context)
    assert ok.passed is True
    assert bad.passed is False
    assert bad.results[0].value == pytest.approx(ece)
    assert "miscalibrated" in bad.results[0].why


def test_champion_gate_blocks_a_worse_candidate_and_passes_without_champion() -> None:
    context = _context()
    rng = np.random.default_rng(5)
    strong = np.clip(0.6 * context.y_true + 0.4 * rng.uniform(size=len(context.y_true)), 0, 1)
    gate = GateSpec(kind="champion", metric="test_auc", margin=0.01, resamples=300)

    blocked = evaluate_gates([gate], METRICS, context=context, champion=ChampionScores(3, strong))
    (result,) = blocked.results
    assert blocked.passed is False
    assert result.details["champion_version"] == 3
    assert result.details["high"] < -0.01
    assert "worse than @champion" in result.why
    assert "version 3" in result.why

    alone = evaluate_gates(
        [gate], METRICS, context=context, champion=ChampionScores(None, note="no @champion yet")
    )
    assert alone.passed is True
    assert alone.results[0].why == "no @champion yet: passes"

    weaker = np.clip(0.2 * context.y_true + 0.8 * rng.uniform(size=len(context.y_true)), 0, 1)
    better = evaluate_gates([gate], METRICS, context=context, champion=ChampionScores(2, weaker))
    assert better.passed is True
    assert better.results[0].value > 0


FAIRNESS = {
    "columns": {
        "senior_citizen": {
            "statistical_parity_ratio": 0.62,
            "between": {"equalized_odds_difference": 0.05},
        },
        "gender": {"statistical_parity_ratio": 0.95},
    }
}


def test_fairness_gate_reads_the_report_by_key_path() -> None:
    unfair = GateSpec(
        kind="fairness", column="senior_citizen", measure="statistical_parity_ratio", min=0.8
    )
    result = fairness_gate(unfair, FAIRNESS)
    assert result.passed is False
    assert result.value == pytest.approx(0.62)
    assert "below 0.8: unfair" in result.why
    nested = GateSpec(
        kind="fairness",
        column="senior_citizen",
        measure="between.equalized_odds_difference",
        max=0.1,
    )
    assert fairness_gate(nested, FAIRNESS).passed is True
    assert fairness_gate(unfair, None).passed is False
    missing = GateSpec(
        kind="fairness", column="region", measure="statistical_parity_ratio", min=0.8
    )
    assert "no column 'region'" in fairness_gate(missing, FAIRNESS).why
    report = evaluate_gates([unfair], METRICS, reports={"fairness": FAIRNESS})
    assert report.passed is False


def test_drift_gate_uses_the_share_or_counts_drifted_columns() -> None:
    gate = GateSpec(kind="drift", max_share=0.3, severity="warn")
    columns = {"a": {"drifted": True}, "b": {"drifted": False}, "c": {"drifted": True}}
    counted = drift_gate(gate, {"columns": columns})
    assert counted.value == pytest.approx(2 / 3)
    assert counted.passed is False
    assert "(a, c)" in counted.why
    assert drift_gate(gate, {"share": 0.1, "columns": columns}).passed is True
    # a warn gate reports the failure without blocking
    assert evaluate_gates([gate], METRICS, reports={"drift": {"columns": columns}}).passed is True


def _write_checks(folder: Path) -> None:
    (folder / "checks.py").write_text(
        "def enough_rows(context):\n"
        "    n = len(context.y_true)\n"
        "    return n >= 1000, f'{n} test rows'\n"
        "def strict(context):\n"
        "    return context.metrics['test_auc'] > 0.9, 'test AUC must beat 0.9'\n"
        "def broken(context):\n"
        "    raise RuntimeError('boom')\n"
    )


def test_custom_gate_passes_fails_and_fails_closed(tmp_path: Path) -> None:
    _write_checks(tmp_path)
    context = _context()
    gates = [
        GateSpec(kind="custom", function="checks:enough_rows"),
        GateSpec(kind="custom", function="checks:strict"),
        GateSpec(kind="custom", function="checks:broken", severity="warn"),
    ]
    report = evaluate_gates(gates, METRICS, context=context, project_dir=tmp_path)
    assert [r.passed for r in report.results] == [True, False, False]
    assert report.results[0].why == "1500 test rows"
    assert report.results[1].why == "test AUC must beat 0.9"
    assert report.results[2].why == "checks:broken raised RuntimeError: boom"
    assert report.passed is False
    assert report.to_dict()["blocking_failures"] == ["test AUC must beat 0.9"]


def test_custom_gate_is_loaded_only_from_the_project_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"no os\.py") as info:
        load_gate_function("os:getcwd", tmp_path)  # never the standard library
    assert "create os.py" in info.value.hint
    _write_checks(tmp_path)
    with pytest.raises(InvalidConfig, match="no function 'missing'"):
        load_gate_function("checks:missing", tmp_path)
    outside = tmp_path.parent / f"outside_{tmp_path.name}.py"
    outside.write_text("def check(context):\n    return True, 'ok'\n")
    (tmp_path / "linked.py").symlink_to(outside)
    with pytest.raises(InvalidConfig, match="outside the project folder"):
        load_gate_function("linked:check", tmp_path)


def test_check_gates_refuses_before_training(tmp_path: Path) -> None:
    known = gate_metric_names("classification")
    check_gates([GateSpec(metric="test_ece", max=0.1)], known)
    with pytest.raises(InvalidConfig, match=r"gates\.0\.metric"):
        check_gates([GateSpec(kind="overfit", metric="ece", max_gap=0.1)], known)
    with pytest.raises(InvalidConfig, match="cannot compare"):
        check_gates(
            [GateSpec(kind="champion", metric="test_lift_at_10")], known, task="classification"
        )
    with pytest.raises(InvalidConfig, match="needs a classifier"):
        check_gates(
            [GateSpec(kind="calibration", max_ece=0.1)],
            gate_metric_names("regression"),
            task="regression",
        )
    with pytest.raises(InvalidConfig, match=r"gates\.0\.function"):
        check_gates([GateSpec(kind="custom", function="checks:x")], known, project_dir=tmp_path)


def test_report_gates_read_the_list_shaped_reports() -> None:
    fairness = {"columns": [{"column": "senior_citizen", "disparate_impact": 0.7}]}
    gate = GateSpec(kind="fairness", column="senior_citizen", measure="disparate_impact", min=0.8)
    assert fairness_gate(gate, fairness).value == pytest.approx(0.7)
    drift = {"share_drifted": 0.5, "columns": [{"column": "tenure", "drifted": True}]}
    result = drift_gate(GateSpec(kind="drift", max_share=0.3), drift)
    assert result.value == pytest.approx(0.5)
    assert "(tenure)" in result.why
