"""XGBoost binary classifier: trains with early stopping, saves in XGBoost's own UBJSON format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

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
_ALIASES = {"reg_lambda": "lambda", "reg_alpha": "alpha", "learning_rate": "eta"}


@dataclass
class XGBoostTrainer:
    """Estimator-style trainer: ``fit`` then ``predict_proba``; ``params`` are recorded as given."""

    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    booster: Any = None
    best_iteration: int | None = None

    def get_params(self) -> dict[str, Any]:
        return {**DEFAULT_PARAMS, **self.params, "seed": self.seed}

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: list[str],
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> XGBoostTrainer:
        import xgboost as xgb

        params = self.get_params()
        unknown = set(params) - _BOOSTER_KEYS - {"n_estimators", "early_stopping_rounds", "seed"}
        if unknown:
            raise Invalid(
                f"unknown XGBoost parameter(s): {', '.join(sorted(unknown))}",
                hint=f"use any of {', '.join(sorted(_BOOSTER_KEYS | {'n_estimators'}))}",
            )
        booster_params: dict[str, Any] = {
            _ALIASES.get(key, key): value for key, value in params.items() if key in _BOOSTER_KEYS
        }
        booster_params.update(
            objective="binary:logistic", eval_metric="logloss", seed=self.seed, nthread=0
        )
        safe_names = [_safe_feature_name(n) for n in feature_names]
        train = xgb.DMatrix(x, label=y, feature_names=safe_names)
        evals = []
        if validation is not None:
            evals = [
                (
                    xgb.DMatrix(validation[0], label=validation[1], feature_names=safe_names),
                    "validation",
                )
            ]
        self.booster = xgb.train(
            booster_params,
            train,
            num_boost_round=int(params["n_estimators"]),
            evals=evals,
            early_stopping_rounds=int(params["early_stopping_rounds"]) if evals else None,
            verbose_eval=False,
        )
        if evals:
            self.best_iteration = int(self.booster.best_iteration)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""
        if self.booster is None:
            raise Invalid("the trainer is not fitted", hint="call fit() first")
        kwargs = {}
        if self.best_iteration is not None:
            kwargs["iteration_range"] = (0, self.best_iteration + 1)
        result: np.ndarray = self.booster.inplace_predict(x, validate_features=False, **kwargs)
        return result

    def to_bytes(self) -> bytes:
        if self.booster is None:
            raise Invalid("the trainer is not fitted", hint="call fit() first")
        if self.best_iteration is not None:
            # keep only the trees early stopping chose, so the saved model predicts the same
            self.booster = self.booster[: self.best_iteration + 1]
            self.best_iteration = None
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, data: bytes) -> XGBoostTrainer:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(data))
        booster.set_param({"nthread": 1})
        return cls(booster=booster)


def _safe_feature_name(name: str) -> str:
    # XGBoost refuses '[', ']' and '<' in feature names
    return name.replace("[", "(").replace("]", ")").replace("<", "lt")
