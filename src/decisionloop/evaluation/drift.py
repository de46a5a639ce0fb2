"""Data drift: per column, between a reference (the training snapshot, or its stored
:class:`ReferenceProfile`) and any current data (a new snapshot, a window of live traffic).

The test is chosen per column by type and sample size (``n = min(reference, current)``
non-missing values), the rule docs/evaluation.md documents:

- numeric, ``n <= test_max_rows`` (1000): two-sample Kolmogorov-Smirnov; drift when the
  p-value (after the multiple-testing correction) is ``<= alpha``;
- numeric, larger: Wasserstein distance divided by the reference's standard deviation (floored
  at 0.001); drift when ``>= 0.1``. With many rows any test flags negligible differences, so a
  distance with a threshold says whether the shift matters;
- categorical, ``n <= test_max_rows`` and at most 50 categories: chi-squared test of
  homogeneity on the 2 x k table of both samples' counts (both are samples; the reference
  shares are not taken as exact); drift when the corrected p-value is ``<= alpha``;
- categorical, otherwise: Jensen-Shannon distance (natural log) of the two share vectors;
  drift when ``>= 0.1``.

PSI (reference decile bins for numeric columns, categories for categorical ones) is reported
alongside every column and can be chosen as the method (drift when ``>= 0.1``). Missing values
are counted and left out of every statistic. The data set drifts when the share of drifted
columns is ``>= drift_share`` (0.5, Evidently's default).

The statistics themselves live in :mod:`decisionloop.evaluation.drift_tests` (re-exported
here); this module chooses among them, corrects the p-values and gives the verdicts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from decisionloop.errors import Invalid
from decisionloop.evaluation.drift_profile import (
    CategoricalProfile,
    ColumnKindSpec,
    NumericProfile,
    ReferenceProfile,
    bin_counts,
    category_counts,
    column_kind,
    frame_rows,
    numeric_profile,
    numeric_values,
    sort_values,
)
from decisionloop.evaluation.drift_tests import (
    chi2_homogeneity,
    current_sample,
    jensen_shannon,
    ks_p_value,
    ks_statistic,
    psi,
    wasserstein,
)

Method = Literal["ks", "wasserstein", "chi2", "jensenshannon", "psi"]
Correction = Literal["none", "bonferroni", "holm", "bh"]

#: at most this many rows on the smaller side: a statistical test; more: a distance
TEST_MAX_ROWS = 1000
#: more categories than this: Jensen-Shannon even for small samples (sparse tables)
CHI2_MAX_CATEGORIES = 50
#: drift thresholds of the distance methods (Evidently's defaults)
DISTANCE_THRESHOLDS: dict[str, float] = {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
#: a reference standard deviation below this is taken as this when normalizing Wasserstein
STD_FLOOR = 1e-3
NUMERIC_METHODS = ("ks", "wasserstein", "psi")
CATEGORICAL_METHODS = ("chi2", "jensenshannon", "psi")
CORRECTIONS = ("none", "bonferroni", "holm", "bh")


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict of one column: the method and why, the statistic, its threshold."""

    column: str
    kind: str
    method: str
    reason: str
    statistic: float | None
    p_value: float | None  # tests only
    adjusted_p_value: float | None  # after the correction; compared with ``threshold``
    threshold: float  # alpha for tests, the distance threshold otherwise
    drifted: bool
    psi: float | None
    n_reference: int
    n_current: int
    missing_reference: int
    missing_current: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Every column's verdict and the data set's: drift when ``share_drifted >= drift_share``."""

    columns: tuple[ColumnDrift, ...]
    alpha: float
    correction: str
    drift_share: float
    drifted_columns: tuple[str, ...]
    share_drifted: float
    dataset_drift: bool
    rows_reference: int
    rows_current: int
    approximate: bool  # some numeric reference came from a sketch, not every distinct value

    def column(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.column == name:
                return column
        raise Invalid(f"no drift result for column {name!r}", hint="see report.columns")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [column.to_dict() for column in self.columns]
        data["drifted_columns"] = list(self.drifted_columns)
        return data


# -- per column ---------------------------------------------------------------------------------


def _numeric_drift(
    name: str,
    reference: NumericProfile,
    current: np.ndarray,
    missing_current: int,
    method: str | None,
    threshold: float | None,
    test_max_rows: int,
) -> ColumnDrift:
    n, m = reference.count, len(current)
    counts = {
        "n_reference": n,
        "n_current": m,
        "missing_reference": reference.missing,
        "missing_current": missing_current,
    }
    if n == 0 or m == 0:
        return _no_values(name, "numeric", "reference" if n == 0 else "current", counts)
    chosen, reason = _choose(method, NUMERIC_METHODS, "numeric", min(n, m), test_max_rows)
    if chosen == "ks":  # small samples, or chosen: KS wants the values in order
        ordered = sort_values(current)
        column_psi = psi(reference.psi_counts, bin_counts(ordered, reference.psi_edges))
        statistic = ks_statistic(reference, ordered)
        p_value = ks_p_value(statistic, reference, ordered)
        return ColumnDrift(
            name,
            "numeric",
            "ks",
            reason,
            statistic,
            p_value,
            p_value,
            0.0,
            False,
            column_psi,
            **counts,
        )
    sample = current_sample(reference, current)  # PSI and Wasserstein, usually without a sort
    column_psi = psi(reference.psi_counts, sample.bin_counts(reference.psi_edges))
    if chosen == "wasserstein":
        statistic = sample.wasserstein() / max(reference.std, STD_FLOOR)
    else:
        statistic = column_psi
    limit = DISTANCE_THRESHOLDS[chosen] if threshold is None else threshold
    return ColumnDrift(
        name,
        "numeric",
        chosen,
        reason,
        statistic,
        None,
        None,
        limit,
        statistic >= limit,
        column_psi,
        **counts,
    )


def _categorical_drift(
    name: str,
    reference: CategoricalProfile,
    current: dict[str, int],
    missing_current: int,
    method: str | None,
    threshold: float | None,
    test_max_rows: int,
) -> ColumnDrift:
    categories = sorted(set(reference.counts) | set(current))
    ref = np.array([reference.counts.get(key, 0) for key in categories], dtype=np.int64)
    cur = np.array([current.get(key, 0) for key in categories], dtype=np.int64)
    n, m = int(ref.sum()), int(cur.sum())
    counts = {
        "n_reference": n,
        "n_current": m,
        "missing_reference": reference.missing,
        "missing_current": missing_current,
    }
    if n == 0 or m == 0:
        return _no_values(name, "categorical", "reference" if n == 0 else "current", counts)
    if method is None and len(categories) > CHI2_MAX_CATEGORIES:
        chosen = "jensenshannon"
        reason = f"{len(categories)} categories > {CHI2_MAX_CATEGORIES}: Jensen-Shannon distance"
    else:
        chosen, reason = _choose(
            method, CATEGORICAL_METHODS, "categorical", min(n, m), test_max_rows
        )
    column_psi = psi(ref, cur)
    if chosen == "chi2":
        statistic, p_value = chi2_homogeneity(ref, cur)
        return ColumnDrift(
            name,
            "categorical",
            "chi2",
            reason,
            statistic,
            p_value,
            p_value,
            0.0,
            False,
            column_psi,
            **counts,
        )
    statistic = jensen_shannon(ref, cur) if chosen == "jensenshannon" else column_psi
    limit = DISTANCE_THRESHOLDS[chosen] if threshold is None else threshold
    return ColumnDrift(
        name,
        "categorical",
        chosen,
        reason,
        statistic,
        None,
        None,
        limit,
        statistic >= limit,
        column_psi,
        **counts,
    )


def _no_values(name: str, kind: str, side: str, counts: dict[str, int]) -> ColumnDrift:
    """A column with no non-missing values on a side: reported as drifted."""
    reason = f"no non-missing {side} values"
    return ColumnDrift(name, kind, "missing", reason, None, None, None, 0.0, True, None, **counts)


def _choose(
    method: str | None, allowed: Sequence[str], kind: str, n: int, test_max_rows: int
) -> tuple[str, str]:
    if method is not None:
        if method not in allowed:
            raise Invalid(
                f"method {method!r} does not apply to a {kind} column",
                hint=f"choose one of {', '.join(allowed)}",
            )
        return method, f"{method} chosen by the caller"
    test, distance = allowed[0], allowed[1]
    if n <= test_max_rows:
        label = "two-sample Kolmogorov-Smirnov" if test == "ks" else "chi-squared homogeneity"
        return test, f"{n} rows on the smaller side <= {test_max_rows}: {label} test"
    label = (
        "Wasserstein distance / reference std"
        if distance == "wasserstein"
        else ("Jensen-Shannon distance")
    )
    return distance, f"{n} rows on the smaller side > {test_max_rows}: {label}"


def adjust_p_values(p_values: Sequence[float], correction: Correction) -> list[float]:
    """Adjusted p-values: compared with alpha, they give Bonferroni, Holm's step-down or
    Benjamini-Hochberg's step-up decisions (``none`` returns them unchanged)."""
    p = np.asarray(p_values, dtype=np.float64)
    k = len(p)
    if k == 0 or correction == "none":
        return [float(value) for value in p]
    if correction == "bonferroni":
        return [float(value) for value in np.minimum(p * k, 1.0)]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == "holm":
        adjusted = np.maximum.accumulate(ranked * (k - np.arange(k)))
    elif correction == "bh":
        adjusted = np.minimum.accumulate((ranked * k / np.arange(1, k + 1))[::-1])[::-1]
    else:
        raise Invalid(f"unknown correction {correction!r}", hint=f"one of {CORRECTIONS}")
    out = np.empty(k)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(value) for value in out]


