"""Every trainer behind one interface: fits, scores, saves without pickle, is seeded."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from pydantic import ValidationError

from decisionloop.config import TRAINER_TASKS, ModelSpec
from decisionloop.errors import IntegrityError, Invalid
from decisionloop.evaluation.metrics import binary_metrics, regression_metrics
from decisionloop.training import skops_format
from decisionloop.training.base import Trainer, score
from decisionloop.training.registry import (
    TRAINERS,
    USES_VALIDATION,
    check_trainer_params,
    create_trainer,
    trainer_class,
)
from decisionloop.training.sklearn_trainers import GradientBoostingTrainer, RandomForestTrainer

CASES = [(name, task) for name, cls in TRAINERS.items() for task in cls.tasks]
NAMES = ["a", "b[0]", "c<1: {x}"]  # characters XGBoost and LightGBM refuse in names
SMALL = {
    "xgboost": {"n_estimators": 40, "learning_rate": 0.3, "early_stopping_rounds": 5},
    "lightgbm": {"n_estimators": 40, "learning_rate": 0.3, "early_stopping_rounds": 5},
    "random_forest": {"n_estimators": 20},
    "gradient_boosting": {"n_estimators": 40, "early_stopping_rounds": 5},
}


def problem(task: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    if task == "classification":
        return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, 3.0 * x[:, 0] - 2.0 * x[:, 1] + rng.normal(scale=0.1, size=n)


def train(name: str, task: str, *, seed: int = 7, class_weight: str = "none") -> Trainer:
    x, y = problem(task, 400, seed=1)
    x_valid, y_valid = problem(task, 100, seed=2)
    trainer = create_trainer(
        name, task=task, params=SMALL.get(name, {}), seed=seed, class_weight=class_weight
    )
    return trainer.fit(x, y, feature_names=NAMES, validation=(x_valid, y_valid))


def quality(task: str, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return binary_metrics(y, scores, threshold=0.5)
    return regression_metrics(y, scores)


def test_every_trainer_is_registered_and_configurable() -> None:
    assert set(TRAINERS) == {
        "xgboost",
        "lightgbm",
        "logistic_regression",
        "linear_regression",
        "random_forest",
        "gradient_boosting",
    }
    assert {name: cls.tasks for name, cls in TRAINERS.items()} == TRAINER_TASKS
    assert {"xgboost", "lightgbm"} == USES_VALIDATION


@pytest.mark.parametrize(("name", "task"), CASES)
def test_trainer_fits_and_scores(name: str, task: str) -> None:
    trainer = train(name, task)
    x_test, y_test = problem(task, 300, seed=3)

    scores = score(trainer, x_test)

    assert scores.shape == (300,)
    assert trainer.task == task
    assert trainer.get_params()["seed"] == 7
    metrics = quality(task, y_test, scores)
    if task == "classification":
        assert ((scores >= 0) & (scores <= 1)).all()
        assert metrics["auc"] > 0.9
    else:
        assert metrics["r2"] > 0.8
        assert metrics["rmse"] < 1.5


@pytest.mark.parametrize(("name", "task"), CASES)
def test_trainer_round_trips_through_bytes(name: str, task: str) -> None:
    trainer = train(name, task)
    x_test, _ = problem(task, 200, seed=3)
    before = score(trainer, x_test)

    blob = trainer.to_bytes()
    loaded = trainer_class(name).from_bytes(blob)

    assert b"pickle" not in blob.lower()
    assert loaded.task == task
    np.testing.assert_array_equal(score(loaded, x_test), before)
    np.testing.assert_array_equal(score(trainer, x_test), before)  # saving changes nothing


@pytest.mark.parametrize(("name", "task"), CASES)
def test_trainer_is_deterministic_for_a_seed(name: str, task: str) -> None:
    x_test, y_test = problem(task, 200, seed=3)

    first, second = train(name, task, seed=11), train(name, task, seed=11)

    assert first.to_bytes() == second.to_bytes()
    assert quality(task, y_test, score(first, x_test)) == quality(
        task, y_test, score(second, x_test)
    )


@pytest.mark.parametrize(("name", "task"), CASES)
def test_trainer_refuses_unknown_params_with_a_hint(name: str, task: str) -> None:
    x, y = problem(task, 50, seed=1)
    trainer = create_trainer(name, task=task, params={"colour": "red"})

    with pytest.raises(Invalid, match=r"unknown .* parameter\(s\): colour") as info:
        trainer.fit(x, y, feature_names=NAMES)
    with pytest.raises(Invalid, match="colour"):
        check_trainer_params(name, task, {"colour": "red"})

    hint = info.value.hint
    assert hint.startswith("use any of ")
    assert "colour" not in hint
    for default in trainer.get_params():
        if default not in ("seed", "task", "class_weight", "colour"):
            assert default in hint, default


@pytest.mark.parametrize(("name", "task"), CASES)
def test_unfitted_and_wrong_task_calls_are_invalid(name: str, task: str) -> None:
    trainer = create_trainer(name, task=task)
    x = np.zeros((1, 3), dtype="float32")

    with pytest.raises(Invalid, match="not fitted"):
        score(trainer, x)
    with pytest.raises(Invalid, match="not fitted"):
        trainer.to_bytes()
    fitted = train(name, task)
    wrong = fitted.predict if task == "classification" else fitted.predict_proba
    with pytest.raises(Invalid, match=f"not available for a {task} model"):
        wrong(x)


def test_create_trainer_refuses_unknown_names_and_tasks() -> None:
    with pytest.raises(Invalid, match="unknown trainer 'catboost'") as info:
        create_trainer("catboost")
    assert "lightgbm" in info.value.hint
    with pytest.raises(Invalid, match="logistic_regression does not support task 'regression'"):
        create_trainer("logistic_regression", task="regression")


def test_lightgbm_early_stopping_keeps_the_chosen_trees() -> None:
    x, y = problem("classification", 400, seed=1)
    x_valid, y_valid = problem("classification", 100, seed=2)
    trainer = create_trainer(
        "lightgbm", params={"n_estimators": 400, "learning_rate": 0.5, "early_stopping_rounds": 5}
    ).fit(x, y, feature_names=NAMES, validation=(x_valid, y_valid))

    best = trainer.booster.best_iteration
    assert 0 < best < 400
    text = trainer.to_bytes().decode()
    assert text.startswith("tree\n")
    assert text.count("Tree=") == best


@pytest.mark.parametrize(
    "name", sorted(n for n, cls in TRAINERS.items() if "classification" in cls.tasks)
)
def test_balanced_class_weight_raises_the_rare_class_scores(name: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(900, 3)).astype("float32")
    y = (x[:, 0] + rng.normal(scale=1.0, size=900) > 1.6).astype("int32")  # about 10% positive
    assert 0.03 < y.mean() < 0.2
    x, y, x_test = x[:600], y[:600], x[600:]
    # boosters with many strong trees fit the training labels whatever their weights
    few_trees = {
        "xgboost": {"n_estimators": 10, "learning_rate": 0.1},
        "lightgbm": {"n_estimators": 10, "learning_rate": 0.1},
        "random_forest": {"n_estimators": 20, "min_samples_leaf": 20},
        "gradient_boosting": {"n_estimators": 10, "learning_rate": 0.1},
    }

    def mean_score(class_weight: str) -> float:
        trainer = create_trainer(
            name, params=few_trees.get(name, {}), seed=1, class_weight=class_weight
        )
        return float(trainer.fit(x, y, feature_names=NAMES).predict_proba(x_test).mean())

    plain, balanced = mean_score("none"), mean_score("balanced")
    assert balanced > plain + 0.05  # each class now weighs the same: scores move towards 0.5
    assert create_trainer(name, class_weight="balanced").get_params()["class_weight"] == "balanced"


# --- skops archives -----------------------------------------------------------------------------


def _rewrite_schema(blob: bytes, change: object) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "schema.json":
                schema = json.loads(data)
                change(schema)
                data = json.dumps(schema).encode()
            target.writestr(name, data)
    return out.getvalue()


def test_skops_archive_with_an_unexpected_type_is_refused() -> None:
    blob = train("random_forest", "classification").to_bytes()

    def inject(schema: dict[str, object]) -> None:
        content = schema["content"]
        assert isinstance(content, dict)
        content["content"]["payload"] = {
            "__class__": "system",
            "__module__": "os",
            "__loader__": "ObjectNode",
            "content": {},
        }

    with pytest.raises(IntegrityError, match=r"may not hold: os\.system"):
        RandomForestTrainer.from_bytes(_rewrite_schema(blob, inject))


def test_skops_archive_of_another_estimator_is_refused() -> None:
    # a valid archive, but of an estimator the random forest loader does not produce
    blob = train("gradient_boosting", "classification").to_bytes()

    with pytest.raises(IntegrityError, match="not a random forest model"):
        RandomForestTrainer.from_bytes(blob)
    with pytest.raises(IntegrityError, match="not a readable skops archive"):
        GradientBoostingTrainer.from_bytes(b"not a zip file")


def test_skops_archive_types_are_exactly_the_allowlist() -> None:
    blob = train("gradient_boosting", "regression").to_bytes()

    found = skops_format.archive_types(blob)

    assert found <= GradientBoostingTrainer.trusted["regression"]
    assert "sklearn.ensemble._gb.GradientBoostingRegressor" in found


def test_skops_bytes_hold_no_memory_addresses_or_timestamps() -> None:
    blob = train("random_forest", "regression").to_bytes()
    archive = zipfile.ZipFile(io.BytesIO(blob))

    names = archive.namelist()
    assert names[0] == "schema.json"
    assert names[1:] == [f"{i}.npy" for i in range(len(names) - 1)]
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "logistic_regression"])
def test_unreadable_model_bytes_are_an_integrity_error(name: str) -> None:
    with pytest.raises(IntegrityError):
        trainer_class(name).from_bytes(b"\x00garbage{")


# --- settings -----------------------------------------------------------------------------------


def test_model_spec_task_and_trainers() -> None:
    assert ModelSpec().task == "classification"
    assert ModelSpec().class_weight == "none"
    spec = ModelSpec(task="regression", trainer="lightgbm", class_weight="balanced")
    assert (spec.task, spec.trainer) == ("regression", "lightgbm")

    with pytest.raises(ValidationError, match="trainer logistic_regression does not learn"):
        ModelSpec(task="regression", trainer="logistic_regression")
    with pytest.raises(ValidationError, match="use one of gradient_boosting, lightgbm"):
        ModelSpec(task="classification", trainer="linear_regression")
    with pytest.raises(ValidationError):
        ModelSpec(trainer="catboost")
