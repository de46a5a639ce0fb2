"""Logistic and linear (ridge) regression, saved as an explicit JSON list of coefficients.

Features are standardised while fitting (so the penalty treats them alike and the solver
converges) and the scaling is folded back into the coefficients, so the saved model is just
``intercept + x @ coefficients`` (through the logistic function for classification).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from decisionloop.errors import IntegrityError
from decisionloop.training.base import (
    ClassWeight,
    Task,
    check_params,
    check_task,
    class_weights,
    not_fitted,
    wrong_task,
)

if TYPE_CHECKING:
    import numpy as np

FORMAT = "decisionloop.linear/1"


@dataclass
class _LinearTrainer:
    flavor: ClassVar[str]
    label: ClassVar[str]
    tasks: ClassVar[tuple[Task, ...]]
    defaults: ClassVar[dict[str, Any]]

    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    task: Task = "classification"
    class_weight: ClassWeight = "none"
    coefficients: np.ndarray | None = None
    intercept: float = 0.0

    def get_params(self) -> dict[str, Any]:
        return {
            **self.defaults,
            **self.params,
            "seed": self.seed,
            "task": self.task,
            "class_weight": self.class_weight,
        }

    def _estimator(self, params: dict[str, Any]) -> Any:
        raise NotImplementedError  # every concrete trainer defines it

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: list[str],
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        import numpy as np

        check_params(self.label, self.params, frozenset(self.defaults))
        task = check_task(self.flavor, self.task, self.tasks)
        params = {**self.defaults, **self.params}
        weight = class_weights(y, sample_weight, task=task, class_weight=self.class_weight)
        values = np.asarray(x, dtype="float64")
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale[scale == 0] = 1.0  # a constant column keeps a zero coefficient
        estimator = self._estimator(params).fit((values - mean) / scale, y, sample_weight=weight)
        scaled = np.asarray(estimator.coef_, dtype="float64").reshape(-1)
        self.coefficients = scaled / scale
        self.intercept = float(np.asarray(estimator.intercept_).reshape(-1)[0]) - float(
            np.dot(scaled, mean / scale)
        )
        return self

    def _linear(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        if self.coefficients is None:
            raise not_fitted()
        result: np.ndarray = np.asarray(x, dtype="float64") @ self.coefficients + self.intercept
        return result

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""
        from scipy.special import expit

        if self.task != "classification":
            raise wrong_task(self.task, "predict_proba")
        result: np.ndarray = expit(self._linear(x))
        return result

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted value for each row (regression)."""
        if self.task != "regression":
            raise wrong_task(self.task, "predict")
        return self._linear(x)

    def to_bytes(self) -> bytes:
        if self.coefficients is None:
            raise not_fitted()
        document = {
            "format": FORMAT,
            "flavor": self.flavor,
            "task": self.task,
            "params": self.get_params(),
            "intercept": self.intercept,
            "coefficients": [float(c) for c in self.coefficients],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        import numpy as np

        try:
            document = json.loads(data)
            if document["format"] != FORMAT or document["flavor"] != cls.flavor:
                raise ValueError(f"format {document['format']!r}, flavor {document['flavor']!r}")
            task = check_task(cls.flavor, document["task"], cls.tasks)
            coefficients = np.array([float(c) for c in document["coefficients"]], dtype="float64")
            intercept = float(document["intercept"])
            seed = int(document["params"]["seed"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"the {cls.label} model cannot be read: {exc}") from exc
        return cls(seed=seed, task=task, coefficients=coefficients, intercept=intercept)


@dataclass
class LogisticRegressionTrainer(_LinearTrainer):
    """L2-penalised logistic regression (``sklearn.linear_model.LogisticRegression``)."""

    flavor: ClassVar[str] = "logistic_regression"
    label: ClassVar[str] = "logistic regression"
    tasks: ClassVar[tuple[Task, ...]] = ("classification",)
    defaults: ClassVar[dict[str, Any]] = {"C": 1.0, "max_iter": 1000, "tol": 1e-6}

    def _estimator(self, params: dict[str, Any]) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=float(params["C"]),
            max_iter=int(params["max_iter"]),
            tol=float(params["tol"]),
            solver="lbfgs",
            random_state=self.seed,
        )


@dataclass
class LinearRegressionTrainer(_LinearTrainer):
    """Least squares with an L2 penalty ``alpha`` (ridge; ``alpha: 0`` is ordinary least
    squares), ``sklearn.linear_model.Ridge``."""

    flavor: ClassVar[str] = "linear_regression"
    label: ClassVar[str] = "linear regression"
    tasks: ClassVar[tuple[Task, ...]] = ("regression",)
    defaults: ClassVar[dict[str, Any]] = {"alpha": 1.0}

    task: Task = "regression"

    def _estimator(self, params: dict[str, Any]) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=float(params["alpha"]), random_state=self.seed)