# -- the report ---------------------------------------------------------------------------------


def drift_report(
    reference: ReferenceProfile | Any,
    current: Any,
    columns: Mapping[str, ColumnKindSpec] | None = None,
    *,
    alpha: float = 0.05,
    correction: Correction = "holm",
    drift_share: float = 0.5,
    methods: Mapping[str, Method] | None = None,
    thresholds: Mapping[str, float] | None = None,
    test_max_rows: int = TEST_MAX_ROWS,
) -> DriftReport:
    """Compare ``current`` (a pandas DataFrame or pyarrow Table) with ``reference`` (a
    :class:`ReferenceProfile`, or a frame, profiled exactly) over ``columns`` (by default the
    profile's). ``methods``/``thresholds`` override the rule per column; the correction applies
    to the p-values of the columns tested (KS, chi-squared)."""
    if correction not in CORRECTIONS:
        raise Invalid(f"unknown correction {correction!r}", hint=f"one of {CORRECTIONS}")
    if not 0 < alpha < 1:
        raise Invalid(f"alpha must lie in (0, 1), not {alpha}", hint="0.05 is the default")
    if isinstance(reference, ReferenceProfile):
        profile = reference
        if columns is not None:
            _check_profile(profile, columns)
        names = list(columns if columns is not None else profile.columns)
    else:
        if columns is None:
            raise Invalid("columns are required with a reference frame", hint="name each kind")
        profile = exact_profile(reference, columns)
        names = list(columns)
    if not names:
        raise Invalid("no columns to compare", hint="name at least one column")
    rows_current = frame_rows(current)
    if rows_current == 0:
        raise Invalid("the current sample is empty", hint="compare a window with rows in it")
    methods, thresholds = methods or {}, thresholds or {}

    def one(name: str) -> ColumnDrift:
        column = profile.columns[name]
        if isinstance(column, NumericProfile):
            values, missing = numeric_values(current, name)
            return _numeric_drift(
                name,
                column,
                values,
                missing,
                methods.get(name),
                thresholds.get(name),
                test_max_rows,
            )
        counts, missing = category_counts(current, name)
        return _categorical_drift(
            name, column, counts, missing, methods.get(name), thresholds.get(name), test_max_rows
        )

    with ThreadPoolExecutor(max_workers=_workers(len(names))) as pool:
        results = list(pool.map(one, names))
    results = _apply_correction(results, alpha, correction)
    drifted = tuple(result.column for result in results if result.drifted)
    share = len(drifted) / len(results)
    return DriftReport(
        columns=tuple(results),
        alpha=alpha,
        correction=correction,
        drift_share=drift_share,
        drifted_columns=drifted,
        share_drifted=share,
        dataset_drift=share >= drift_share,
        rows_reference=profile.rows,
        rows_current=rows_current,
        approximate=any(_approximate(profile.columns[name]) for name in names),
    )


