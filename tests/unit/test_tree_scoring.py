"""The native tree scorer: our stored XGBoost and LightGBM models score as their libraries score
them (within 1e-6, over many seeds, depths, missing values and both tasks), models it does not
reproduce are refused (and then loaded by their library), damaged bytes never crash it, and a
bundle loads and scores without importing either library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decisionloop.backends.artifacts.local import LocalArtifactStore
from decisionloop.cards.importance import feature_importance
from decisionloop.config import ColumnSpec
from decisionloop.errors import Invalid
from decisionloop.registry.bundle import ModelBundle
from decisionloop.training.base import Trainer, score
from decisionloop.training.lightgbm_trainer import LightGBMTrainer
from decisionloop.training.preprocess import Preprocessor
from decisionloop.training.registry import create_trainer
from decisionloop.training.tree_scoring import (
    LIGHTGBM_ZERO,
    NATIVE_MODELS,
    NativeLightGBMModel,
    NativeTreeModel,
    NativeXGBoostModel,
    UnsupportedTreeModel,
    load_native,
)
from decisionloop.training.ubjson import TypedArray, UBJSONError, concatenate, decode_ubjson
from decisionloop.training.xgboost_trainer import XGBoostTrainer

#: models per property; raise it (DL_PROPERTY_EXAMPLES=500) for a deeper search
EXAMPLES = int(os.environ.get("DL_PROPERTY_EXAMPLES", "30"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEATURES = 6
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-36, -1e-36, LIGHTGBM_ZERO, -LIGHTGBM_ZERO, 1e30]


def problem(
    seed: int, *, task: str, rows: int, nan_fraction: float, discrete: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a signal in the first features; ``discrete`` values tie often."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    x[:, -1] = rng.uniform(size=rows) < 0.3  # a one-hot-like column: zeros and ones
    if discrete:
        x[:, :-1] = np.round(x[:, :-1], 1)
    signal = x[:, 0] + 0.7 * x[:, 1] * x[:, 2] - x[:, -1] + rng.normal(scale=0.5, size=rows)
    x[rng.uniform(size=x.shape) < nan_fraction] = np.nan
    y = (signal > 0).astype("int32") if task == "classification" else 50.0 * signal + 1000.0
    return x.astype("float32"), y


def probe_rows(model: NativeTreeModel, x: np.ndarray, seed: int) -> np.ndarray:
    """Rows that stress the split rules: training-like rows, every split's threshold and its
    float neighbours placed in its feature, and special values (NaN, ±inf, ±0, tiny, huge)."""
    rng = np.random.default_rng(seed)
    ensemble = model.ensemble
    splits = np.flatnonzero(ensemble.is_split)[:300]
    base = x[rng.integers(0, len(x), size=len(splits) * 3 + 200)].astype("float64")
    at = base[: len(splits) * 3]
    for k, node in enumerate(splits):
        threshold = float(ensemble.threshold[node])
        feature = int(ensemble.feature[node])
        dtype = np.float32 if ensemble.rule == "xgboost" else np.float64
        for j, value in enumerate(
            (
                threshold,
                np.nextafter(dtype(threshold), dtype(-np.inf)),
                np.nextafter(dtype(threshold), dtype(np.inf)),
            )
        ):
            at[k * 3 + j, feature] = value
    rest = base[len(splits) * 3 :]
    cells = rng.uniform(size=rest.shape) < 0.3
    rest[cells] = rng.choice(SPECIAL, size=int(cells.sum()))
    return base


def assert_scores_match(native: NativeTreeModel, library: Trainer, x: np.ndarray) -> float:
    """Native and library scores agree within 1e-6 (relative above 1); the largest gap."""
    expected, got = score(library, x), score(native, x)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape == (len(x),)
    gap = np.abs(got.astype("float64") - expected.astype("float64"))
    assert np.all(gap <= 1e-6 * np.maximum(1.0, np.abs(expected))), float(gap.max())
    return float(gap.max())


def round_trip(trainer: Trainer) -> tuple[NativeTreeModel, Trainer]:
    data = trainer.to_bytes()
    native = NATIVE_MODELS[trainer.flavor].from_bytes(data)
    return native, type(trainer).from_bytes(data)


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    task=st.sampled_from(["classification", "regression"]),
    max_depth=st.integers(1, 8),
    n_estimators=st.integers(1, 60),
    learning_rate=st.sampled_from([0.05, 0.3, 1.0]),
    min_child_weight=st.sampled_from([0.1, 1.0, 5.0]),
    nan_fraction=st.sampled_from([0.0, 0.1, 0.4]),
    discrete=st.booleans(),
)
def test_xgboost_models_score_as_xgboost_does(
    seed: int,
    task: str,
    max_depth: int,
    n_estimators: int,
    learning_rate: float,
    min_child_weight: float,
    nan_fraction: float,
    discrete: bool,
) -> None:
    x, y = problem(seed, task=task, rows=400, nan_fraction=nan_fraction, discrete=discrete)
    params = {
        "max_depth": max_depth,
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "min_child_weight": min_child_weight,
        "early_stopping_rounds": 5,
    }
    trainer = create_trainer("xgboost", task=task, params=params, seed=seed)  # type: ignore[arg-type]
    trainer.fit(x[:320], y[:320], feature_names=list("abcdef"), validation=(x[320:], y[320:]))

    native, library = round_trip(trainer)

    assert native.task == library.task == task
    assert native.ensemble.depth <= max_depth
    assert_scores_match(native, library, probe_rows(native, x, seed))
    assert_scores_match(native, library, probe_rows(native, x, seed).astype("float32"))


@PROPERTY
@given(
    seed=st.integers(0, 10_000),
    task=st.sampled_from(["classification", "regression"]),
    num_leaves=st.integers(2, 64),
    max_depth=st.sampled_from([-1, 1, 3, 12]),
    n_estimators=st.integers(1, 60),
    min_child_samples=st.sampled_from([2, 10, 40]),
    nan_fraction=st.sampled_from([0.0, 0.1, 0.4]),
    discrete=st.booleans(),
)
def test_lightgbm_models_score_as_lightgbm_does(
    seed: int,
    task: str,
    num_leaves: int,
    max_depth: int,
    n_estimators: int,
    min_child_samples: int,
    nan_fraction: float,
    discrete: bool,
) -> None:
    x, y = problem(seed, task=task, rows=400, nan_fraction=nan_fraction, discrete=discrete)
    params = {
        "num_leaves": num_leaves,
        "max_depth": max_depth,
        "n_estimators": n_estimators,
        "min_child_samples": min_child_samples,
        "learning_rate": 0.3,
        "early_stopping_rounds": 5,
    }
    trainer = create_trainer("lightgbm", task=task, params=params, seed=seed)  # type: ignore[arg-type]
    trainer.fit(x[:320], y[:320], feature_names=list("abcdef"), validation=(x[320:], y[320:]))

    native, library = round_trip(trainer)

    assert native.task == library.task == task
    probes = probe_rows(native, x, seed)
    assert_scores_match(native, library, probes)  # float64: thresholds hit exactly
    with np.errstate(over="ignore"):  # thresholds beyond float32 become ±inf
        assert_scores_match(native, library, probes.astype("float32"))


@pytest.mark.parametrize(
    ("params", "missing_type"),
    [
        ({"zero_as_missing": True}, 1),  # Zero: 0 and NaN take the default side
        ({"use_missing": False}, 0),  # None: NaN reads as 0
        ({}, 2),  # NaN: NaN takes the default side (training saw NaN)
    ],
)
def test_lightgbm_missing_value_rules(params: dict[str, Any], missing_type: int) -> None:
    import lightgbm as lgb

    x, y = problem(5, task="classification", rows=600, nan_fraction=0.2, discrete=True)
    x[::3, 1] = 0.0
    booster = lgb.train(
        {
            "objective": "binary",
            "verbosity": -1,
            "num_leaves": 15,
            "min_child_samples": 5,
            **params,
        },
        lgb.Dataset(x, label=y),
        30,
    )
    data = booster.model_to_string().encode()
    native = NativeLightGBMModel.from_bytes(data)

    assert missing_type in native.ensemble.missing_type[native.ensemble.is_split]
    assert_scores_match(native, LightGBMTrainer.from_bytes(data), probe_rows(native, x, 1))


def test_the_sigmoid_scale_of_lightgbm_binary_models_is_applied() -> None:
    import lightgbm as lgb

    x, y = problem(2, task="classification", rows=300, nan_fraction=0.0, discrete=False)
    booster = lgb.train(
        {"objective": "binary", "sigmoid": 2.5, "verbosity": -1}, lgb.Dataset(x, label=y), 10
    )
    data = booster.model_to_string().encode()
    native = NativeLightGBMModel.from_bytes(data)

    assert native.ensemble.sigmoid_scale == 2.5
    assert_scores_match(native, LightGBMTrainer.from_bytes(data), x)


def test_many_rows_score_in_blocks_like_one() -> None:
    trainer = create_trainer("xgboost", params={"n_estimators": 50, "max_depth": 6})
    x, y = problem(3, task="classification", rows=5000, nan_fraction=0.05, discrete=False)
    trainer.fit(x, y, feature_names=list("abcdef"))
    native, library = round_trip(trainer)

    whole = native.predict_proba(x)

    assert_scores_match(native, library, x)
    np.testing.assert_array_equal(whole[:7], native.predict_proba(x[:7]))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("xgboost", {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.1}),
        ("lightgbm", {"n_estimators": 300, "num_leaves": 64, "min_child_samples": 3}),
    ],
)
def test_regression_values_are_the_library_s_to_the_bit(name: str, params: dict[str, Any]) -> None:
    # same precision, same order of additions: nothing may differ, over many blocks of rows
    # and (LightGBM) deep trees walked with finished rows set aside
    x, y = problem(8, task="regression", rows=3000, nan_fraction=0.0, discrete=False)
    trainer = create_trainer(name, task="regression", params=params, seed=1)
    trainer.fit(x, y, feature_names=list("abcdef"))
    native, library = round_trip(trainer)

    assert native.ensemble.n_trees == 300
    np.testing.assert_array_equal(native.predict(x), library.predict(x))
    for rows in (x[:1], x[1:3], x[3:40]):  # small batches too
        np.testing.assert_array_equal(native.predict(rows), library.predict(rows))


def test_threads_scoring_one_model_at_once_get_their_own_scores() -> None:
    from concurrent.futures import ThreadPoolExecutor

    trainer = create_trainer("lightgbm", params={"n_estimators": 40, "num_leaves": 31})
    x, y = problem(6, task="classification", rows=3000, nan_fraction=0.1, discrete=False)
    trainer.fit(x, y, feature_names=list("abcdef"))
    native, _ = round_trip(trainer)
    batches = [x[i : i + 700] for i in range(0, 3000, 150)]
    expected = [native.predict_proba(batch) for batch in batches]

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(native.predict_proba, batches))

    for one, other in zip(got, expected, strict=True):
        np.testing.assert_array_equal(one, other)


# -- what the native scorer refuses, and the library then loads ---------------------------


def _xgboost_model(params: dict[str, Any], *, categorical: bool = False) -> bytes:
    import xgboost as xgb

    x, y = problem(1, task="classification", rows=300, nan_fraction=0.0, discrete=True)
    if params.get("objective", "").startswith("multi"):
        y = (np.abs(x[:, 0]) * 2).astype(int).clip(0, 2)
    frame = pd.DataFrame(x, columns=list("abcdef"))
    if categorical:
        frame["f"] = frame["f"].astype(int).astype("category")
    matrix = xgb.DMatrix(frame, label=y, enable_categorical=categorical)
    booster = xgb.train({"objective": "binary:logistic", **params}, matrix, 5)
    return bytes(booster.save_raw(raw_format="ubj"))


def _lightgbm_model(params: dict[str, Any], **dataset: Any) -> bytes:
    import lightgbm as lgb

    x, y = problem(1, task="classification", rows=300, nan_fraction=0.0, discrete=True)
    if params.get("objective") == "multiclass":
        y = (np.abs(x[:, 0]) * 2).astype(int).clip(0, 2)
    x[:, -1] = np.arange(len(x)) % 4  # small integer codes that matter, for the categorical case
    if params.get("objective") != "multiclass":
        y = ((x[:, -1] == 2) | (x[:, 0] > 1)).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "min_child_samples": 5, **params},
        lgb.Dataset(x, label=y, **dataset),
        5,
    )
    return str(booster.model_to_string()).encode()


@pytest.mark.parametrize(
    ("params", "categorical", "reason"),
    [
        ({"tree_method": "hist", "max_cat_to_onehot": 1}, True, "categorical"),
        ({"objective": "binary:logitraw"}, False, "objective"),
        ({"objective": "reg:logistic"}, False, "objective"),
        ({"objective": "multi:softprob", "num_class": 3}, False, "objective"),
        ({"booster": "dart"}, False, "booster"),
        ({"booster": "gblinear"}, False, "booster"),
    ],
)
def test_xgboost_models_it_does_not_reproduce_are_refused(
    params: dict[str, Any], categorical: bool, reason: str
) -> None:
    data = _xgboost_model(params, categorical=categorical)

    with pytest.raises(UnsupportedTreeModel, match=reason):
        NativeXGBoostModel.from_bytes(data)
    assert load_native("xgboost", data) is None


@pytest.mark.parametrize(
    ("params", "dataset", "reason"),
    [
        ({}, {"categorical_feature": [5]}, "categorical"),
        ({"objective": "multiclass", "num_class": 3}, {}, "several classes"),
        ({"linear_tree": True}, {}, "linear"),
        ({"boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1}, {}, "averaged"),
        ({"objective": "cross_entropy"}, {}, "objective"),
        ({"objective": "regression", "reg_sqrt": True}, {}, "objective"),
        ({"objective": "huber"}, {}, "objective"),
    ],
)
def test_lightgbm_models_it_does_not_reproduce_are_refused(
    params: dict[str, Any], dataset: dict[str, Any], reason: str
) -> None:
    data = _lightgbm_model(params, **dataset)

    with pytest.raises(UnsupportedTreeModel, match=reason):
        NativeLightGBMModel.from_bytes(data)
    assert load_native("lightgbm", data) is None


def test_a_bundle_the_native_scorer_refuses_loads_with_the_library(tmp_path: Path) -> None:
    import lightgbm as lgb

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 50, "b": np.linspace(-1, 1, 200)})
    y = ((frame["a"] == 2) | (frame["b"] > 0.5)).astype(int).to_numpy()
    columns = {"a": ColumnSpec(type="number"), "b": ColumnSpec(type="number")}
    pre = Preprocessor.fit(frame, columns)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "min_child_samples": 5, "min_data_per_group": 5},
        lgb.Dataset(pre.transform(frame), label=y, categorical_feature=[0]),
        10,
    )
    original = ModelBundle(
        preprocessor=pre,
        model=LightGBMTrainer(booster=booster),
        inputs=columns,
        positive_label="yes",
        negative_label="no",
    )
    store = LocalArtifactStore(f"file://{tmp_path}")
    stored = original.save(store)

    loaded = ModelBundle.load(store, stored.key, stored.sha256)

    assert "num_cat=0" not in original.model.to_bytes().decode()  # it has categorical splits
    assert type(loaded.model) is LightGBMTrainer
    np.testing.assert_array_equal(loaded.predict_proba(frame), original.predict_proba(frame))


# -- damaged or hostile bytes ------------------------------------------------------------------


def _small_models() -> dict[str, bytes]:
    models = {}
    for name in ("xgboost", "lightgbm"):
        trainer = create_trainer(name, params={"n_estimators": 4, "max_depth": 3})
        x, y = problem(9, task="classification", rows=200, nan_fraction=0.1, discrete=True)
        trainer.fit(x, y, feature_names=list("abcdef"))
        models[name] = trainer.to_bytes()
    return models


SMALL_MODELS = _small_models()


@PROPERTY
@given(
    flavor=st.sampled_from(["xgboost", "lightgbm"]),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["cut", "flip", "insert"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_damaged_models_are_refused_or_still_score(
    flavor: str, edits: list[tuple[str, float, bytes]]
) -> None:
    data = bytearray(SMALL_MODELS[flavor])
    for kind, where, payload in edits:
        at = int(where * (len(data) - 1))
        if kind == "cut":
            del data[at:]
        elif kind == "flip":
            data[at] ^= payload[0] or 1
        else:
            data[at:at] = payload
        if not data:
            data = bytearray(b"\x00")

    try:
        model = NATIVE_MODELS[flavor].from_bytes(bytes(data))
    except UnsupportedTreeModel:
        return
    rows = np.random.default_rng(0).normal(size=(5, model.ensemble.n_features))
    assert score(model, rows).shape == (5,)


def _xgboost_json(change: Any) -> bytes:
    import xgboost as xgb

    booster = XGBoostTrainer.from_bytes(SMALL_MODELS["xgboost"]).booster
    assert isinstance(booster, xgb.Booster)
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    change(model["learner"]["gradient_booster"]["model"]["trees"][0])
    return json.dumps(model).encode()


def _set(key: str, index: int, value: int) -> Any:
    def change(tree: dict[str, Any]) -> None:
        tree[key][index] = value

    return change


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set("left_children", 1, 0), "reached twice"),  # a cycle back to the root
        (_set("right_children", 0, 1), "reached twice"),  # both children the same node
        (_set("left_children", 0, 10_000), "outside its tree"),
        (_set("split_indices", 0, 99), "feature"),
        (_set("right_children", 0, -1), "exactly one child"),
    ],
)
def test_malformed_trees_are_refused(change: Any, reason: str) -> None:
    data = _xgboost_json(change)

    with pytest.raises(UnsupportedTreeModel, match=reason):
        NativeXGBoostModel.from_bytes(data)


def test_xgboost_json_models_read_like_ubjson_ones() -> None:
    unchanged = _xgboost_json(lambda tree: None)
    x, _ = problem(4, task="classification", rows=100, nan_fraction=0.2, discrete=False)

    from_json = NativeXGBoostModel.from_bytes(unchanged)
    from_ubjson = NativeXGBoostModel.from_bytes(SMALL_MODELS["xgboost"])

    np.testing.assert_array_equal(from_json.predict_proba(x), from_ubjson.predict_proba(x))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[" * 100_000, "nested deeper"),
        (b"[$d#L" + (1 << 62).to_bytes(8, "big"), "exceeds the bytes left"),
        (b"[$d#L" + (1 << 20).to_bytes(8, "big") + b"\x00" * 8, "exceeds the bytes left"),
        (b"{L" + (5).to_bytes(8, "big") + b"ab", "exceeds the bytes left"),
        (b"[i\x01", "unexpected end"),
        (b"[Q]", "unknown marker"),
        (b"[]]", "trailing"),
    ],
)
def test_the_ubjson_reader_refuses_hostile_input(data: bytes, reason: str) -> None:
    with pytest.raises(UBJSONError, match=reason):
        decode_ubjson(data)
    with pytest.raises(UnsupportedTreeModel):
        NativeXGBoostModel.from_bytes(data)


def test_the_ubjson_reader_reads_every_value_kind() -> None:
    data = (
        b"{i\x01aSi\x02hi"  # a string
        b"i\x01b[$l#i\x02\x00\x00\x00\x01\xff\xff\xff\xff"  # a typed int32 array
        b"i\x01c[TFZNi\x05D?\xf8\x00\x00\x00\x00\x00\x00]"  # bools, null, no-op, numbers
        b"i\x01d{#i\x01i\x01eU\xff"  # a counted object (no end marker)
        b"}"
    )
    value = decode_ubjson(data)

    assert value["a"] == "hi"
    assert isinstance(value["b"], TypedArray)
    assert value["b"].to_numpy().tolist() == [1, -1]
    assert value["b"].to_numpy().dtype == np.int32
    assert value["c"] == [True, False, None, 5, 1.5]
    assert value["d"] == {"e": 255}


def test_typed_arrays_join_into_one_native_array() -> None:
    first = decode_ubjson(b"[$d#U\x02?\x80\x00\x00@\x00\x00\x00")  # 1.0, 2.0 (U count)
    second = decode_ubjson(b"N[$d#i\x01@@\x00\x00")  # no-op padding first; 3.0

    joined = concatenate([first, second])

    assert joined.tolist() == [1.0, 2.0, 3.0]
    assert joined.dtype == np.float32
    assert joined.dtype.isnative
    with pytest.raises(UBJSONError, match="different types"):
        concatenate([first, decode_ubjson(b"[$l#U\x00")])


# -- the bundle: native by default, the library on request or on demand -------------------------


COLUMNS = {"size": ColumnSpec(type="number"), "plan": ColumnSpec(type="string")}


def _bundle(name: str, task: str) -> tuple[ModelBundle, pd.DataFrame]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"size": rng.normal(size=400), "plan": rng.choice(["a", "b", "c"], 400)})
    frame.loc[::9, "size"] = np.nan
    value = 2 * frame["size"].fillna(0) + (frame["plan"] == "b")
    y = value.to_numpy() if task == "regression" else (value > 0.5).astype(int).to_numpy()
    pre = Preprocessor.fit(frame, COLUMNS)
    model = create_trainer(name, task=task, params={"n_estimators": 30}, seed=2)  # type: ignore[arg-type]
    model.fit(pre.transform(frame), y, feature_names=list(pre.feature_names))
    bundle = ModelBundle(
        preprocessor=pre, model=model, inputs=COLUMNS, positive_label="y", negative_label="n"
    )
    return bundle, frame


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_bundles_load_natively_unless_asked_not_to(tmp_path: Path, name: str, task: str) -> None:
    original, frame = _bundle(name, task)
    store = LocalArtifactStore(f"file://{tmp_path}")
    stored = original.save(store)

    native = ModelBundle.load(store, stored.key, stored.sha256)
    library = ModelBundle.load(store, stored.key, stored.sha256, native=False)

    assert isinstance(native.model, NATIVE_MODELS[name])
    assert type(library.model) is type(original.model)
    assert native.flavor == library.flavor == name
    assert native.signature() == library.signature() == original.signature()
    assert native.model.to_bytes() == original.model.to_bytes()  # re-saving keeps the bytes
    x = original.preprocessor.transform(original.prepare(frame))
    assert_scores_match(native.model, library.model, x)


def test_what_only_the_library_offers_loads_it_on_first_use(tmp_path: Path) -> None:
    original, _ = _bundle("xgboost", "classification")
    store = LocalArtifactStore(f"file://{tmp_path}")
    stored = original.save(store)
    native = ModelBundle.load(store, stored.key, stored.sha256)
    library = ModelBundle.load(store, stored.key, stored.sha256, native=False)
    model = native.model
    assert isinstance(model, NativeTreeModel)

    assert model.to_bytes() == original.model.to_bytes()
    assert feature_importance(native) == feature_importance(library)
    assert model.booster is model.booster  # loaded once
    model.booster.set_attr(note="kept")  # a change made through the library is saved
    assert XGBoostTrainer.from_bytes(model.to_bytes()).booster.attr("note") == "kept"
    assert model.get_params() == library.model.get_params()
    with pytest.raises(Invalid, match="cannot be trained again"):
        model.fit(np.zeros((2, 4)), np.zeros(2), feature_names=["a"])
    with pytest.raises(Invalid, match="not available for a classification model"):
        model.predict(np.zeros((1, 4)))
    with pytest.raises(Invalid, match="features per row"):
        model.predict_proba(np.zeros((1, 3)))


FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    from decisionloop.backends.artifacts.local import LocalArtifactStore
    from decisionloop.registry.bundle import ModelBundle
    store, key, sha, rows = sys.argv[1:]
    bundle = ModelBundle.load(LocalArtifactStore(store), key, sha)
    frame = pd.DataFrame(json.loads(rows))
    scores = bundle.predict_proba(frame) if bundle.task == "classification" else (
        bundle.predict_value(frame))
    heavy = sorted(m for m in ("xgboost", "lightgbm", "sklearn", "scipy") if m in sys.modules)
    print(json.dumps({"scores": [float(s) for s in scores], "imported": heavy}))
    """
)


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_a_fresh_process_scores_without_importing_the_library(tmp_path: Path, name: str) -> None:
    original, frame = _bundle(name, "classification")
    store = LocalArtifactStore(f"file://{tmp_path}")
    stored = original.save(store)
    rows = frame.head(20).astype(object).where(frame.head(20).notna(), None)

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS,
            f"file://{tmp_path}",
            stored.key,
            stored.sha256,
            json.dumps(rows.to_dict(orient="records")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["imported"] == []
    np.testing.assert_allclose(
        result["scores"], original.predict_proba(frame.head(20)), rtol=0, atol=1e-6
    )
