"""Training: preprocessing, splits, the XGBoost trainer, metrics and gates."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from decisionloop.config import ColumnSpec, GateSpec
from decisionloop.errors import Invalid, InvalidConfig
from decisionloop.evaluation.gates import check_gates, evaluate_gates
from decisionloop.evaluation.metrics import binary_metrics, metric_names, prefixed
from decisionloop.training.preprocess import FORMAT, Preprocessor
from decisionloop.training.split import split_rows
from decisionloop.training.xgboost_trainer import XGBoostTrainer

# --- Preprocessor -----------------------------------------------------------------------------

COLUMNS = {
    "plan": ColumnSpec(type="string"),
    "age": ColumnSpec(type="integer"),
    "when": ColumnSpec(type="datetime"),
    "active": ColumnSpec(type="boolean"),
}


def training_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plan": ["pro", "basic", "pro", None, "team", "pro", "basic"],
            "age": [20.0, 30.0, None, 50.0, 40.0, 10.0, 60.0],
            "when": pd.to_datetime(["2024-01-01"] * 7, utc=True),
            "active": [1.0, 0.0, 1.0, 1.0, None, 0.0, 1.0],
        }
    )


def test_fit_records_medians_and_categories() -> None:
    pre = Preprocessor.fit(training_frame(), COLUMNS)

    assert [(f.name, f.fill) for f in pre.numeric] == [("age", 35.0), ("active", 1.0)]
    # most frequent first, ties alphabetical; missing values are not a category
    assert [(f.name, f.categories) for f in pre.categorical] == [("plan", ("pro", "basic", "team"))]
    assert pre.input_columns == ["age", "active", "plan"]  # datetimes are not model inputs


def test_feature_names_match_matrix_columns() -> None:
    frame = training_frame()
    pre = Preprocessor.fit(frame, COLUMNS)

    matrix = pre.transform(frame)

    assert pre.feature_names == ("age", "active", "plan=pro", "plan=basic", "plan=team")
    assert matrix.shape == (7, len(pre.feature_names))
    by_name = dict(zip(pre.feature_names, matrix.T, strict=True))
    assert by_name["age"].tolist() == [20.0, 30.0, 35.0, 50.0, 40.0, 10.0, 60.0]
    assert by_name["plan=pro"].tolist() == [1, 0, 1, 0, 0, 1, 0]
    assert by_name["plan=basic"].tolist() == [0, 1, 0, 0, 0, 0, 1]


def test_transform_imputes_medians_and_zeroes_unknown_categories() -> None:
    pre = Preprocessor.fit(training_frame(), COLUMNS)
    new = pd.DataFrame(
        {
            "plan": ["team", "enterprise", None],
            "age": [None, 25.0, 70.0],
            "active": [0.0, None, 1.0],
        }
    )

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unknown categories must not hit a pandas deprecation
        matrix = pre.transform(new)

    assert matrix.dtype == np.float32
    assert matrix.tolist() == [
        [35.0, 0.0, 0.0, 0.0, 1.0],  # missing age -> training median
        [25.0, 1.0, 0.0, 0.0, 0.0],  # unknown category -> all zeros
        [70.0, 1.0, 0.0, 0.0, 0.0],  # missing category -> all zeros
    ]


def test_all_missing_numeric_column_fills_zero() -> None:
    frame = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 3.0]})
    columns = {"x": ColumnSpec(type="number"), "y": ColumnSpec(type="number")}

    pre = Preprocessor.fit(frame, columns)

    assert [f.fill for f in pre.numeric] == [0.0, 2.0]
    assert pre.transform(frame).tolist() == [[0.0, 1.0], [0.0, 3.0]]


def test_max_categories_keeps_most_frequent() -> None:
    frame = pd.DataFrame({"c": ["a", "b", "b", "c", "c", "c"]})

    pre = Preprocessor.fit(frame, {"c": ColumnSpec(type="string")}, max_categories=2)

    assert pre.feature_names == ("c=c", "c=b")
    assert pre.transform(pd.DataFrame({"c": ["a", "b"]})).tolist() == [[0, 0], [0, 1]]


def test_to_dict_from_dict_round_trip() -> None:
    frame = training_frame()
    pre = Preprocessor.fit(frame, COLUMNS)

    data = json.loads(json.dumps(pre.to_dict()))
    restored = Preprocessor.from_dict(data)

    assert data["format"] == FORMAT
    assert restored == pre
    np.testing.assert_array_equal(restored.transform(frame), pre.transform(frame))


@pytest.mark.parametrize("fmt", [None, "decisionloop.preprocessor/2", "sklearn"])
def test_from_dict_with_wrong_format_is_invalid(fmt: str | None) -> None:
    data = Preprocessor.fit(training_frame(), COLUMNS).to_dict()
    data["format"] = fmt

    with pytest.raises(Invalid, match="unknown preprocessor format"):
        Preprocessor.from_dict(data)


@pytest.mark.parametrize(
    ("frame", "columns"),
    [
        (pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}), {"t": ColumnSpec(type="datetime")}),
        (pd.DataFrame({"s": [None, None]}, dtype=object), {"s": ColumnSpec(type="string")}),
        (pd.DataFrame({"a": [1]}), {}),
    ],
)
def test_no_usable_features_is_invalid(frame: pd.DataFrame, columns: dict) -> None:
    with pytest.raises(Invalid, match="no usable feature columns"):
        Preprocessor.fit(frame, columns)


# --- split ------------------------------------------------------------------------------------


def test_stratified_split_keeps_both_classes_in_both_parts() -> None:
    y = np.array([1] * 10 + [0] * 40)

    split = split_rows(y, test_size=0.2, seed=7)

    assert len(split.test_index) == 10
    assert len(split.train_index) == 40
    assert sorted(np.concatenate([split.train_index, split.test_index]).tolist()) == list(range(50))
    assert y[split.test_index].sum() == 2  # stratified: 20% of the positives
    assert y[split.train_index].sum() == 8
    assert split.strategy == "stratified"


def test_stratified_split_is_deterministic_for_a_seed() -> None:
    y = np.array([0, 1] * 50)

    first = split_rows(y, test_size=0.3, seed=11)
    second = split_rows(y, test_size=0.3, seed=11)
    other = split_rows(y, test_size=0.3, seed=12)

    assert first.test_index.tolist() == second.test_index.tolist()
    assert first.describe() == second.describe()
    assert first.test_index.tolist() != other.test_index.tolist()
    assert first.describe()["test_rows_sha256"] != other.describe()["test_rows_sha256"]


def test_split_describe_fields() -> None:
    y = np.array([0, 1] * 10)
    split = split_rows(y, test_size=0.25, seed=3)

    described = split.describe()

    assert set(described) == {
        "strategy",
        "seed",
        "test_size",
        "train_rows",
        "test_rows",
        "test_rows_sha256",
    }
    assert described["strategy"] == "stratified"
    assert described["seed"] == 3
    assert described["test_size"] == 0.25
    assert (described["train_rows"], described["test_rows"]) == (15, 5)
    assert len(described["test_rows_sha256"]) == 64
    int(described["test_rows_sha256"], 16)
    json.dumps(described)


def test_time_split_tests_on_the_latest_rows() -> None:
    rng = np.random.default_rng(0)
    order = rng.permutation(20)
    timestamps = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(order, unit="D"))
    y = np.array([0, 1] * 10)

    split = split_rows(y, test_size=0.25, seed=1, timestamps=timestamps)

    assert split.strategy == "time"
    assert len(split.test_index) == 5
    test_times = timestamps.iloc[split.test_index]
    train_times = timestamps.iloc[split.train_index]
    assert test_times.min() > train_times.max()
    assert sorted(order[split.test_index].tolist()) == [15, 16, 17, 18, 19]
    assert split.test_index.tolist() == sorted(split.test_index.tolist())


@pytest.mark.parametrize(("n", "test_size"), [(5, 0.2), (3, 0.5), (10, 0.9), (10, 0.1)])
def test_too_few_rows_is_invalid(n: int, test_size: float) -> None:
    y = np.array([0, 1] * n)[:n]

    with pytest.raises(Invalid, match=f"{n} rows are too few"):
        split_rows(y, test_size=test_size, seed=0)


def test_time_split_with_one_class_in_test_is_invalid() -> None:
    y = np.array([0, 1] * 5 + [1] * 4)
    timestamps = pd.Series(pd.date_range("2024-01-01", periods=len(y), freq="D"))

    with pytest.raises(Invalid, match="the test set has only one class"):
        split_rows(y, test_size=0.25, seed=0, timestamps=timestamps)


# --- XGBoostTrainer ---------------------------------------------------------------------------


def separable_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def auc(y: np.ndarray, score: np.ndarray) -> float:
    positives, negatives = score[y == 1], score[y == 0]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((wins + 0.5 * ties) / (len(positives) * len(negatives)))


FAST = {"n_estimators": 60, "learning_rate": 0.3, "early_stopping_rounds": 10}


def test_xgboost_fits_a_separable_problem() -> None:
    x, y = separable_problem(400, seed=1)
    x_test, y_test = separable_problem(200, seed=2)

    trainer = XGBoostTrainer(params=FAST, seed=5).fit(x, y, feature_names=["a", "b[0]", "c<1"])
    proba = trainer.predict_proba(x_test)

    assert proba.shape == (200,)
    assert ((proba >= 0.0) & (proba <= 1.0)).all()
    assert auc(y_test, proba) > 0.9
    assert trainer.best_iteration is None


def test_xgboost_save_and_load_predicts_identically() -> None:
    x, y = separable_problem(400, seed=1)
    x_valid, y_valid = separable_problem(150, seed=3)
    trainer = XGBoostTrainer(params=FAST, seed=5).fit(
        x, y, feature_names=["a", "b", "c"], validation=(x_valid, y_valid)
    )
    assert trainer.best_iteration is not None
    before = trainer.predict_proba(x_valid)

    blob = trainer.to_bytes()
    loaded = XGBoostTrainer.from_bytes(blob)

    np.testing.assert_array_equal(loaded.predict_proba(x_valid), before)
    np.testing.assert_array_equal(trainer.predict_proba(x_valid), before)
    assert auc(y_valid, before) > 0.9
    assert loaded.to_bytes() == blob


def test_xgboost_is_deterministic_for_a_seed() -> None:
    x, y = separable_problem(200, seed=1)

    first = XGBoostTrainer(params=FAST, seed=9).fit(x, y, feature_names=["a", "b", "c"])
    second = XGBoostTrainer(params=FAST, seed=9).fit(x, y, feature_names=["a", "b", "c"])

    np.testing.assert_array_equal(first.predict_proba(x), second.predict_proba(x))


def test_xgboost_get_params_merges_defaults() -> None:
    params = XGBoostTrainer(params={"max_depth": 2}, seed=3).get_params()

    assert params["max_depth"] == 2
    assert params["n_estimators"] == 300
    assert params["seed"] == 3


def test_xgboost_unknown_parameter_is_invalid() -> None:
    x, y = separable_problem(50, seed=1)

    with pytest.raises(Invalid, match=r"unknown XGBoost parameter\(s\): colour, depth"):
        XGBoostTrainer(params={"depth": 3, "colour": "red"}).fit(
            x, y, feature_names=["a", "b", "c"]
        )


def test_xgboost_unfitted_is_invalid() -> None:
    trainer = XGBoostTrainer()

    with pytest.raises(Invalid, match="not fitted"):
        trainer.predict_proba(np.zeros((1, 3), dtype="float32"))
    with pytest.raises(Invalid, match="not fitted"):
        trainer.to_bytes()


# --- metrics ----------------------------------------------------------------------------------


def test_binary_metrics_hand_computed() -> None:
    y = np.array([1, 1, 0, 0, 1])
    proba = np.array([0.9, 0.4, 0.6, 0.1, 0.8])
    # predicted at 0.5: 1 0 1 0 1 -> TP=2, FN=1, FP=1, TN=1

    metrics = binary_metrics(y, proba, threshold=0.5)

    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["auc"] == pytest.approx(5 / 6)
    assert metrics["brier"] == pytest.approx(0.78 / 5)
    assert metrics["positive_rate"] == pytest.approx(3 / 5)
    # probability given to the true class: 0.9, 0.4, 1 - 0.6, 1 - 0.1, 0.8
    expected_log_loss = -np.mean(np.log([0.9, 0.4, 0.4, 0.9, 0.8]))
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert all(isinstance(v, float) for v in metrics.values())


def test_binary_metrics_threshold_is_inclusive() -> None:
    y = np.array([1, 0, 0, 1])
    proba = np.array([0.7, 0.7, 0.2, 0.3])

    metrics = binary_metrics(y, proba, threshold=0.7)

    # predicted 1 1 0 0: TP=1, FP=1, FN=1, TN=1
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)


def test_binary_metrics_no_predicted_positives_gives_zero_precision() -> None:
    metrics = binary_metrics(np.array([1, 0]), np.array([0.2, 0.1]), threshold=0.5)

    assert metrics["precision"] == 0.0
    assert metrics["recall"] == 0.0
    assert metrics["auc"] == 1.0


def test_metric_names_and_prefixed() -> None:
    names = metric_names()

    assert "test_auc" in names
    assert "train_log_loss" in names
    assert len(names) == len(set(names)) == 16
    assert prefixed("test", {"auc": 0.8}) == {"test_auc": 0.8}


# --- gates ------------------------------------------------------------------------------------

METRICS = {"test_auc": 0.82, "test_log_loss": 0.45, "test_recall": 0.4}


def test_gates_pass() -> None:
    gates = [
        GateSpec(metric="test_auc", min=0.8),
        GateSpec(metric="test_log_loss", max=0.5),
        GateSpec(metric="test_recall", min=0.4, max=0.4),  # bounds are inclusive
    ]

    report = evaluate_gates(gates, METRICS)

    assert report.passed is True
    assert [r.passed for r in report.results] == [True, True, True]
    assert report.results[0].describe() == "test_auc = 0.8200 (needs >= 0.8): pass"


def test_blocking_gate_failure_fails_the_report() -> None:
    gates = [GateSpec(metric="test_auc", min=0.9), GateSpec(metric="test_log_loss", max=0.5)]

    report = evaluate_gates(gates, METRICS)

    assert report.passed is False
    assert [r.passed for r in report.results] == [False, True]
    assert report.results[0].describe() == "test_auc = 0.8200 (needs >= 0.9): FAIL"
    assert report.to_dict()["passed"] is False
    assert (
        report.to_dict()["results"][0].items()
        >= {
            "metric": "test_auc",
            "value": 0.82,
            "min": 0.9,
            "max": None,
            "severity": "block",
            "passed": False,
        }.items()
    )


def test_warn_gate_failure_does_not_block() -> None:
    gates = [
        GateSpec(metric="test_auc", min=0.8),
        GateSpec(metric="test_recall", min=0.5, max=0.9, severity="warn"),
    ]

    report = evaluate_gates(gates, METRICS)

    assert report.passed is True
    assert report.results[1].passed is False
    assert report.results[1].describe() == ("test_recall = 0.4000 (needs >= 0.5 and <= 0.9): warn")


def test_no_gates_pass() -> None:
    assert evaluate_gates([], METRICS).passed is True


def test_unknown_metric_is_invalid_config() -> None:
    gates = [GateSpec(metric="test_auc", min=0.5), GateSpec(metric="test_acuracy", min=0.5)]

    with pytest.raises(InvalidConfig) as info:
        evaluate_gates(gates, METRICS)

    assert info.value.key == "gates.1.metric"
    assert "unknown metric 'test_acuracy'" in info.value.message
    assert "test_auc, test_log_loss, test_recall" in info.value.hint


def test_check_gates_against_known_metric_names() -> None:
    check_gates([GateSpec(metric="test_f1", min=0.1)], metric_names())

    with pytest.raises(InvalidConfig, match=r"gates\.0\.metric"):
        check_gates([GateSpec(metric="auc", min=0.1)], metric_names())


def test_gate_spec_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="a gate needs `min` or `max`"):
        GateSpec(metric="test_auc")
