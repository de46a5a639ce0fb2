"""The per-column statistics of drift detection: Kolmogorov-Smirnov, Wasserstein, PSI,
chi-squared and Jensen-Shannon, each between a reference (a :class:`NumericProfile`, or counts)
and the current sample. :mod:`decisionloop.evaluation.drift` chooses among them and gives the
verdicts; docs/evaluation.md documents the rule.

Numeric statistics never need more of the reference than its profile, and with an exact
profile (every distinct value a knot) they equal scipy's on the raw samples. KS takes the
current values sorted; Wasserstein and the PSI bins take them in any order
(:class:`BinnedCurrent`), so the large samples, which get Wasserstein, are never sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from decisionloop.evaluation.drift_profile import NumericProfile, bin_counts, sort_values

#: a share of zero becomes this in PSI, whose logarithm is undefined at zero
PSI_EPSILON = 1e-4
#: up to this many rows per side the KS p-value is scipy's exact one; above, its asymptotic one
KS_EXACT_MAX_ROWS = 10_000
#: BinnedCurrent: about this many current values per cell, and at most this many cells
VALUES_PER_CELL = 8
MAX_CELLS = 1 << 17
#: a reference with this many values per knot on average is tied to few values (see
#: current_sample); measured: sorting wins from about 30 on, cells up to about 10
TIED_VALUES_PER_KNOT = 16


def ks_statistic(reference: NumericProfile, current_sorted: np.ndarray) -> float:
    """sup |F_ref - F_cur| over every knot and every current value (left and right limits)."""
    m = len(current_sorted)
    first = np.r_[True, current_sorted[1:] != current_sorted[:-1]]
    last = np.r_[current_sorted[1:] != current_sorted[:-1], True]
    values = current_sorted[first]
    cur_left = np.flatnonzero(first) / m
    cur_right = (np.flatnonzero(last) + 1) / m
    gaps = [
        np.abs(reference.cdf(values) - cur_right),
        np.abs(reference.cdf(values, left=True) - cur_left),
        np.abs(reference.cum_le / reference.count - _ecdf(current_sorted, reference.knots)),
        np.abs(
            reference.cum_lt / reference.count - _ecdf(current_sorted, reference.knots, left=True)
        ),
    ]
    return float(max(gap.max() for gap in gaps))


def ks_p_value(statistic: float, reference: NumericProfile, current_sorted: np.ndarray) -> float:
    """scipy.stats.ks_2samp's two-sided p-value: exact up to 10,000 rows per side (needs an
    exact profile), else the asymptotic Kolmogorov distribution at ``n m / (n + m)``."""
    from scipy import stats

    n, m = reference.count, len(current_sorted)
    if reference.exact and max(n, m) <= KS_EXACT_MAX_ROWS:
        sample = np.repeat(reference.knots, reference.cum_le - reference.cum_lt)
        return float(stats.ks_2samp(sample, current_sorted).pvalue)
    effective = round(n * m / (n + m))
    return float(np.clip(stats.kstwo.sf(statistic, effective), 0.0, 1.0))


def wasserstein(reference: NumericProfile, current: np.ndarray) -> float:
    """The integral of |F_ref - F_cur| over the values (``current``: non-missing, in any
    order); see :func:`current_sample` for how it avoids sorting them."""
    return current_sample(reference, current).wasserstein()


def current_sample(reference: NumericProfile, values: np.ndarray) -> SortedCurrent | BinnedCurrent:
    """A numeric column's current values (non-missing, in any order) ready for Wasserstein
    and the PSI bins: spread over cells (:class:`BinnedCurrent`), or sorted
    (:class:`SortedCurrent`) when the reference holds on average at least 16 values per knot,
    data tied to few values (an integer column), which sorts quickly and whose jumps would
    make the cells cross."""
    at_knots = reference.count if reference.exact else int(reference.masses()[0].sum())
    if at_knots >= TIED_VALUES_PER_KNOT * len(reference.knots):
        return SortedCurrent(reference, sort_values(values))
    return BinnedCurrent.build(reference, values)


@dataclass(frozen=True, eq=False)
class SortedCurrent:
    """Current values sorted: the area between the distribution functions on the grid of
    the knots and the distinct values (F_cur constant and F_ref linear between neighbours)."""

    reference: NumericProfile
    ordered: np.ndarray

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        """Counts in the bins (-inf, e1], (e1, e2], ..., (ek, inf)."""
        return bin_counts(self.ordered, edges)

    def wasserstein(self) -> float:
        """The integral of |F_ref - F_cur|."""
        ordered, m = self.ordered, len(self.ordered)
        grid = _union(self.reference.knots, ordered)
        cur = np.searchsorted(ordered, grid[:-1], side="right") / m
        at_most, below = self.reference.limits(grid)
        return _area(at_most[:-1] - cur, below[1:] - cur, np.diff(grid))


@dataclass(frozen=True, eq=False)
class BinnedCurrent:
    """Current values spread over equal-width cells across the reference's range, plus one
    cell below its minimum and one from its maximum on: per cell, the count and the sum of the
    values' distances from the cell's lower edge. Found by arithmetic (checked against the
    edges), not by a search.

    On a cell where the two distribution functions cannot cross (their ranges over the cell
    do not overlap, the usual case with many narrow cells), the area between them is the
    difference of their integrals, which needs only the count and the sum; on the others
    (near a crossing) the values are sorted and integrated exactly: at 1M values, at most
    about 2% of the cells, holding up to 16% of the values, when nothing moved. Data
    tied to a few values would send most of its values down that path, so
    :func:`current_sample` sorts those instead. Values must be non-missing."""

    reference: NumericProfile
    values: np.ndarray
    bounds: np.ndarray  # -inf, the inner edges (min to max of the reference), +inf
    cell: np.ndarray  # each value's cell: bounds[cell] <= value < bounds[cell + 1]
    counts: np.ndarray  # values per cell
    offsets: np.ndarray  # per cell, the sum of (value - the cell's lower edge; min for cell 0)

    @classmethod
    def build(cls, reference: NumericProfile, values: np.ndarray) -> BinnedCurrent:
        knots = reference.knots
        lo, hi = float(knots[0]), float(knots[-1])
        inner = min(MAX_CELLS, max(1, len(values) // VALUES_PER_CELL))
        scale = inner / (hi - lo) if hi > lo else 0.0  # Python floats: inf, not an error
        if not (0.0 < scale < np.inf):  # one knot, or a range beyond float64
            inner, scale = 0, 0.0
        edges = np.linspace(lo, hi, inner + 1) if inner else knots[:1]
        bounds = np.r_[-np.inf, edges, np.inf]
        # in place where it can be: fresh 8 MB arrays cost page faults, not just arithmetic
        scratch = np.subtract(values, lo, dtype=np.float64)
        if inner:  # 1 + the cell's position, truncated: below the minimum gives cell 0
            scratch *= scale
            scratch += 1
            np.clip(scratch, 0, inner + 1, out=scratch)
            cell = scratch.astype(np.intp)
        else:
            cell = (values >= lo).astype(np.intp)
        anchor = np.r_[lo, edges]  # cell 0 measures from the minimum, the others from below
        lowest = np.r_[-np.inf, np.zeros(len(edges))]  # offsets allowed in each cell
        width = np.r_[0.0, np.diff(edges), np.inf]
        offset = np.subtract(values, np.take(anchor, cell, out=scratch), out=scratch)
        # rounding can put a value next to its cell; such values are placed by a search
        limit = np.take(lowest, cell)
        wrong = offset < limit
        wrong |= offset >= np.take(width, cell, out=limit)
        if wrong.any():
            moved = np.flatnonzero(wrong)
            cell[moved] = np.searchsorted(bounds, values[moved], side="right") - 1
            offset[moved] = values[moved] - anchor[cell[moved]]
        cells = len(bounds) - 1
        counts = np.bincount(cell, minlength=cells)
        offsets = np.bincount(cell, weights=offset, minlength=cells)
        return cls(reference, values, bounds, cell, counts, offsets)

    def count_at_most(self, points: np.ndarray) -> np.ndarray:
        """How many values are ``<= p`` for each of a few sorted ``points``."""
        home = np.searchsorted(self.bounds, points, side="right") - 1
        before = np.r_[0, np.cumsum(self.counts)][home]
        chosen = np.zeros(len(self.counts), dtype=bool)
        chosen[home] = True
        picked = chosen[self.cell]
        values, cells = self.values[picked], self.cell[picked]
        inside = (cells[None, :] == home[:, None]) & (values[None, :] <= points[:, None])
        counted: np.ndarray = before + inside.sum(axis=1)
        return counted

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        """Counts in the bins (-inf, e1], (e1, e2], ..., (ek, inf), as
        :func:`~decisionloop.evaluation.drift_profile.bin_counts` on the values sorted."""
        cuts = self.count_at_most(edges)
        counts: np.ndarray = np.diff(np.r_[0, cuts, len(self.values)]).astype(np.int64)
        return counts

    def wasserstein(self) -> float:
        """The integral of |F_ref - F_cur| (see the class docstring)."""
        reference, m = self.reference, len(self.values)
        edges = self.bounds[1:-1]
        below = np.r_[0, np.cumsum(self.counts)]  # values before each cell
        outside = (self.offsets[-1] - self.offsets[0]) / m  # F_ref = 0 below, 1 above
        if len(edges) < 2:
            return float(outside)
        counts, offsets = self.counts[1:-1], self.offsets[1:-1]
        width = np.diff(edges)
        start_cur, end_cur = below[1:-2] / m, below[2:-1] / m  # F_cur just inside each cell
        last_knot = np.searchsorted(reference.knots, edges, side="right") - 1
        at_most, below_edge = reference.limits(edges, last_knot)
        start_ref, end_ref = at_most[:-1], below_edge[1:]
        integral_cur = width * start_cur + (counts * width - offsets) / m
        integral_ref = _cdf_integrals(reference, edges, last_knot, at_most, below_edge)
        apart = (start_ref >= end_cur) | (start_cur >= end_ref)
        area = float(np.abs(integral_ref - integral_cur)[apart].sum())
        crossing = np.flatnonzero(~apart)
        if len(crossing):
            area += self._exact_area(crossing + 1, below)
        return float(area + outside)

    def _exact_area(self, cells: np.ndarray, below: np.ndarray) -> float:
        """The area over ``cells`` from their values, sorted: the breakpoints are the cells'
        edges, the knots inside them and the values; between two breakpoints F_cur is
        constant and F_ref linear."""
        reference, m, bounds = self.reference, len(self.values), self.bounds
        chosen = np.zeros(len(self.counts), dtype=bool)
        chosen[cells] = True
        ordered = np.sort(self.values[chosen[self.cell]])
        earlier = np.r_[0, np.cumsum(np.where(chosen, self.counts, 0))]  # chosen values before
        knots = reference.knots
        first = np.searchsorted(knots, bounds[cells], side="right")  # knots inside a cell
        taken = np.searchsorted(knots, bounds[cells + 1], side="left") - first
        runs = np.cumsum(taken) - taken
        knot_index = np.repeat(first - runs, taken) + np.arange(taken.sum())
        grid = _union(np.r_[bounds[cells], bounds[cells + 1], knots[knot_index]], ordered)
        home = np.searchsorted(bounds, grid[:-1], side="right") - 1
        kept = chosen[home]
        lower, upper, home = grid[:-1][kept], grid[1:][kept], home[kept]
        at_most = below[home] + np.searchsorted(ordered, lower, side="right") - earlier[home]
        cur = at_most / m
        ref_at_most, ref_below = reference.limits(grid)
        return _area(ref_at_most[:-1][kept] - cur, ref_below[1:][kept] - cur, upper - lower)


def _union(points: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """The distinct values of ``points`` and of the sorted ``ordered``, sorted: a merge of two
    sorted runs (which NumPy's stable sort does in one pass), not a sort of both."""
    merged = np.sort(np.r_[np.sort(points), _distinct(ordered)], kind="stable")
    return _distinct(merged)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array."""
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    kept: np.ndarray = ordered[first]
    return kept


def _area(start: np.ndarray, end: np.ndarray, width: np.ndarray) -> float:
    """The total area of |g| over intervals on which g is linear, from ``start`` to ``end``."""
    spread = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, 2 * spread, out=np.zeros_like(spread), where=spread > 0)
    return float((np.where(start * end >= 0, spread / 2, crossing) * width).sum())


def _cdf_integrals(
    reference: NumericProfile,
    edges: np.ndarray,
    home: np.ndarray,
    at_edge: np.ndarray,
    below_edge: np.ndarray,
) -> np.ndarray:
    """The integral of F_ref over each [edges[i], edges[i + 1]], for sorted edges from the
    reference's minimum to its maximum (at least two knots), given the index of the last knot
    ``<= edge`` (``home``) and F_ref at and just below each edge. A cell is cut at the first
    and last knot inside it: the whole pieces between those (F_ref linear on each, constant
    in an exact profile) are summed, and the two cut parts, like a cell with no knot inside,
    are trapezoids of their own width, never differences of longer integrals."""
    knots, n, last = reference.knots, reference.count, len(reference.knots) - 1
    at_most, below = reference.cum_le, reference.cum_lt
    doubled = np.empty(last + 1)  # 2 n x the integral over each piece, and 0 past the maximum
    np.multiply(np.diff(knots), at_most[:-1] + below[1:], out=doubled[:-1])
    doubled[-1] = 0.0
    first, final = home[:-1] + 1, home[1:]  # the first and last knot inside each cell
    bounds = np.empty(2 * len(first), dtype=np.intp)
    bounds[0::2], bounds[1::2] = np.minimum(first, last), final
    whole = np.add.reduceat(doubled, bounds)[0::2] / (2 * n)
    whole[final <= first] = 0.0  # no whole piece (reduceat gives one for an empty range)
    lower, upper = edges[:-1], edges[1:]
    start, end = at_edge[:-1], below_edge[1:]
    cut = final >= first
    head_knot, tail_knot = np.minimum(first, last), final
    head = (knots[head_knot] - lower) * (start + below[head_knot] / n) / 2
    tail = (upper - knots[tail_knot]) * (at_most[tail_knot] / n + end) / 2
    plain = (upper - lower) * (start + end) / 2
    integrals: np.ndarray = np.where(cut, head + whole + tail, plain)
    return integrals


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index: sum((cur - ref) * ln(cur / ref)) over the bins' shares, a
    zero share taken as 1e-4."""
    ref = np.maximum(reference_counts / max(reference_counts.sum(), 1), PSI_EPSILON)
    cur = np.maximum(current_counts / max(current_counts.sum(), 1), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def chi2_homogeneity(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[float, float]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table (no Yates correction):
    the statistic and its p-value, as ``scipy.stats.chi2_contingency(table, correction=False)``."""
    from scipy import stats

    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """The Jensen-Shannon distance (natural logarithm) between the two share vectors, as
    ``scipy.spatial.distance.jensenshannon`` computes it (without importing scipy.spatial,
    a fifth of a second)."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    ref, cur = ref / ref.sum(), cur / cur.sum()
    mid = (ref + cur) / 2
    divergence = np.sum(_relative_entropy(ref, mid)) + np.sum(_relative_entropy(cur, mid))
    return float(np.sqrt(divergence / 2))


def _relative_entropy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x ln(x / y) elementwise, 0 where x is 0 (scipy.special.rel_entr where y > 0)."""
    ratio = np.divide(x, y, out=np.ones_like(x), where=x > 0)
    terms: np.ndarray = x * np.log(ratio)
    return terms


def _ecdf(ordered: np.ndarray, x: np.ndarray, *, left: bool = False) -> np.ndarray:
    side: Literal["left", "right"] = "left" if left else "right"
    return np.searchsorted(ordered, x, side=side) / len(ordered)


__all__ = [
    "KS_EXACT_MAX_ROWS",
    "PSI_EPSILON",
    "BinnedCurrent",
    "SortedCurrent",
    "chi2_homogeneity",
    "current_sample",
    "jensen_shannon",
    "ks_p_value",
    "ks_statistic",
    "psi",
    "wasserstein",
]