def prediction_drift(
    reference_scores: NumericProfile | Sequence[float] | np.ndarray,
    current_scores: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    method: Literal["ks", "wasserstein", "psi"] | None = None,
    threshold: float | None = None,
    test_max_rows: int = TEST_MAX_ROWS,
) -> ColumnDrift:
    """Drift of the prediction (score) distribution, by the numeric rule of :func:`drift_report`.
    Missing scores (NaN) are counted and left out."""
    current = np.asarray(current_scores, dtype=np.float64)
    if len(current) == 0:
        raise Invalid("the current scores are empty", hint="compare a window with predictions")
    if isinstance(reference_scores, NumericProfile):
        reference = reference_scores
    else:
        scores = np.asarray(reference_scores, dtype=np.float64)
        kept = scores[~np.isnan(scores)]
        reference = numeric_profile(sort_values(kept), len(scores) - len(kept), None)
    kept_current = current[~np.isnan(current)]
    result = _numeric_drift(
        "prediction",
        reference,
        kept_current,
        len(current) - len(kept_current),
        method,
        threshold,
        test_max_rows,
    )
    return _apply_correction([result], alpha, "none")[0]


def _apply_correction(
    results: list[ColumnDrift], alpha: float, correction: Correction
) -> list[ColumnDrift]:
    tested = [i for i, result in enumerate(results) if result.p_value is not None]
    adjusted = adjust_p_values([results[i].p_value or 0.0 for i in tested], correction)
    out = list(results)
    for i, p in zip(tested, adjusted, strict=True):
        p = float(p)
        out[i] = _replace(results[i], adjusted_p_value=p, threshold=alpha, drifted=p <= alpha)
    return out


