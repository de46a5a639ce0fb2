"""Fairness of a binary classifier across the groups of each sensitive column.

One pass per column: ``np.bincount`` over (group, y_true, y_pred) gives every group's confusion
matrix, and one shared sort of the scores gives every group's AUC (Mann-Whitney, ties counted
half, as ``sklearn.metrics.roc_auc_score``). Definitions follow fairlearn's where it has one;
docs/evaluation.md ("Fairness") states each one as computed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from decisionloop.config import ColumnSpec

__all__ = [
    "FOUR_FIFTHS",
    "MISSING_GROUP",
    "ColumnFairness",
    "FairnessReport",
    "GroupMetrics",
    "Groups",
    "WorstGroup",
    "fairness_report",
    "group_bins",
    "worst_groups",
]

#: the label of the group holding missing values of a sensitive column
MISSING_GROUP = "(missing)"
#: a group whose selection rate is below this share of the reference group's shows adverse impact
FOUR_FIFTHS = 0.8
#: numeric columns with at most this many distinct values are categories (e.g. 0/1 flags)
MAX_NUMERIC_CATEGORIES = 10
#: quantile bins for a numeric column with no declared range and no explicit edges
DEFAULT_QUANTILES = 4

GroupMetric = Literal[
    "selection_rate", "true_positive_rate", "false_positive_rate", "precision", "auc"
]
#: for these a lower value is worse; for the false positive rate a higher one is
LOWER_IS_WORSE: dict[str, bool] = {
    "selection_rate": True,
    "true_positive_rate": True,
    "false_positive_rate": False,
    "precision": True,
    "auc": True,
}


@dataclass(frozen=True)
class Groups:
    """The groups of one sensitive column: a code per row (index into ``names``) and the rule
    that formed them."""

    codes: NDArray[np.intp]
    names: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class GroupMetrics:
    """One group's counts and rates; a rate is None when undefined, and ``notes`` says why."""

    group: str
    count: int
    positives: int
    selected: int
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None
    precision: float | None
    auc: float | None
    impact_ratio: float | None  # selection rate / the reference group's
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnFairness:
    """Every group of one sensitive column, and the gaps between them."""

    column: str
    grouping: str
    groups: tuple[GroupMetrics, ...]
    reference_group: str | None
    reference_rule: str
    statistical_parity_difference: float | None
    statistical_parity_ratio: float | None
    equal_opportunity_difference: float | None
    equalized_odds_difference: float | None
    disparate_impact: float | None
    four_fifths_rule: Literal["pass", "fail"] | None
    adverse_impact_groups: tuple[str, ...] = ()

    def group(self, name: str) -> GroupMetrics:
        for metrics in self.groups:
            if metrics.group == name:
                return metrics
        raise KeyError(name)


@dataclass(frozen=True)
class FairnessReport:
    """Fairness of one set of predictions, per sensitive column."""

    rows: int
    threshold: float
    columns: tuple[ColumnFairness, ...] = field(default_factory=tuple)

    def column(self, name: str) -> ColumnFairness:
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data (tuples become lists; undefined values are None)."""
        result: dict[str, Any] = _json_safe(asdict(self))
        return result


@dataclass(frozen=True)
class WorstGroup:
    """A group that under-performs on one metric, and its gap to the best group of its column."""

    column: str
    group: str
    metric: str
    value: float
    best: float
    gap: float
    count: int


# -- groups -------------------------------------------------------------------------------------


def group_bins(
    values: ArrayLike,
    spec: ColumnSpec | None = None,
    *,
    bins: Sequence[float] | None = None,
    quantiles: int = DEFAULT_QUANTILES,
) -> Groups:
    """The groups of a sensitive column.

    - Missing values (None, NaN, NaT) form their own group, ``"(missing)"``.
    - Explicit ``bins`` edges: numeric bins ``[e0, e1) ... [e(n-1), en]``; values outside them
      form ``"< e0"`` and ``"> en"``.
    - Categories as they are: strings, booleans, a contract with ``allowed`` values, and numeric
      columns with at most 10 distinct values (flags such as ``senior_citizen``).
    - Other numeric columns: 4 equal-width bins over the contract's ``[min, max]`` when both are
      declared (stable across data sets), else ``quantiles`` bins at the data's quantiles
      (edges that coincide merge).
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise Invalid(f"a sensitive column must be one-dimensional, got shape {array.shape}")
    missing = _missing(array)
    present = array[~missing]
    numeric = array.dtype.kind in "iuf" or (
        array.dtype.kind == "O" and present.size > 0 and _all_numbers(present)
    )
    if bins is not None:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise Invalid("bins must be at least two strictly increasing edges")
        return _binned(array, missing, edges, "explicit bins")
    categorical = (
        not numeric
        or array.dtype.kind == "b"
        or (spec is not None and (spec.type in ("string", "boolean") or spec.allowed is not None))
    )
    if not categorical and _distinct_at_most(present, MAX_NUMERIC_CATEGORIES):
        categorical = True
    if categorical:
        return _categories(array, missing, present)
    if spec is not None and spec.min is not None and spec.max is not None and spec.max > spec.min:
        edges = np.linspace(spec.min, spec.max, DEFAULT_QUANTILES + 1)
        return _binned(array, missing, edges, "equal-width bins over the contract's min/max")
    finite = present.astype(float)
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, max(quantiles, 1) + 1)))
    if edges.size < 2:
        return _categories(array, missing, present)
    return _binned(array, missing, edges, f"{quantiles} quantile bins of the data")


