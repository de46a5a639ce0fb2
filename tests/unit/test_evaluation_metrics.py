"""Calibration, lift/gains and bootstrap intervals, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from decisionloop.errors import Invalid
from decisionloop.evaluation.bootstrap import (
    bootstrap_interval,
    paired_difference,
    resample_counts,
    weighted_metric,
)
from decisionloop.evaluation.calibration import (
    expected_calibration_error,
    lift_and_gains,
    reliability_curve,
)
from decisionloop.evaluation.metrics import binary_metrics


def _data(rows: int = 2000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    proba = np.clip(0.35 * y + 0.65 * rng.uniform(size=rows), 0, 1).round(2)  # with ties
    return y, proba


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_matches_sklearn(strategy: str) -> None:
    y, proba = _data()
    curve = reliability_curve(y, proba, bins=8, strategy=strategy)  # type: ignore[arg-type]
    true, predicted = calibration_curve(y, proba, n_bins=8, strategy=strategy)
    np.testing.assert_allclose(curve.fraction_positive, true, atol=1e-9)
    np.testing.assert_allclose(curve.mean_predicted, predicted, atol=1e-9)
    assert curve.counts.sum() == len(y)


def test_ece_is_the_weighted_gap_of_the_curve() -> None:
    y, proba = _data()
    true, predicted = calibration_curve(y, proba, n_bins=10)
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], proba))
    counts = counts[counts > 0]
    expected = float(np.sum(counts / len(y) * np.abs(true - predicted)))
    assert expected_calibration_error(y, proba) == pytest.approx(expected, abs=1e-12)
    # a perfectly calibrated constant has no gap
    assert expected_calibration_error(np.array([0, 1, 0, 1]), np.full(4, 0.5)) == 0.0


def test_lift_and_gains_hand_computed() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    proba = np.linspace(1, 0, 10)  # rows ranked in order
    result = lift_and_gains(y, proba, (10, 20, 50))
    assert result["gains_at_10"] == pytest.approx(1 / 3)
    assert result["gains_at_20"] == pytest.approx(2 / 3)
    assert result["lift_at_20"] == pytest.approx(1.0 / 0.3)
    assert result["gains_at_50"] == pytest.approx(2 / 3)
    assert result["lift_at_50"] == pytest.approx((2 / 5) / 0.3)


def test_binary_metrics_match_sklearn() -> None:
    y, proba = _data()
    metrics = binary_metrics(y, proba, threshold=0.5)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, proba), abs=1e-9)
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, proba), abs=1e-9)
    clipped = np.clip(proba, 1e-7, 1 - 1e-7)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, clipped), abs=1e-9)


@pytest.mark.parametrize("name", ["auc", "brier", "log_loss", "accuracy", "f1", "ece"])
def test_weighted_metrics_equal_the_metric_on_a_materialised_resample(name: str) -> None:
    y, proba = _data(rows=500)
    f = weighted_metric(name, threshold=0.5)
    counts = next(resample_counts(len(y), 4, seed=7))
    reference = {
        "auc": roc_auc_score,
        "brier": brier_score_loss,
        "log_loss": lambda t, p: log_loss(t, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]),
        "accuracy": lambda t, p: binary_metrics(t, p, threshold=0.5)["accuracy"],
        "f1": lambda t, p: binary_metrics(t, p, threshold=0.5)["f1"],
    }
    values = f(y.astype("float64"), proba, counts)
    for row in range(4):
        index = np.repeat(np.arange(len(y)), counts[row].astype(int))
        if name == "ece":  # fixed uniform bins: the ECE of the drawn rows
            expected = expected_calibration_error(y[index], proba[index])
        else:
            expected = reference[name](y[index], proba[index])
        assert values[row] == pytest.approx(expected, abs=1e-9)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    y, proba = _data()
    first = bootstrap_interval(y, proba, "test_auc", resamples=300, seed=3)
    again = bootstrap_interval(y, proba, "auc", resamples=300, seed=3)
    other = bootstrap_interval(y, proba, "auc", resamples=300, seed=4)
    assert first == again
    assert first != other
    assert first.estimate == pytest.approx(roc_auc_score(y, proba), abs=1e-9)
    assert first.low < first.estimate < first.high
    assert first.high - first.low < 0.06


def test_regression_bootstrap() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=400)
    predicted = y + rng.normal(scale=0.3, size=400)
    interval = bootstrap_interval(y, predicted, "r2", task="regression", resamples=200)
    assert interval.low < interval.estimate < interval.high
    assert interval.estimate == pytest.approx(
        1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2)
    )


def test_paired_difference_sees_a_worse_model() -> None:
    y, proba = _data()
    noise = np.random.default_rng(9).uniform(size=len(y))
    worse = 0.3 * proba + 0.7 * noise
    diff = paired_difference(y, worse, proba, "auc", resamples=300)
    assert diff.high < 0
    same = paired_difference(y, proba, proba, "auc", resamples=100)
    assert same.low == same.high == 0.0
    # lower-is-better metrics are turned around: positive still means better
    better = paired_difference(y, proba, worse, "brier", lower_is_better=True, resamples=200)
    assert better.low > 0


def test_unknown_bootstrap_metric_is_invalid() -> None:
    with pytest.raises(Invalid, match="no bootstrap"):
        weighted_metric("lift_at_10")
    with pytest.raises(Invalid, match="resamples"):
        bootstrap_interval(np.array([0, 1]), np.array([0.2, 0.8]), "auc", resamples=0)