def _replace(result: ColumnDrift, **changes: Any) -> ColumnDrift:
    from dataclasses import replace

    return replace(result, **changes)


def _check_profile(profile: ReferenceProfile, columns: Mapping[str, ColumnKindSpec]) -> None:
    for name, spec in columns.items():
        stored = profile.columns.get(name)
        if stored is None:
            raise Invalid(
                f"column {name!r} is not in the reference profile",
                hint="rebuild the profile with this column",
            )
        if stored.kind != column_kind(spec):
            raise Invalid(
                f"column {name!r} is {stored.kind} in the profile",
                hint="declare the same kind on both sides",
            )


def exact_profile(frame: Any, columns: Mapping[str, ColumnKindSpec]) -> ReferenceProfile:
    """The profile of a reference frame with every distinct value (exact statistics), its
    columns profiled in parallel."""
    names = list(columns)
    with ThreadPoolExecutor(max_workers=_workers(len(names))) as pool:
        built = list(
            pool.map(
                lambda name: ReferenceProfile.build(frame, {name: columns[name]}, sketch_size=None),
                names,
            )
        )
    merged = {name: part.columns[name] for name, part in zip(names, built, strict=True)}
    return ReferenceProfile(rows=frame_rows(frame), columns=merged, sketch_size=None)


def _workers(columns: int) -> int:
    return max(
        1,
        min(
            columns,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1,
        ),
    )


def _approximate(column: object) -> bool:
    """Whether a column's statistics come from a sketch rather than every value."""
    return isinstance(column, NumericProfile) and not column.exact


__all__ = [
    "ColumnDrift",
    "DriftReport",
    "ReferenceProfile",
    "adjust_p_values",
    "chi2_homogeneity",
    "drift_report",
    "exact_profile",
    "jensen_shannon",
    "ks_p_value",
    "ks_statistic",
    "prediction_drift",
    "psi",
    "wasserstein",
]