def _distinct_at_most(values: np.ndarray, limit: int) -> bool:
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low < 1 << 16:
            return int(np.count_nonzero(np.bincount(values.astype(np.int64) - low))) <= limit
    return bool(np.unique(values.astype(float)).size <= limit)


def _missing(array: np.ndarray) -> NDArray[np.bool_]:
    if array.dtype.kind == "f":
        return np.asarray(np.isnan(array), dtype=bool)
    if array.dtype.kind in "mM":
        return np.asarray(np.isnat(array), dtype=bool)
    if array.dtype.kind == "O":
        return np.fromiter(
            (value is None or (isinstance(value, float) and math.isnan(value)) for value in array),
            dtype=bool,
            count=array.size,
        )
    return np.zeros(array.shape, dtype=bool)


def _all_numbers(values: np.ndarray) -> bool:
    return all(
        isinstance(value, int | float | np.number) and not isinstance(value, bool)
        for value in values
    )


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _with_missing(
    codes: NDArray[np.intp], missing: NDArray[np.bool_], names: list[str], rule: str
) -> Groups:
    if missing.any():
        codes[missing] = len(names)
        names.append(MISSING_GROUP)
        rule += '; missing values form "(missing)"'
    return Groups(codes=codes, names=tuple(names), rule=rule)


def _categories(array: np.ndarray, missing: NDArray[np.bool_], present: np.ndarray) -> Groups:
    codes = np.zeros(array.shape, dtype=np.intp)
    if array.dtype.kind in "biu" and present.size:
        # small integer codes: a bincount finds the distinct values faster than a sort
        low = int(present.min())
        if int(present.max()) - low < 1 << 16:
            seen = np.flatnonzero(np.bincount(present.astype(np.int64) - low)) + low
            lookup = np.full(int(seen[-1]) - low + 1, -1, dtype=np.intp)
            lookup[seen - low] = np.arange(seen.size)
            codes[~missing] = lookup[present.astype(np.int64) - low]
            names = [_label(value.item()) for value in seen.astype(array.dtype)]
            return _with_missing(codes, missing, names, "categories as they are")
    if array.dtype.kind == "O":
        present = present.astype(str)
    unique, inverse = np.unique(present, return_inverse=True)
    codes[~missing] = inverse.reshape(-1)
    return _with_missing(
        codes, missing, [_label(value) for value in unique.tolist()], "categories as they are"
    )


def _binned(
    array: np.ndarray, missing: NDArray[np.bool_], edges: NDArray[np.floating[Any]], rule: str
) -> Groups:
    values = np.where(missing, edges[0], array).astype(float)
    inner = edges.size - 1
    # slots: 0 below the first edge, 1..inner the bins [e_i, e_i+1) (the last closed), then above
    slot = np.searchsorted(edges, values, side="right")
    slot[values == edges[-1]] = inner
    text = [f"{edge:g}" for edge in edges]
    names = [
        f"< {text[0]}",
        *(f"[{text[i]}, {text[i + 1]}{']' if i == inner - 1 else ')'}" for i in range(inner)),
        f"> {text[-1]}",
    ]
    kept = np.flatnonzero(np.bincount(slot[~missing], minlength=inner + 2))
    renumber = np.full(inner + 2, -1, dtype=np.intp)
    renumber[kept] = np.arange(kept.size)
    codes = np.zeros(array.shape, dtype=np.intp)
    codes[~missing] = renumber[slot[~missing]]
    return _with_missing(codes, missing, [names[k] for k in kept], rule)


