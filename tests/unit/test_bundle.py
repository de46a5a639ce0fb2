"""ModelBundle: the manifest records flavor and task, load dispatches on flavor, bytes verified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisionloop.backends.artifacts.local import LocalArtifactStore
from decisionloop.config import ColumnSpec
from decisionloop.errors import IntegrityError, Invalid
from decisionloop.registry.bundle import FORMAT, ModelBundle
from decisionloop.training.preprocess import Preprocessor
from decisionloop.training.registry import TRAINERS, create_trainer
from decisionloop.training.tree_scoring import NATIVE_MODELS

COLUMNS = {"size": ColumnSpec(type="number"), "plan": ColumnSpec(type="string")}
CASES = [(name, task) for name, cls in TRAINERS.items() for task in cls.tasks]


def frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = rng.normal(size=rows)
    plan = rng.choice(["basic", "pro"], rows)
    value = 2.0 * size + (plan == "pro") + rng.normal(scale=0.1, size=rows)
    return pd.DataFrame({"size": size, "plan": plan}), value


def bundle(name: str, task: str) -> ModelBundle:
    data, value = frame(300, seed=1)
    y = value if task == "regression" else (value > 0.5).astype("int32")
    pre = Preprocessor.fit(data, COLUMNS)
    params = (
        {"n_estimators": 20} if name not in ("logistic_regression", "linear_regression") else {}
    )
    model = create_trainer(name, task=task, params=params, seed=3)
    model.fit(pre.transform(data), y, feature_names=list(pre.feature_names))
    return ModelBundle(
        preprocessor=pre,
        model=model,
        inputs=COLUMNS,
        threshold=0.4,
        positive_label="high",
        negative_label="low",
    )


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(f"file://{tmp_path / 'artifacts'}")


def assert_same_scores(name: str, got: np.ndarray, expected: np.ndarray) -> None:
    """Exact for models loaded by their library; natively scored boosters agree within 1e-6
    (the float32 sigmoid may round one unit apart)."""
    if name in NATIVE_MODELS:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


def manifest_of(store: LocalArtifactStore, key: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(store.get(key))
    return loaded


@pytest.mark.parametrize(("name", "task"), CASES)
def test_bundle_round_trip_records_flavor_and_task(
    store: LocalArtifactStore, name: str, task: str
) -> None:
    original = bundle(name, task)
    rows, _ = frame(40, seed=2)

    stored = original.save(store)
    loaded = ModelBundle.load(store, stored.key, stored.sha256)

    manifest = manifest_of(store, stored.key)
    assert (manifest["format"], manifest["flavor"], manifest["task"]) == (FORMAT, name, task)
    assert type(loaded.model) is NATIVE_MODELS.get(name, TRAINERS[name])
    assert loaded.flavor == name
    assert loaded.signature() == original.signature()
    if task == "regression":
        assert loaded.signature()["outputs"] == [{"name": "value", "type": "number"}]
        assert_same_scores(name, loaded.predict_value(rows), original.predict_value(rows))
        with pytest.raises(Invalid, match="not available for a regression model"):
            loaded.predict_proba(rows)
    else:
        assert (loaded.threshold, loaded.positive_label) == (0.4, "high")
        assert_same_scores(name, loaded.predict_proba(rows), original.predict_proba(rows))


@pytest.mark.parametrize(("name", "task"), CASES)
def test_bundle_loads_with_the_library_on_request(
    store: LocalArtifactStore, name: str, task: str
) -> None:
    original = bundle(name, task)
    rows, _ = frame(40, seed=2)
    stored = original.save(store)

    loaded = ModelBundle.load(store, stored.key, stored.sha256, native=False)

    assert type(loaded.model) is TRAINERS[name]
    expected = (
        original.predict_value(rows) if task == "regression" else original.predict_proba(rows)
    )
    got = loaded.predict_value(rows) if task == "regression" else loaded.predict_proba(rows)
    np.testing.assert_array_equal(got, expected)


def test_tampered_model_component_refuses_to_load(store: LocalArtifactStore) -> None:
    stored = bundle("random_forest", "classification").save(store)
    parts = manifest_of(store, stored.key)["components"]
    assert isinstance(parts, dict)
    path = Path(store._path(parts["model"]["key"]))  # the local store's file for that key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(IntegrityError):
        ModelBundle.load(store, stored.key, stored.sha256)


def test_tampered_manifest_refuses_to_load(store: LocalArtifactStore) -> None:
    stored = bundle("linear_regression", "regression").save(store)

    with pytest.raises(IntegrityError):
        ModelBundle.load(store, stored.key, "0" * 64)


def _store_manifest(store: LocalArtifactStore, change: dict[str, object]) -> tuple[str, str]:
    stored = bundle("xgboost", "classification").save(store)
    manifest = {**manifest_of(store, stored.key), **change}
    info = store.put(json.dumps(manifest).encode())
    return info.key, info.sha256


def test_unknown_flavor_is_refused(store: LocalArtifactStore) -> None:
    key, sha = _store_manifest(store, {"flavor": "catboost"})

    with pytest.raises(Invalid, match="unknown model flavor 'catboost'") as info:
        ModelBundle.load(store, key, sha)
    assert "lightgbm" in info.value.hint


def test_flavor_that_does_not_match_the_model_is_refused(store: LocalArtifactStore) -> None:
    key, sha = _store_manifest(store, {"flavor": "lightgbm"})

    with pytest.raises(IntegrityError, match="LightGBM model cannot be read"):
        ModelBundle.load(store, key, sha)


def test_task_that_does_not_match_the_model_is_refused(store: LocalArtifactStore) -> None:
    key, sha = _store_manifest(store, {"task": "regression"})

    with pytest.raises(IntegrityError, match="manifest says 'regression'"):
        ModelBundle.load(store, key, sha)


def test_format_1_manifests_still_load(store: LocalArtifactStore) -> None:
    original = bundle("xgboost", "classification")
    stored = original.save(store)
    manifest = manifest_of(store, stored.key)
    parts = manifest["components"]
    assert isinstance(parts, dict)
    legacy = {
        "format": "decisionloop.model/1",
        "flavor": "xgboost",
        "signature": manifest["signature"],
        "components": {"booster": parts["model"], "preprocessor": parts["preprocessor"]},
    }
    info = store.put(json.dumps(legacy).encode())
    rows, _ = frame(20, seed=4)

    loaded = ModelBundle.load(store, info.key, info.sha256)

    assert loaded.task == "classification"
    assert_same_scores("xgboost", loaded.predict_proba(rows), original.predict_proba(rows))
