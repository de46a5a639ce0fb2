"""Fairness metrics: hand-computed values, and agreement with fairlearn and scikit-learn."""

from __future__ import annotations

import json

import fairlearn.metrics as fairlearn_metrics
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from decisionloop.config import ColumnSpec
from decisionloop.errors import Invalid
from decisionloop.evaluation.fairness import (
    MISSING_GROUP,
    Groups,
    fairness_report,
    group_bins,
    worst_groups,
)

# two groups of four rows; threshold 0.5 selects rows 0, 2, 4 and 5
Y_TRUE = np.array([1, 1, 0, 0, 1, 0, 0, 0])
SCORES = np.array([0.9, 0.4, 0.6, 0.1, 0.8, 0.7, 0.2, 0.3])
GROUP = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])


def test_hand_computed_group_metrics() -> None:
    column = fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP}).column("g")

    a, b = column.group("a"), column.group("b")
    # a: TP 1, FN 1, FP 1, TN 1; positives 0.9, 0.4 against negatives 0.6, 0.1: 3 of 4 pairs
    assert (a.count, a.positives, a.selected) == (4, 2, 2)
    assert (a.selection_rate, a.true_positive_rate, a.false_positive_rate) == (0.5, 0.5, 0.5)
    assert a.precision == 0.5
    assert a.auc == pytest.approx(0.75)
    # b: TP 1, FN 0, FP 1, TN 2; its one positive (0.8) outranks every negative
    assert (b.count, b.positives, b.selected) == (4, 1, 2)
    assert (b.selection_rate, b.true_positive_rate) == (0.5, 1.0)
    assert b.false_positive_rate == pytest.approx(1 / 3)
    assert b.auc == pytest.approx(1.0)


def test_hand_computed_gaps() -> None:
    column = fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP}).column("g")

    assert column.statistical_parity_difference == 0.0
    assert column.statistical_parity_ratio == 1.0
    assert column.equal_opportunity_difference == pytest.approx(0.5)
    # max(TPR gap 0.5, FPR gap 1/2 - 1/3)
    assert column.equalized_odds_difference == pytest.approx(0.5)
    # equal rates and sizes: the first group is the reference
    assert column.reference_group == "a"
    assert column.disparate_impact == 1.0
    assert column.four_fifths_rule == "pass"


def test_four_fifths_rule_fails_below_eighty_percent() -> None:
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.9, 0.1, 0.2, 0.3, 0.4])
    group = np.array(["m"] * 5 + ["f"] * 5)

    column = fairness_report(y, scores, 0.5, {"sex": group}).column("sex")

    # m selects 3 of 5, f 1 of 5: 0.2 / 0.6
    assert column.reference_group == "m"
    assert column.reference_rule == "highest selection rate"
    assert column.statistical_parity_difference == pytest.approx(0.4)
    assert column.disparate_impact == pytest.approx(1 / 3)
    assert column.group("f").impact_ratio == pytest.approx(1 / 3)
    assert column.four_fifths_rule == "fail"
    assert column.adverse_impact_groups == ("f",)


def test_given_reference_group() -> None:
    column = fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP}, reference={"g": "b"}).column("g")

    assert column.reference_group == "b"
    assert column.reference_rule == "given"


def test_one_class_group_reports_none_with_a_reason() -> None:
    y = np.array([1, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.1, 0.6, 0.4, 0.7, 0.2])
    group = np.array(["a", "a", "a", "a", "c", "c"])

    report = fairness_report(y, scores, 0.5, {"g": group})
    c = report.column("g").group("c")

    assert c.true_positive_rate is None
    assert c.auc is None
    assert c.false_positive_rate == 0.5
    assert any("no positive rows" in note for note in c.notes)
    # the undefined TPR is left out of the gap: only a's TPR (1.0) remains
    assert report.column("g").equal_opportunity_difference == 0.0
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["columns"][0]["groups"][1]["auc"] is None


def test_tied_scores_count_half() -> None:
    y = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.5, 0.5, 0.5, 0.2, 0.5])

    auc = fairness_report(y, scores, 0.5, {"g": np.zeros(5, dtype=int)}).columns[0].groups[0].auc

    assert auc == pytest.approx(roc_auc_score(y, scores))


def test_rejects_bad_inputs() -> None:
    with pytest.raises(Invalid, match="0/1"):
        fairness_report(np.array([2, 0]), np.array([0.1, 0.2]), 0.5, {})
    with pytest.raises(Invalid, match="rows"):
        fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP[:3]})
    with pytest.raises(Invalid, match="reference group"):
        fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP}, reference={"g": "zzz"})


# -- groups -------------------------------------------------------------------------------------


def names_of(groups: Groups) -> list[str]:
    return [groups.names[code] for code in groups.codes]


def test_categories_keep_their_values_and_missing_is_a_group() -> None:
    groups = group_bins(np.array(["x", None, "y", "x", float("nan")], dtype=object))

    assert names_of(groups) == ["x", MISSING_GROUP, "y", "x", MISSING_GROUP]


def test_numeric_flags_are_categories() -> None:
    groups = group_bins(np.array([0, 1, 1, 0, 1]))

    assert groups.names == ("0", "1")
    assert groups.codes.tolist() == [0, 1, 1, 0, 1]


