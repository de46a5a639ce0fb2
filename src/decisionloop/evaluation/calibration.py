"""Calibration (reliability curve, expected calibration error) and ranking (lift, gains) metrics.

The reliability curve bins rows by predicted probability, as scikit-learn's ``calibration_curve``
does: ``uniform`` bins split [0, 1] into equal widths, ``quantile`` bins hold (about) the same
number of rows each; a row whose probability falls on an inner edge goes to the lower bin, and
empty bins are dropped. The ECE is ``sum over bins of (rows in bin / rows) * |fraction of
positives - mean predicted probability|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np

BinStrategy = Literal["uniform", "quantile"]

#: the top shares (in percent) lift and gains are reported at by default
DEFAULT_TOP_PERCENTS = (5, 10, 20)


@dataclass(frozen=True)
class ReliabilityCurve:
    """One entry per non-empty bin, lowest probabilities first."""

    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    counts: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "mean_predicted": [float(v) for v in self.mean_predicted],
            "fraction_positive": [float(v) for v in self.fraction_positive],
            "counts": [float(v) for v in self.counts],
        }


def bin_edges(proba: np.ndarray, bins: int = 10, strategy: BinStrategy = "uniform") -> np.ndarray:
    """The ``bins + 1`` edges the reliability curve and the ECE use."""
    import numpy as np

    if bins < 1:
        raise Invalid(f"bins must be at least 1 (got {bins})", hint="use e.g. 10 bins")
    if strategy == "quantile":
        return np.asarray(np.percentile(proba, np.linspace(0, 100, bins + 1)), dtype="float64")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, bins + 1)
    raise Invalid(f"unknown bin strategy {strategy!r}", hint="use uniform or quantile")


def bin_index(proba: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each row's bin (0-based); a value on an inner edge belongs to the lower bin."""
    import numpy as np

    return np.searchsorted(edges[1:-1], proba)


def reliability_curve(
    y_true: np.ndarray, proba: np.ndarray, *, bins: int = 10, strategy: BinStrategy = "uniform"
) -> ReliabilityCurve:
    """Mean predicted probability against the observed fraction of positives, per bin."""
    import numpy as np

    proba = np.asarray(proba, dtype="float64")
    y = np.asarray(y_true, dtype="float64")
    edges = bin_edges(proba, bins, strategy)
    index = bin_index(proba, edges)
    width = len(edges) - 1
    totals = np.bincount(index, minlength=width).astype("float64")
    sums = np.bincount(index, weights=proba, minlength=width)
    positives = np.bincount(index, weights=y, minlength=width)
    filled = totals > 0
    return ReliabilityCurve(
        mean_predicted=sums[filled] / totals[filled],
        fraction_positive=positives[filled] / totals[filled],
        counts=totals[filled],
    )


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, *, bins: int = 10, strategy: BinStrategy = "uniform"
) -> float:
    """The rows-weighted mean gap between predicted probability and observed positive rate."""
    import numpy as np

    curve = reliability_curve(y_true, proba, bins=bins, strategy=strategy)
    total = curve.counts.sum()
    gaps = np.abs(curve.fraction_positive - curve.mean_predicted)
    return float((curve.counts * gaps).sum() / total) if total else 0.0


def top_rows(proba: np.ndarray, percent: float) -> np.ndarray:
    """Indices of the ``percent``% highest-scored rows (at least one row; ties keep row order)."""
    import math

    import numpy as np

    if not 0 < percent <= 100:
        raise Invalid(f"top percent must be in (0, 100] (got {percent})", hint="use e.g. 10")
    count = max(1, math.ceil(len(proba) * percent / 100))
    return np.argsort(-np.asarray(proba, dtype="float64"), kind="stable")[:count]


def lift_and_gains(
    y_true: np.ndarray, proba: np.ndarray, percents: tuple[float, ...] = DEFAULT_TOP_PERCENTS
) -> dict[str, float]:
    """``gains_at_K``: the share of all positives found in the top K% of rows by score;
    ``lift_at_K``: the positive rate in that top K% divided by the overall positive rate
    (both 0 when there is no positive)."""
    import numpy as np

    y = np.asarray(y_true, dtype="float64")
    positives = y.sum()
    result: dict[str, float] = {}
    for percent in percents:
        top = y[top_rows(proba, percent)]
        label = f"{percent:g}".replace(".", "_")
        found = top.sum()
        result[f"lift_at_{label}"] = (
            float(found / len(top) / (positives / len(y))) if positives else 0.0
        )
        result[f"gains_at_{label}"] = float(found / positives) if positives else 0.0
    return result