# -- the report ---------------------------------------------------------------------------------


def fairness_report(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    sensitive: Mapping[str, ArrayLike | Groups],
    *,
    specs: Mapping[str, ColumnSpec] | None = None,
    reference: Mapping[str, str] | None = None,
) -> FairnessReport:
    """Per sensitive column and group: count, selection rate, TPR, FPR, precision and AUC; and
    between groups: statistical parity difference and ratio, equal opportunity difference,
    equalized odds difference and disparate impact with the four-fifths rule.

    A row is selected when ``score >= threshold``. Raw columns are grouped by :func:`group_bins`
    with ``specs[column]``; pass :class:`Groups` to group them yourself. The reference group is
    ``reference[column]`` when given, else the group with the highest selection rate.
    """
    truth = np.asarray(y_true)
    score = np.asarray(scores, dtype=float)
    if truth.ndim != 1 or truth.shape != score.shape:
        raise Invalid(f"y_true {truth.shape} and scores {score.shape} must be 1-D and equal")
    if truth.dtype.kind == "b":
        truth = truth.astype(np.intp)
    elif not np.isin(truth, (0, 1)).all():
        raise Invalid("y_true must hold 0/1 labels", hint="encode the positive class as 1")
    truth = truth.astype(np.intp)
    if np.isnan(score).any():
        raise Invalid("scores contain NaN")
    predicted = (score >= threshold).astype(np.intp)
    ranks = _score_order(score)
    columns = []
    for name, values in sensitive.items():
        groups = (
            values if isinstance(values, Groups) else group_bins(values, (specs or {}).get(name))
        )
        if groups.codes.shape != truth.shape:
            raise Invalid(
                f"sensitive column {name!r} has {groups.codes.size} rows, not {truth.size}"
            )
        columns.append(_column(name, groups, truth, predicted, ranks, (reference or {}).get(name)))
    return FairnessReport(rows=int(truth.size), threshold=float(threshold), columns=tuple(columns))


@dataclass(frozen=True)
class _ScoreOrder:
    order: NDArray[np.intp]  # rows by ascending score
    value_id: NDArray[np.intp]  # per row: the dense rank of its score (equal scores, equal ids)


def _score_order(score: NDArray[np.float64]) -> _ScoreOrder:
    order = np.argsort(score)  # ties need no order: value_id groups them
    ordered = score[order]
    new_value = np.ones(score.size, dtype=np.intp)
    new_value[1:] = ordered[1:] != ordered[:-1]
    value_id = np.empty(score.size, dtype=np.intp)
    value_id[order] = np.cumsum(new_value)
    return _ScoreOrder(order=order, value_id=value_id)


