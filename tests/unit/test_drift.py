"""Drift statistics against scipy, the test-choice rule, corrections, false alarms, profiles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial import distance

from decisionloop.errors import Invalid
from decisionloop.evaluation.drift import (
    adjust_p_values,
    chi2_homogeneity,
    drift_report,
    jensen_shannon,
    ks_p_value,
    ks_statistic,
    prediction_drift,
    psi,
    wasserstein,
)
from decisionloop.evaluation.drift_profile import (
    NumericProfile,
    ReferenceProfile,
    bin_counts,
    category_counts,
    numeric_profile,
    sort_values,
)
from decisionloop.evaluation.drift_tests import BinnedCurrent, SortedCurrent, current_sample

#: the sketch's documented agreement with the exact statistics (4096 ranks, 1M continuous rows)
SKETCH_TOLERANCE = 5e-5


def exact(values: np.ndarray) -> object:
    return numeric_profile(np.sort(values), 0, None)


@pytest.mark.parametrize(("n", "m"), [(40, 70), (800, 600), (3000, 9000), (20_000, 15_000)])
@pytest.mark.parametrize("rounded", [False, True])
def test_ks_and_wasserstein_agree_with_scipy_exactly(n: int, m: int, rounded: bool) -> None:
    rng = np.random.default_rng(n + m)
    reference, current = rng.normal(size=n), rng.normal(0.1, 1.2, size=m)
    if rounded:  # ties inside and across the samples
        reference, current = np.round(reference, 1), np.round(current, 1)
    profile = numeric_profile(np.sort(reference), 0, None)
    ordered = np.sort(current)
    expected = stats.ks_2samp(reference, current)
    statistic = ks_statistic(profile, ordered)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_p_value(statistic, profile, ordered) == pytest.approx(expected.pvalue, abs=1e-6)
    assert wasserstein(profile, ordered) == pytest.approx(
        stats.wasserstein_distance(reference, current), abs=1e-12
    )


@pytest.mark.parametrize("draw", ["normal", "lognormal"])
def test_the_sketch_stays_within_its_documented_tolerance(draw: str) -> None:
    rng = np.random.default_rng(7)
    sample = getattr(rng, draw)
    reference, current = sample(size=1_000_000), sample(0.02, 1.0, size=200_000)
    profile = numeric_profile(np.sort(reference), 0, 4096)
    assert not profile.exact
    assert len(profile.knots) <= 4096 + 2 * 512 + 1
    ordered = np.sort(current)
    expected = stats.ks_2samp(reference, current)
    statistic = ks_statistic(profile, ordered)
    assert statistic == pytest.approx(expected.statistic, abs=SKETCH_TOLERANCE)
    assert ks_p_value(statistic, profile, ordered) == pytest.approx(expected.pvalue, abs=1e-3)
    exact_w = stats.wasserstein_distance(reference, current)
    assert wasserstein(profile, ordered) / reference.std() == pytest.approx(
        exact_w / reference.std(), abs=SKETCH_TOLERANCE
    )


def area_on_a_grid(profile: NumericProfile, ordered: np.ndarray) -> float:
    """The integral of |F_ref - F_cur| the plain way, an oracle for sketches: on the grid of
    knots and values F_cur is constant and F_ref linear between neighbours."""
    grid = np.unique(np.r_[profile.knots, ordered])
    cur = np.searchsorted(ordered, grid[:-1], side="right") / len(ordered)
    start = profile.cdf(grid[:-1]) - cur
    end = profile.cdf(grid[1:], left=True) - cur
    total = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, 2 * total, out=np.zeros_like(total), where=total > 0)
    return float((np.where(start * end >= 0, total / 2, crossing) * np.diff(grid)).sum())


def draws(kind: str, rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "normal":
        return rng.normal(size=n), rng.normal(0.05, 1.1, size=m)
    if kind == "ties":  # ties within and across the samples, at cell edges too
        return np.round(rng.normal(size=n), 2), np.round(rng.normal(size=m), 2)
    if kind == "integers":  # a few values: most cells are integrated exactly
        return rng.integers(0, 9, n).astype(float), rng.integers(1, 11, m).astype(float)
    if kind == "heavy_tail":
        return rng.pareto(1.0, n), rng.pareto(1.1, m)
    if kind == "outside":  # current values beyond the reference's range on both sides
        return rng.uniform(0, 1, n), rng.uniform(-0.5, 1.5, m)
    if kind == "at_knots":  # current values equal to reference values
        reference = rng.normal(size=n)
        return reference, rng.choice(reference, m)
    if kind == "far_from_zero":
        return 1e6 + rng.normal(size=n), 1e6 + rng.normal(0.01, 1, size=m)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["normal", "ties", "integers", "heavy_tail", "outside", "at_knots", "far_from_zero"]
)
@pytest.mark.parametrize("sketch", [None, 64])
@pytest.mark.parametrize(("n", "m"), [(60_000, 45_000), (400, 9)])
def test_binned_statistics_equal_the_sorted_ones(
    kind: str, sketch: int | None, n: int, m: int
) -> None:
    """The current values in row order, spread over cells and never sorted, give the sorted
    computation's Wasserstein distance (scipy's with an exact profile) and PSI bins; so does
    the sorted form, which current_sample picks for data tied to few values."""
    rng = np.random.default_rng(len(kind))
    reference, current = draws(kind, rng, n, m)
    profile = numeric_profile(np.sort(reference), 0, sketch)
    ordered = np.sort(current)
    expected = (
        stats.wasserstein_distance(reference, current)
        if profile.exact
        else area_on_a_grid(profile, ordered)
    )
    edges = profile.psi_edges
    for sample in (BinnedCurrent.build(profile, current), SortedCurrent(profile, ordered)):
        assert sample.bin_counts(edges).tolist() == bin_counts(ordered, edges).tolist()
        assert sample.wasserstein() == pytest.approx(expected, rel=1e-11, abs=1e-12)
    chosen = current_sample(profile, current)
    tied = kind == "integers" or (kind == "ties" and n > 1000)
    assert isinstance(chosen, SortedCurrent if tied else BinnedCurrent)
    assert wasserstein(profile, current) == chosen.wasserstein()


def test_crossing_cells_without_current_values() -> None:
    """The current values all outside the reference's range: F_ref crosses F_cur in cells
    that hold no current value."""
    reference = np.random.default_rng(6).uniform(0, 1, 400)
    profile = numeric_profile(np.sort(reference), 0, None)
    for current in (np.array([-1.0, 2.0]), np.r_[np.full(40, -1.0), np.full(40, 3.0)]):
        expected = stats.wasserstein_distance(reference, current)
        assert wasserstein(profile, current) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(size=80_000),
        np.random.default_rng(2).pareto(1.0, size=80_000),  # skewed: sorted directly
        np.r_[np.random.default_rng(3).normal(size=60_000), np.inf, -np.inf],
        np.random.default_rng(4).integers(0, 3, size=60_000).astype(float),
        np.full(60_000, 2.5),
        np.r_[np.full(60_000, -1e308), 1e308],  # a range beyond float64
        np.r_[np.zeros(60_000), -0.0, 5e-324],
    ],
)
def test_sort_values_sorts(values: np.ndarray) -> None:
    assert np.array_equal(sort_values(values), np.sort(values))


def test_chi2_and_jensen_shannon_agree_with_scipy() -> None:
    reference = np.array([120, 80, 40, 0, 10])
    current = np.array([90, 100, 35, 5, 0])
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    statistic, p_value = chi2_homogeneity(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-12)
    assert jensen_shannon(reference, current) == pytest.approx(
        distance.jensenshannon(reference / reference.sum(), current / current.sum()), abs=1e-12
    )


def test_psi_by_hand() -> None:
    # shares 0.5/0.3/0.2 against 0.4/0.4/0.2
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.4 - 0.3) * np.log(0.4 / 0.3)
    assert psi(np.array([50, 30, 20]), np.array([40, 40, 20])) == pytest.approx(by_hand)
    # an empty bin counts as a share of 1e-4
    with_zero = (0.5 - 1e-4) * np.log(0.5 / 1e-4) + (0.5 - 1.0) * np.log(0.5 / 1.0)
    assert psi(np.array([0, 10]), np.array([5, 5])) == pytest.approx(with_zero)


def test_psi_bins_are_reference_deciles() -> None:
    reference = np.arange(1000, dtype=float) ** 2  # skewed: equal-width bins would be uneven
    profile = numeric_profile(np.sort(reference), 0, None)
    assert profile.psi_counts.tolist() == [100] * 10


def frames(rows: int, seed: int, shift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    delta = 0.5 if shift else 0.0
    shares = [0.2, 0.5, 0.3] if shift else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "stable": rng.normal(size=rows),
            "moved": rng.normal(delta, 1, size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows, p=[0.5, 0.3, 0.2]),
            "plan": rng.choice(["a", "b", "c"], size=rows, p=shares),
        }
    )


KINDS = {"stable": "numeric", "moved": "numeric", "colour": "categorical", "plan": "categorical"}


@pytest.mark.parametrize("rows", [500, 20_000])
def test_injected_shifts_are_flagged_and_the_rule_is_reported(rows: int) -> None:
    report = drift_report(frames(rows, 1, False), frames(rows, 2, True), KINDS)
    assert set(report.drifted_columns) == {"moved", "plan"}
    assert report.share_drifted == 0.5
    assert report.dataset_drift
    small = rows <= 1000
    assert report.column("moved").method == ("ks" if small else "wasserstein")
    assert report.column("plan").method == ("chi2" if small else "jensenshannon")
    assert "1000" in report.column("moved").reason
    assert report.column("moved").psi is not None
    assert report.column("moved").psi > 0.1
    json.dumps(report.to_dict())


def test_the_same_verdicts_from_a_stored_profile_and_an_arrow_table() -> None:
    reference, current = frames(20_000, 3, False), frames(20_000, 4, True)
    profile = ReferenceProfile.build(pa.Table.from_pandas(reference), KINDS)
    stored = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    from_profile = drift_report(stored, pa.Table.from_pandas(current))
    from_frame = drift_report(reference, current, KINDS)
    assert from_profile.drifted_columns == from_frame.drifted_columns
    for a, b in zip(from_profile.columns, from_frame.columns, strict=True):
        assert a.statistic == pytest.approx(b.statistic, abs=SKETCH_TOLERANCE)  # a sketch
        assert a.psi == pytest.approx(b.psi, abs=1e-12)


@pytest.mark.parametrize("dtype", [object, "str", "category"])
def test_category_counts_agree_across_column_types(dtype: object) -> None:
    values = ["a", None, "b", "a", np.nan, "c", "a"]
    frame = pd.DataFrame({"c": pd.Series(values, dtype=dtype)})
    assert category_counts(frame, "c") == ({"a": 3, "b": 1, "c": 1}, 2)
    assert category_counts(pa.Table.from_pandas(frame), "c") == ({"a": 3, "b": 1, "c": 1}, 2)


def test_profile_round_trips_through_json() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=30_000), "c": rng.choice(list("abcd"), 30_000)})
    frame.loc[::7, "x"] = np.nan
    profile = ReferenceProfile.build(frame, {"x": "numeric", "c": "categorical"})
    again = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again.to_dict() == profile.to_dict()
    assert again.columns["x"].missing == len(frame.loc[::7])
    assert not again.columns["x"].exact


def test_missing_values_are_counted_and_empty_current_is_invalid() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "c": ["a", None, "b", "a"]})
    current = pd.DataFrame({"x": [np.nan, np.nan, np.nan], "c": ["a", "b", None]})
    report = drift_report(reference, current, {"x": "numeric", "c": "categorical"})
    x, c = report.column("x"), report.column("c")
    assert (x.missing_reference, x.missing_current, x.n_current) == (1, 3, 0)
    assert x.method == "missing"
    assert x.drifted
    assert (c.missing_reference, c.missing_current, c.n_current) == (1, 1, 2)
    with pytest.raises(Invalid, match="empty"):
        drift_report(reference, current.iloc[:0], {"x": "numeric"})


def test_method_overrides_and_wrong_methods() -> None:
    reference, current = frames(500, 1, False), frames(500, 2, False)
    report = drift_report(
        reference, current, KINDS, methods={"stable": "psi"}, thresholds={"stable": 10.0}
    )
    stable = report.column("stable")
    assert (stable.method, stable.threshold, stable.drifted) == ("psi", 10.0, False)
    assert stable.statistic == stable.psi
    with pytest.raises(Invalid, match="does not apply"):
        drift_report(reference, current, KINDS, methods={"stable": "chi2"})


def test_corrections_match_their_definitions() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    assert adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust_p_values(p, "bh") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2])
    assert adjust_p_values(p, "none") == p


def test_false_alarms_stay_near_alpha() -> None:
    """Unshifted columns: about alpha of them flagged without a correction, and with Holm's
    at most alpha of the data sets have any column flagged (family-wise)."""
    rng = np.random.default_rng(11)
    datasets, columns, rows, alpha = 200, 10, 300, 0.05
    kinds = {f"n{i}": "numeric" for i in range(columns // 2)}
    kinds.update({f"c{i}": "categorical" for i in range(columns // 2)})
    flagged_raw = flagged_any_holm = 0
    for _ in range(datasets):
        sides = []
        for _side in range(2):
            data: dict[str, object] = {
                name: rng.normal(size=rows) for name in kinds if name.startswith("n")
            }
            data.update(
                {
                    name: rng.choice(list("abcd"), size=rows, p=[0.4, 0.3, 0.2, 0.1])
                    for name in kinds
                    if name.startswith("c")
                }
            )
            sides.append(pd.DataFrame(data))
        raw = drift_report(sides[0], sides[1], kinds, alpha=alpha, correction="none")
        flagged_raw += len(raw.drifted_columns)
        p_values = [column.p_value or 0.0 for column in raw.columns]
        flagged_any_holm += min(adjust_p_values(p_values, "holm")) <= alpha
    share = flagged_raw / (datasets * columns)
    assert 0.02 <= share <= 0.08  # alpha = 0.05, about 2,000 checks
    assert flagged_any_holm / datasets <= alpha + 0.03  # sampling slack over 200 data sets


def test_prediction_drift_uses_the_numeric_rule() -> None:
    rng = np.random.default_rng(9)
    reference = rng.beta(2, 5, size=5000)
    same = prediction_drift(reference, rng.beta(2, 5, size=5000))
    moved = prediction_drift(reference, rng.beta(3, 4, size=5000))
    assert (same.method, same.drifted) == ("wasserstein", False)
    assert moved.drifted
    small = prediction_drift(reference[:300], rng.beta(3, 4, size=300))
    assert small.method == "ks"
    assert small.p_value is not None
    assert small.p_value < 0.05
    with pytest.raises(Invalid):
        prediction_drift(reference, [])
