"""XGBoost: classification or regression with early stopping, saved in XGBoost's UBJSON format."""

from __future__ import annotations

import json
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
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "min_child_weight": 1.0,
    "early_stopping_rounds": 30,
}
_BOOSTER_KEYS = {
    "max_depth",
    "learning_rate",
    "subsample",
    "colsample_bytree",
    "min_child_weight",
    "reg_lambda",
    "reg_alpha",
    "gamma",
    "scale_pos_weight",
    "max_bin",
    "tree_method",
}
VALID_PARAMS = frozenset(_BOOSTER_KEYS | {"n_estimators", "early_stopping_rounds"})
_ALIASES = {"reg_lambda": "lambda", "reg_alpha": "alpha", "learning_rate": "eta"}
_OBJECTIVES: dict[Task, tuple[str, str]] = {
    "classification": ("binary:logistic", "logloss"),
    "regression": ("reg:squarederror", "rmse"),
}


@dataclass
class XGBoostTrainer(BoostingTrainer):
    """Estimator-style trainer: ``fit`` then score; ``params`` are recorded as given."""

    flavor: ClassVar[str] = "xgboost"
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
    ) -> XGBoostTrainer:
        import xgboost as xgb

        check_params("XGBoost", self.params, VALID_PARAMS)
        check_task("xgboost", self.task, self.tasks)
        params = self.get_params()
        booster_params: dict[str, Any] = {
            _ALIASES.get(key, key): value for key, value in params.items() if key in _BOOSTER_KEYS
        }
        objective, eval_metric = _OBJECTIVES[self.task]
        booster_params.update(
            objective=objective, eval_metric=eval_metric, seed=self.seed, nthread=0
        )
        weight = class_weights(y, sample_weight, task=self.task, class_weight=self.class_weight)
        safe_names = [_safe_feature_name(n) for n in feature_names]
        train = xgb.DMatrix(x, label=y, weight=weight, feature_names=safe_names)
        evals = []
        if validation is not None:
            evals = [
                (
                    xgb.DMatrix(validation[0], label=validation[1], feature_names=safe_names),
                    "validation",
                )
            ]
        history: dict[str, dict[str, list[float]]] = {}
        self.booster = xgb.train(
            booster_params,
            train,
            num_boost_round=int(params["n_estimators"]),
            evals=evals,
            early_stopping_rounds=int(params["early_stopping_rounds"]) if evals else None,
            evals_result=history,
            verbose_eval=False,
        )
        if evals:
            self.best_iteration = int(self.booster.best_iteration)
            self.curve = {
                f"validation_{name}": [float(v) for v in values]
                for name, values in history.get("validation", {}).items()
            }
        return self

    def _raw_predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise not_fitted()
        kwargs = {}
        if self.best_iteration is not None:
            kwargs["iteration_range"] = (0, self.best_iteration + 1)
        result: np.ndarray = self.booster.inplace_predict(x, validate_features=False, **kwargs)
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
        if self.booster is None:
            raise not_fitted()
        if self.best_iteration is not None:
            # keep only the trees early stopping chose, so the saved model predicts the same
            self.booster = self.booster[: self.best_iteration + 1]
            self.best_iteration = None
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, data: bytes) -> XGBoostTrainer:
        from decisionloop.training.lean_import import import_xgboost

        xgb = import_xgboost()

        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data))
            objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        except (xgb.core.XGBoostError, KeyError, ValueError) as exc:
            raise IntegrityError("the XGBoost model cannot be read") from exc
        booster.set_param({"nthread": 1})
        tasks = {name: task for task, (name, _) in _OBJECTIVES.items()}
        if objective not in tasks:
            raise IntegrityError(f"the XGBoost model has an unexpected objective {objective!r}")
        return cls(booster=booster, task=tasks[objective])


def _safe_feature_name(name: str) -> str:
    # XGBoost refuses '[', ']' and '<' in feature names
    return name.replace("[", "(").replace("]", ")").replace("<", "lt")