def _positive_rank_sums(
    codes: NDArray[np.intp], truth: NDArray[np.intp], ranks: _ScoreOrder, n_groups: int
) -> NDArray[np.float64]:
    """Per group, the sum of its positives' ranks among the group's rows, ties sharing the
    average rank: AUC = (sum - P(P+1)/2) / (P N), the Mann-Whitney form of the ROC area."""
    n = codes.size
    if n == 0:
        return np.zeros(n_groups)
    # small integer keys make numpy's stable sort a radix sort
    keys = codes.astype(np.int16) if n_groups < (1 << 15) else codes
    within = ranks.order[np.argsort(keys[ranks.order], kind="stable")]  # by group, then score
    grouped = codes[within]
    value_id = ranks.value_id[within]
    new_block = np.ones(n, dtype=bool)
    new_block[1:] = (grouped[1:] != grouped[:-1]) | (value_id[1:] != value_id[:-1])
    starts = np.flatnonzero(new_block)
    ends = np.append(starts[1:], n)
    group_offset = np.zeros(n_groups, dtype=np.intp)
    group_offset[1:] = np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]
    block_rank = (starts + ends + 1) / 2.0 - group_offset[grouped[starts]]
    mid_rank = np.repeat(block_rank, ends - starts)
    weights = mid_rank * truth[within]
    return np.bincount(grouped, weights=weights, minlength=n_groups).astype(np.float64)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _column(
    name: str,
    groups: Groups,
    truth: NDArray[np.intp],
    predicted: NDArray[np.intp],
    ranks: _ScoreOrder,
    reference: str | None,
) -> ColumnFairness:
    n_groups = len(groups.names)
    codes = groups.codes
    matrix = np.bincount(codes * 4 + truth * 2 + predicted, minlength=4 * n_groups).reshape(
        n_groups, 2, 2
    )
    rank_sums = _positive_rank_sums(codes, truth, ranks, n_groups)
    partial = []
    for index, group in enumerate(groups.names):
        tn, fp, fn, tp = (int(v) for v in matrix[index].ravel())
        count, positives, negatives, selected = tn + fp + fn + tp, fn + tp, tn + fp, fp + tp
        if count == 0:
            continue
        notes = []
        if positives == 0:
            notes.append("no positive rows: true positive rate and AUC undefined")
        if negatives == 0:
            notes.append("no negative rows: false positive rate and AUC undefined")
        if selected == 0:
            notes.append("nothing selected: precision undefined")
        auc = None
        if positives and negatives:
            auc = (rank_sums[index] - positives * (positives + 1) / 2) / (positives * negatives)
        partial.append(
            GroupMetrics(
                group=group,
                count=count,
                positives=positives,
                selected=selected,
                selection_rate=selected / count,
                true_positive_rate=_ratio(tp, positives),
                false_positive_rate=_ratio(fp, negatives),
                precision=_ratio(tp, selected),
                auc=None if auc is None else float(auc),
                impact_ratio=None,
                notes=tuple(notes),
            )
        )
    rates = [g.selection_rate for g in partial if g.selection_rate is not None]
    tpr_gap = _spread([g.true_positive_rate for g in partial])
    fpr_gap = _spread([g.false_positive_rate for g in partial])
    if reference is not None:
        if reference not in {g.group for g in partial}:
            raise Invalid(f"reference group {reference!r} has no rows in column {name!r}")
        reference_group: str | None = reference
        reference_rule = "given"
    else:
        # highest selection rate; ties go to the larger group, then to the first name
        best = max(partial, key=lambda g: (g.selection_rate or 0.0, g.count), default=None)
        reference_group = None if best is None else best.group
        reference_rule = "highest selection rate"
    reference_rate = next((g.selection_rate for g in partial if g.group == reference_group), None)
    finished = tuple(
        replace(g, impact_ratio=_divide(g.selection_rate, reference_rate)) for g in partial
    )
    impacts = [g.impact_ratio for g in finished if g.impact_ratio is not None]
    disparate = min(impacts) if impacts else None
    adverse = tuple(
        g.group for g in finished if g.impact_ratio is not None and g.impact_ratio < FOUR_FIFTHS
    )
    return ColumnFairness(
        column=name,
        grouping=groups.rule,
        groups=finished,
        reference_group=reference_group,
        reference_rule=reference_rule,
        statistical_parity_difference=_spread(list(rates)),
        statistical_parity_ratio=_divide(min(rates), max(rates)) if rates else None,
        equal_opportunity_difference=tpr_gap,
        equalized_odds_difference=(
            None if tpr_gap is None and fpr_gap is None else max(tpr_gap or 0.0, fpr_gap or 0.0)
        ),
        disparate_impact=disparate,
        four_fifths_rule=None if disparate is None else ("fail" if adverse else "pass"),
        adverse_impact_groups=adverse,
    )


def _spread(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if defined else None


def _divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


# -- limitations --------------------------------------------------------------------------------


def worst_groups(
    report: FairnessReport, metric: GroupMetric, k: int = 3, *, min_count: int = 1
) -> list[WorstGroup]:
    """The ``k`` groups, across all columns, furthest from the best group of their own column on
    ``metric`` (lower is worse, except for the false positive rate); groups where the metric is
    undefined or with fewer than ``min_count`` rows are left out. Largest gap first."""
    if metric not in LOWER_IS_WORSE:
        raise Invalid(f"unknown fairness metric {metric!r}", hint=f"one of {list(LOWER_IS_WORSE)}")
    lower_is_worse = LOWER_IS_WORSE[metric]
    found = []
    for column in report.columns:
        scored = [
            (g, value)
            for g in column.groups
            if g.count >= min_count and (value := getattr(g, metric)) is not None
        ]
        if not scored:
            continue
        best = max(v for _, v in scored) if lower_is_worse else min(v for _, v in scored)
        for g, value in scored:
            gap = best - value if lower_is_worse else value - best
            if gap > 0:
                found.append(
                    WorstGroup(
                        column=column.column,
                        group=g.group,
                        metric=metric,
                        value=value,
                        best=best,
                        gap=gap,
                        count=g.count,
                    )
                )
    found.sort(key=lambda w: (-w.gap, w.column, w.group))
    return found[:k]
