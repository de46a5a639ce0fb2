"""Trainers by name: the names ``model.trainer`` accepts and the manifest's ``flavor``."""

from __future__ import annotations

from typing import Any

from decisionloop.errors import Invalid
from decisionloop.training.base import ClassWeight, Task, Trainer, check_task
from decisionloop.training.lightgbm_trainer import LightGBMTrainer
from decisionloop.training.linear_trainer import LinearRegressionTrainer, LogisticRegressionTrainer
from decisionloop.training.sklearn_trainers import GradientBoostingTrainer, RandomForestTrainer
from decisionloop.training.xgboost_trainer import XGBoostTrainer

#: every trainer, listed explicitly (nothing is discovered by importing modules)
TRAINERS: dict[str, type[Trainer]] = {
    trainer.flavor: trainer
    for trainer in (
        XGBoostTrainer,
        LightGBMTrainer,
        LogisticRegressionTrainer,
        LinearRegressionTrainer,
        RandomForestTrainer,
        GradientBoostingTrainer,
    )
}

#: trainers that hold validation rows out of training for early stopping
USES_VALIDATION = frozenset({"xgboost", "lightgbm"})


def trainer_class(name: str) -> type[Trainer]:
    """The trainer registered as ``name`` (also a saved model's flavor)."""
    try:
        return TRAINERS[name]
    except KeyError:
        raise Invalid(
            f"unknown trainer {name!r}", hint=f"use one of {', '.join(sorted(TRAINERS))}"
        ) from None


def create_trainer(
    name: str,
    *,
    task: Task = "classification",
    params: dict[str, Any] | None = None,
    seed: int = 42,
    class_weight: ClassWeight = "none",
) -> Trainer:
    """A new, unfitted trainer; refuses a task the trainer cannot learn."""
    cls = trainer_class(name)
    check_task(name, task, cls.tasks)
    # every registered trainer is a dataclass with exactly these constructor fields
    factory: Any = cls
    trainer: Trainer = factory(
        params=dict(params or {}), seed=seed, task=task, class_weight=class_weight
    )
    return trainer


def check_trainer_params(name: str, task: Task, params: dict[str, Any]) -> None:
    """Refuse unknown parameters before any work is done (fit checks them again)."""
    from decisionloop.training import lightgbm_trainer, xgboost_trainer
    from decisionloop.training.base import check_params

    cls = trainer_class(name)
    valid: dict[str, frozenset[str]] = {
        "xgboost": xgboost_trainer.VALID_PARAMS,
        "lightgbm": lightgbm_trainer.VALID_PARAMS,
        "logistic_regression": frozenset(LogisticRegressionTrainer.defaults),
        "linear_regression": frozenset(LinearRegressionTrainer.defaults),
        "random_forest": frozenset(RandomForestTrainer.defaults[task]),
        "gradient_boosting": frozenset(GradientBoostingTrainer.defaults[task]),
    }
    labels = {"xgboost": "XGBoost", "lightgbm": "LightGBM"}
    check_params(labels.get(name, name.replace("_", " ")), params, valid[cls.flavor])
