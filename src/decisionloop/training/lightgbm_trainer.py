"""LightGBM: classification or regression with early stopping, saved in LightGBM's text format."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from decisionloop.errors import IntegrityError
from decisionloop.training.base import (
    BoostingTrainer,
    Task,
    check_params,
    check_task,
    class_weights,
    not_fitted,
    wrong_task,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": -1,
    "min_child_samples": 20,
    "subsample": 1.0,
    "subsample_freq": 0,
    "colsample_bytree": 1.0,
    "reg_alpha": 0.0,
    "reg_lambda": 0.0,
    "early_stopping_rounds": 30,
}
# names LightGBM's own parameter parser accepts (these are its documented aliases)
_BOOSTER_KEYS = {
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "min_split_gain",
    "subsample",
    "subsample_freq",
    "colsample_bytree",
    "reg_alpha",
    "reg_lambda",
    "max_bin",
    "scale_pos_weight",
}
VALID_PARAMS = frozenset(_BOOSTER_KEYS | {"n_estimators", "early_stopping_rounds"})
_OBJECTIVES: dict[Task, tuple[str, str]] = {
    "classification": ("binary", "binary_logloss"),
    "regression": ("regression", "l2"),
}
# LightGBM refuses JSON's special characters in feature names
_UNSAFE = re.compile(r'[\s",:\[\]{}\\]')


@dataclass
class LightGBMTrainer(BoostingTrainer):
    """Estimator-style trainer over ``lightgbm.train``; deterministic for a seed."""

    flavor: ClassVar[str] = "lightgbm"
    tasks: ClassVar[tuple[Task, ...]] = ("classification", "regression")
    defaults: ClassVar[dict[str, Any]] = DEFAULT_PARAMS

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: list[str],
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> LightGBMTrainer:
        import lightgbm as lgb

        check_params("LightGBM", self.params, VALID_PARAMS)
        check_task("lightgbm", self.task, self.tasks)
        params = self.get_params()
        objective, metric = _OBJECTIVES[self.task]
        booster_params: dict[str, Any] = {
            key: value for key, value in params.items() if key in _BOOSTER_KEYS
        }
        booster_params.update(
            objective=objective,
            metric=metric,
            seed=self.seed,
            # same data + seed => same model: no thread-order or histogram-layout choices
            deterministic=True,
            force_row_wise=True,
            num_threads=1,
            verbosity=-1,
        )
        weight = class_weights(y, sample_weight, task=self.task, class_weight=self.class_weight)
        names = _safe_feature_names(feature_names)
        train = lgb.Dataset(x, label=y, weight=weight, feature_name=names, free_raw_data=False)
        valid_sets = []
        callbacks: list[Callable[..., Any]] = []
        history: dict[str, dict[str, list[float]]] = {}
        if validation is not None:
            valid_sets = [lgb.Dataset(validation[0], label=validation[1], reference=train)]
            rounds = int(params["early_stopping_rounds"])
            callbacks = [
                lgb.early_stopping(rounds, first_metric_only=True, verbose=False),
                lgb.record_evaluation(history),
            ]
        self.booster = lgb.train(
            booster_params,
            train,
            num_boost_round=int(params["n_estimators"]),
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        self.best_iteration = int(self.booster.best_iteration) if valid_sets else None
        self.curve = {
            f"validation_{name}": [float(v) for v in values]
            for recorded in history.values()
            for name, values in recorded.items()
        }
        return self

    def _raw_predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise not_fitted()
        result: np.ndarray = self.booster.predict(
            x, num_iteration=self.best_iteration or None, num_threads=1
        )
        return result

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""
        if self.task != "classification":
            raise wrong_task(self.task, "predict_proba")
        return self._raw_predict(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted value for each row (regression)."""
        if self.task != "regression":
            raise wrong_task(self.task, "predict")
        return self._raw_predict(x)

    def to_bytes(self) -> bytes:
        """LightGBM's text model, holding only the trees early stopping chose."""
        if self.booster is None:
            raise not_fitted()
        text: str = self.booster.model_to_string(num_iteration=self.best_iteration or None)
        return text.encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> LightGBMTrainer:
        import lightgbm as lgb

        try:
            text = data.decode("utf-8")
            booster = lgb.Booster(model_str=text)
        except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            raise IntegrityError("the LightGBM model cannot be read") from exc
        objective = next(
            (
                line.split("=", 1)[1].split()[0]
                for line in text.splitlines()
                if line.startswith("objective=")
            ),
            "",
        )
        tasks = {name: task for task, (name, _) in _OBJECTIVES.items()}
        if objective not in tasks:
            raise IntegrityError(f"the LightGBM model has an unexpected objective {objective!r}")
        return cls(booster=booster, task=tasks[objective])


def _safe_feature_names(names: list[str]) -> list[str]:
    safe: list[str] = []
    for index, name in enumerate(names):
        candidate = _UNSAFE.sub("_", name) or f"feature_{index}"
        safe.append(candidate if candidate not in safe else f"{candidate}_{index}")
    return safe