def test_numeric_columns_bin_over_the_contract_range() -> None:
    spec = ColumnSpec(type="number", min=0, max=100)
    values = np.array([0.0, 24.9, 25.0, 60.0, 100.0, np.nan, *range(30, 90, 5)])

    groups = group_bins(values, spec)

    expected = ["[0, 25)", "[0, 25)", "[25, 50)", "[50, 75)", "[75, 100]", MISSING_GROUP]
    assert names_of(groups)[:6] == expected
    assert "contract" in groups.rule


def test_explicit_bins_and_values_outside_them() -> None:
    groups = group_bins(np.array([-5.0, 1.0, 15.0, 30.0, 99.0]), bins=[0, 10, 20, 30])

    assert names_of(groups) == ["< 0", "[0, 10)", "[10, 20)", "[20, 30]", "> 30"]


def test_quantile_bins_without_a_range() -> None:
    values = np.arange(100, dtype=float)

    groups = group_bins(values)

    counts = np.bincount(groups.codes)
    assert len(groups.names) == 4
    assert counts.tolist() == [25, 25, 25, 25]
    assert "quantile" in groups.rule


def test_strings_declared_with_allowed_values_stay_categories() -> None:
    spec = ColumnSpec(type="integer", allowed=list(range(20)))

    groups = group_bins(np.arange(20), spec)

    assert len(groups.names) == 20


# -- worst groups -------------------------------------------------------------------------------


def test_worst_groups_ranks_by_gap_to_the_best_group() -> None:
    report = fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP})

    worst = worst_groups(report, "true_positive_rate", k=5)

    assert [(w.group, w.value, w.best) for w in worst] == [("a", 0.5, 1.0)]
    fpr = worst_groups(report, "false_positive_rate", k=5)
    assert [w.group for w in fpr] == ["a"]  # a higher false positive rate is worse
    assert fpr[0].gap == pytest.approx(0.5 - 1 / 3)


def test_worst_groups_rejects_unknown_metrics() -> None:
    report = fairness_report(Y_TRUE, SCORES, 0.5, {"g": GROUP})

    with pytest.raises(Invalid):
        worst_groups(report, "accuracy", k=1)  # type: ignore[arg-type]


# -- agreement with fairlearn and scikit-learn --------------------------------------------------


@pytest.fixture(scope="module")
def random_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 4_000
    senior = rng.integers(0, 2, n)
    region = rng.choice(np.array(["north", "south", "east", "west", "central"]), n)
    age = rng.uniform(18, 90, n)
    y = (rng.random(n) < 0.3 + 0.1 * senior).astype(int)
    scores = np.round(np.clip(rng.normal(0.35 + 0.25 * y - 0.05 * senior, 0.2), 0, 1), 2)
    return {"y": y, "scores": scores, "senior": senior, "region": region, "age": age}


def test_agrees_with_fairlearn(random_data: dict[str, np.ndarray]) -> None:
    y, scores = random_data["y"], random_data["scores"]
    predicted = (scores >= 0.5).astype(int)
    report = fairness_report(
        y,
        scores,
        0.5,
        {name: random_data[name] for name in ("senior", "region", "age")},
        specs={"age": ColumnSpec(type="number", min=18, max=90)},
    )
    assert [c.column for c in report.columns] == ["senior", "region", "age"]

    per_group = {
        "selection_rate": fairlearn_metrics.selection_rate,
        "true_positive_rate": fairlearn_metrics.true_positive_rate,
        "false_positive_rate": fairlearn_metrics.false_positive_rate,
        "precision": _precision,
    }
    for column in report.columns:
        groups = group_bins(
            random_data[column.column],
            ColumnSpec(type="number", min=18, max=90) if column.column == "age" else None,
        )
        labels = np.array(groups.names)[groups.codes]
        frame = fairlearn_metrics.MetricFrame(
            metrics=per_group, y_true=y, y_pred=predicted, sensitive_features=labels
        )
        by_group = frame.by_group
        assert sorted(by_group.index) == sorted(g.group for g in column.groups)
        for group in column.groups:
            for metric in per_group:
                assert getattr(group, metric) == pytest.approx(
                    by_group.loc[group.group, metric], abs=1e-6
                ), (column.column, group.group, metric)
            assert group.count == int((labels == group.group).sum())
            in_group = labels == group.group
            assert group.auc == pytest.approx(
                roc_auc_score(y[in_group], scores[in_group]), abs=1e-6
            )

        between = {"y_true": y, "y_pred": predicted, "sensitive_features": labels}
        expected = {
            "statistical_parity_difference": fairlearn_metrics.demographic_parity_difference(
                **between
            ),
            "statistical_parity_ratio": fairlearn_metrics.demographic_parity_ratio(**between),
            "equalized_odds_difference": fairlearn_metrics.equalized_odds_difference(**between),
        }
        if hasattr(fairlearn_metrics, "equal_opportunity_difference"):
            expected["equal_opportunity_difference"] = (
                fairlearn_metrics.equal_opportunity_difference(**between)
            )
        for name, value in expected.items():
            assert getattr(column, name) == pytest.approx(value, abs=1e-6), (column.column, name)
        # with the highest-rate group as reference, disparate impact is the parity ratio
        assert column.disparate_impact == pytest.approx(column.statistical_parity_ratio)


def _precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import precision_score

    return float(precision_score(y_true, y_pred, zero_division=0))
