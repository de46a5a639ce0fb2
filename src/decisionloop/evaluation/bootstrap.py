"""Bootstrap confidence intervals for any metric, and paired differences between two models.

A resample draws ``n`` rows with replacement; here it is represented by how many times each row
was drawn (a row of counts), so every metric is a *weighted* metric of the original rows and
all resamples of a block are computed at once with matrix products. AUC sorts the scores once
and counts, per resample, the weight of negatives ranked below each positive (ties count
half), which is the Mann-Whitney statistic. Intervals are percentile intervals. The same seed
gives the same resamples, and a paired difference applies the same resamples to both models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np

#: rows x resamples computed at once (bounds memory to ~40 MB of float64 per block)
_BLOCK_CELLS = 5_000_000

WeightedMetric = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Interval:
    """A metric (or a difference of metrics) on all rows, and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _safe_divide(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    import numpy as np

    zeros = np.zeros_like(top, dtype="float64")
    return np.asarray(np.divide(top, bottom, out=zeros, where=bottom != 0))


def _auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    order = np.argsort(s, kind="stable")
    sorted_scores = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = (y[order] == 1).astype("float64")
    weights = w[:, order]
    if len(starts) == len(s):  # no ties: every row is its own group
        pos = weights * positive
        neg = weights - pos
    else:
        pos = np.add.reduceat(weights * positive, starts, axis=1)
        neg = np.add.reduceat(weights, starts, axis=1) - pos
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return np.asarray(np.divide(wins, pairs, out=np.full_like(wins, np.nan), where=pairs != 0))


def _confusion(
    y: np.ndarray, s: np.ndarray, w: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    predicted = (s >= threshold).astype("float64")
    actual = y.astype("float64")
    tp = w @ (predicted * actual)
    fp = w @ (predicted * (1 - actual))
    fn = w @ ((1 - predicted) * actual)
    return tp, fp, fn, w.sum(axis=1)


def _binary(threshold: float) -> dict[str, WeightedMetric]:
    import numpy as np

    def accuracy(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.asarray(w @ ((s >= threshold) == (y == 1)).astype("float64") / w.sum(axis=1))

    def precision(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        tp, fp, _, _ = _confusion(y, s, w, threshold)
        return _safe_divide(tp, tp + fp)

    def recall(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        tp, _, fn, _ = _confusion(y, s, w, threshold)
        return _safe_divide(tp, tp + fn)

    def f1(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        tp, fp, fn, _ = _confusion(y, s, w, threshold)
        return _safe_divide(2 * tp, 2 * tp + fp + fn)

    def log_loss(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        clipped = np.clip(s, 1e-7, 1 - 1e-7)
        losses = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
        return np.asarray(w @ losses / w.sum(axis=1))

    def brier(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.asarray(w @ (s - y) ** 2 / w.sum(axis=1))

    def positive_rate(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.asarray(w @ y.astype("float64") / w.sum(axis=1))

    return {
        "auc": _auc,
        "accuracy": accuracy,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "log_loss": log_loss,
        "brier": brier,
        "positive_rate": positive_rate,
    }


def _regression() -> dict[str, WeightedMetric]:
    import numpy as np

    def rmse(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.asarray(np.sqrt(w @ (y - s) ** 2 / w.sum(axis=1)))

    def mae(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.asarray(w @ np.abs(y - s) / w.sum(axis=1))

    def r2(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        spread = w @ (y * y) - (w @ y) ** 2 / total
        return np.asarray(1 - _safe_divide(w @ (y - s) ** 2, spread))

    return {"rmse": rmse, "mae": mae, "r2": r2}


def _ece(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    from decisionloop.evaluation.calibration import bin_edges, bin_index

    index = bin_index(s, bin_edges(s))
    onehot = np.zeros((len(s), int(index.max()) + 1))
    onehot[np.arange(len(s)), index] = 1.0
    # per bin |positives - summed probability| / rows == the ECE's weighted gap
    gaps = np.abs(w @ (onehot * (y - s)[:, None]))
    return np.asarray(gaps.sum(axis=1) / w.sum(axis=1))


def weighted_metric(name: str, *, task: str = "classification", threshold: float = 0.5) -> Any:
    """The vectorised form of a metric: ``f(y, scores, counts[resamples, rows]) -> [resamples]``.
    Accepts a bare name (``auc``) or a gate metric (``test_auc``)."""
    bare = name.removeprefix("test_").removeprefix("train_")
    table = _regression() if task == "regression" else {**_binary(threshold), "ece": _ece}
    if bare not in table:
        raise Invalid(
            f"no bootstrap for metric {name!r} ({task})",
            hint=f"use one of {', '.join(sorted(table))}",
        )
    return table[bare]


def resample_counts(rows: int, resamples: int, seed: int) -> Any:
    """Blocks of bootstrap resamples, each a ``[block, rows]`` matrix of draw counts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_CELLS // max(rows, 1)))
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        draws = rng.integers(0, rows, size=(size, rows), dtype=np.int32)
        offsets = (np.arange(size, dtype=np.int32) * rows)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=size * rows)
        yield counts.reshape(size, rows).astype("float64")
        done += size


def _interval(estimate: float, values: np.ndarray, confidence: float, resamples: int) -> Interval:
    import numpy as np

    tail = (1 - confidence) / 2 * 100
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return Interval(estimate, float("nan"), float("nan"), confidence, resamples)
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), confidence, resamples)


def _check(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise Invalid(f"resamples must be at least 1 (got {resamples})", hint="use e.g. 1000")
    if not 0 < confidence < 1:
        raise Invalid(f"confidence must be in (0, 1) (got {confidence})", hint="use e.g. 0.95")


def bootstrap_interval(
    y_true: np.ndarray,
    scores: np.ndarray,
    metric: str,
    *,
    task: str = "classification",
    threshold: float = 0.5,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The metric on all rows and its percentile bootstrap interval."""
    import numpy as np

    _check(resamples, confidence)
    f = weighted_metric(metric, task=task, threshold=threshold)
    y, s = np.asarray(y_true, dtype="float64"), np.asarray(scores, dtype="float64")
    estimate = float(f(y, s, np.ones((1, len(y))))[0])
    values = np.concatenate([f(y, s, w) for w in resample_counts(len(y), resamples, seed)])
    return _interval(estimate, values, confidence, resamples)


def paired_difference(
    y_true: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    metric: str,
    *,
    task: str = "classification",
    threshold: float = 0.5,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    lower_is_better: bool = False,
) -> Interval:
    """How much better ``candidate`` scores than ``reference`` on the same rows (positive:
    better; for a lower-is-better metric, reference minus candidate), with a percentile
    interval from the same resamples applied to both."""
    import numpy as np

    _check(resamples, confidence)
    f = weighted_metric(metric, task=task, threshold=threshold)
    y = np.asarray(y_true, dtype="float64")
    a, b = np.asarray(candidate, dtype="float64"), np.asarray(reference, dtype="float64")
    sign = -1.0 if lower_is_better else 1.0
    ones = np.ones((1, len(y)))
    estimate = sign * float(f(y, a, ones)[0] - f(y, b, ones)[0])
    values = np.concatenate(
        [sign * (f(y, a, w) - f(y, b, w)) for w in resample_counts(len(y), resamples, seed)]
    )
    return _interval(estimate, values, confidence, resamples)
