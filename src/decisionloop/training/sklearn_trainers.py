"""scikit-learn random forests and gradient boosting, saved as skops archives (never pickled).

Each trainer knows the exact types its archive may hold; loading refuses anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from decisionloop.errors import IntegrityError
from decisionloop.training import skops_format
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

# what every archive holds besides its estimator classes (scalars appear as numpy types)
_COMMON_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.str",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "sklearn.tree._tree.Tree",
    }
)
_FOREST = "sklearn.ensemble._forest"
_BOOSTING = "sklearn.ensemble._gb"
_TREE = "sklearn.tree._classes"
_BOOSTING_COMMON = frozenset(
    {
        f"{_TREE}.DecisionTreeRegressor",  # boosting fits regression trees for both tasks
        "numpy.random.mtrand.RandomState",
        "sklearn._loss.link.Interval",
    }
)


@dataclass
class _SkopsTrainer:
    """Shared verbs; subclasses name their estimators, defaults and allowed types."""

    flavor: ClassVar[str]
    label: ClassVar[str]
    tasks: ClassVar[tuple[Task, ...]] = ("classification", "regression")
    defaults: ClassVar[dict[Task, dict[str, Any]]]
    #: the estimator class per task, and the exact types its archive may hold
    estimators: ClassVar[dict[Task, str]]
    trusted: ClassVar[dict[Task, frozenset[str]]]

    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    task: Task = "classification"
    class_weight: ClassWeight = "none"
    estimator: Any = None

    def get_params(self) -> dict[str, Any]:
        return {
            **self.defaults[self.task],
            **self.params,
            "seed": self.seed,
            "task": self.task,
            "class_weight": self.class_weight,
        }

    def _build(self, params: dict[str, Any]) -> Any:
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
        task = check_task(self.flavor, self.task, self.tasks)
        check_params(self.label, self.params, frozenset(self.defaults[task]))
        params = {
            key: value
            for key, value in self.get_params().items()
            if key not in ("seed", "task", "class_weight")
        }
        weight = class_weights(y, sample_weight, task=task, class_weight=self.class_weight)
        self.estimator = self._build(params).fit(x, y, sample_weight=weight)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""
        if self.task != "classification":
            raise wrong_task(self.task, "predict_proba")
        if self.estimator is None:
            raise not_fitted()
        result: np.ndarray = self.estimator.predict_proba(x)[:, 1]
        return result

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted value for each row (regression)."""
        if self.task != "regression":
            raise wrong_task(self.task, "predict")
        if self.estimator is None:
            raise not_fitted()
        result: np.ndarray = self.estimator.predict(x)
        return result

    def to_bytes(self) -> bytes:
        if self.estimator is None:
            raise not_fitted()
        return skops_format.dumps(self.estimator)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        types = skops_format.archive_types(data)
        # the archive's own types say which task it is; both lists are exact allowlists
        for task in cls.tasks:
            estimator_class = cls.estimators[task]
            if estimator_class in types:
                estimator = skops_format.loads(data, trusted=cls.trusted[task])
                if f"{type(estimator).__module__}.{type(estimator).__name__}" != estimator_class:
                    raise IntegrityError(f"the {cls.label} model is a {type(estimator).__name__}")
                return cls(estimator=estimator, seed=int(estimator.random_state), task=task)
        raise IntegrityError(
            f"the artifact is not a {cls.label} model",
            hint="the manifest's flavor does not match the stored model",
        )


@dataclass
class RandomForestTrainer(_SkopsTrainer):
    """``RandomForestClassifier`` / ``RandomForestRegressor``; no early stopping (bagging)."""

    flavor: ClassVar[str] = "random_forest"
    label: ClassVar[str] = "random forest"
    defaults: ClassVar[dict[Task, dict[str, Any]]] = {
        "classification": {
            "n_estimators": 200,
            "max_depth": 0,
            "min_samples_leaf": 1,
            "max_features": "sqrt",
        },
        "regression": {
            "n_estimators": 200,
            "max_depth": 0,
            "min_samples_leaf": 1,
            "max_features": 1.0,
        },
    }
    estimators: ClassVar[dict[Task, str]] = {
        "classification": f"{_FOREST}.RandomForestClassifier",
        "regression": f"{_FOREST}.RandomForestRegressor",
    }
    trusted: ClassVar[dict[Task, frozenset[str]]] = {
        "classification": _COMMON_TYPES
        | {f"{_FOREST}.RandomForestClassifier", f"{_TREE}.DecisionTreeClassifier"},
        "regression": _COMMON_TYPES
        | {f"{_FOREST}.RandomForestRegressor", f"{_TREE}.DecisionTreeRegressor"},
    }

    def _build(self, params: dict[str, Any]) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        estimator = (
            RandomForestClassifier if self.task == "classification" else RandomForestRegressor
        )
        depth = int(params.pop("max_depth"))
        return estimator(**params, max_depth=depth or None, random_state=self.seed, n_jobs=1)


@dataclass
class GradientBoostingTrainer(_SkopsTrainer):
    """``GradientBoostingClassifier`` / ``...Regressor`` with scikit-learn's own early stopping
    (``n_iter_no_change`` on a seeded 10% validation split of the training rows)."""

    flavor: ClassVar[str] = "gradient_boosting"
    label: ClassVar[str] = "gradient boosting"
    defaults: ClassVar[dict[Task, dict[str, Any]]] = {
        task: {
            "n_estimators": 300,
            "learning_rate": 0.1,
            "max_depth": 3,
            "min_samples_leaf": 1,
            "subsample": 1.0,
            "early_stopping_rounds": 30,
        }
        for task in ("classification", "regression")
    }
    estimators: ClassVar[dict[Task, str]] = {
        "classification": f"{_BOOSTING}.GradientBoostingClassifier",
        "regression": f"{_BOOSTING}.GradientBoostingRegressor",
    }
    trusted: ClassVar[dict[Task, frozenset[str]]] = {
        "classification": _COMMON_TYPES
        | _BOOSTING_COMMON
        | {
            f"{_BOOSTING}.GradientBoostingClassifier",
            "sklearn.dummy.DummyClassifier",
            "sklearn._loss.loss.HalfBinomialLoss",
            "sklearn._loss._loss.CyHalfBinomialLoss",
            "sklearn._loss.link.LogitLink",
        },
        "regression": _COMMON_TYPES
        | _BOOSTING_COMMON
        | {
            f"{_BOOSTING}.GradientBoostingRegressor",
            "sklearn.dummy.DummyRegressor",
            "sklearn._loss.loss.HalfSquaredError",
            "sklearn._loss._loss.CyHalfSquaredError",
            "sklearn._loss.link.IdentityLink",
        },
    }

    def _build(self, params: dict[str, Any]) -> Any:
        from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

        estimator = (
            GradientBoostingClassifier
            if self.task == "classification"
            else GradientBoostingRegressor
        )
        rounds = int(params.pop("early_stopping_rounds"))
        return estimator(
            **params,
            n_iter_no_change=rounds or None,
            validation_fraction=0.1,
            random_state=self.seed,
        )
