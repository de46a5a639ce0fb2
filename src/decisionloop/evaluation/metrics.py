"""Binary classification and regression metrics, computed the same way for every surface."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def binary_metrics(y_true: np.ndarray, proba: np.ndarray, *, threshold: float) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (proba >= threshold).astype(int)
    clipped = np.clip(proba, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y_true, proba)),
        "positive_rate": float(np.mean(y_true)),
    }


BINARY_METRICS = (
    "auc",
    "accuracy",
    "log_loss",
    "precision",
    "recall",
    "f1",
    "brier",
    "positive_rate",
)


REGRESSION_METRICS = ("rmse", "mae", "r2")

#: the metric a new project gates on, per task (higher is better for both)
DEFAULT_GATE_METRIC = {"classification": "test_auc", "regression": "test_r2"}


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Root mean squared error, mean absolute error and R² (1 - SSE / total sum of squares)."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, predicted))),
        "mae": float(mean_absolute_error(y_true, predicted)),
        "r2": float(r2_score(y_true, predicted)),
    }


def metric_names(task: str = "classification") -> list[str]:
    """Every metric name the loop records for a task, e.g. ``test_auc`` or ``test_rmse``."""
    names = REGRESSION_METRICS if task == "regression" else BINARY_METRICS
    return [f"{part}_{name}" for part in ("train", "test") for name in names]


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{name}": value for name, value in metrics.items()}


#: metrics where a smaller value is better (gaps and champion differences are oriented by it)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "ece"})

#: calibration and ranking metrics the loop records on the test rows of a classifier
TEST_ONLY_METRICS = (
    "ece",
    *(f"{kind}_at_{k}" for k in (5, 10, 20) for kind in ("lift", "gains")),
)


def calibration_and_ranking_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ECE (10 uniform bins) and lift and gains at the top 5, 10 and 20% of rows by score."""
    from decisionloop.evaluation.calibration import expected_calibration_error, lift_and_gains

    return {"ece": expected_calibration_error(y_true, proba), **lift_and_gains(y_true, proba)}


def gate_metric_names(task: str = "classification") -> list[str]:
    """Every metric a gate may name: :func:`metric_names`, plus ``test_ece``,
    ``test_lift_at_10``, ``test_gains_at_10``... for a classifier."""
    extra = [] if task == "regression" else [f"test_{name}" for name in TEST_ONLY_METRICS]
    return [*metric_names(task), *extra]


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` (bare or prefixed, e.g. ``test_rmse``) is better."""
    return metric.removeprefix("test_").removeprefix("train_") in LOWER_IS_BETTER
