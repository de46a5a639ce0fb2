"""The one estimator interface every trainer implements, and the helpers they share.

A trainer is built from its parameters (the constructor only stores them), learns in ``fit``,
scores with ``predict_proba`` (classification: the positive class's probability) or ``predict``
(regression: the predicted value), and saves itself without pickle through ``to_bytes`` /
``from_bytes``. The saved bytes describe the task, so ``from_bytes`` needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np

Task = Literal["classification", "regression"]
ClassWeight = Literal["balanced", "none"]
TASKS: tuple[Task, ...] = ("classification", "regression")

#: parameters every trainer accepts besides its own (they are recorded, not tuned)
COMMON_PARAMS = frozenset({"task", "class_weight", "seed"})


class Trainer(Protocol):
    """Estimator-style trainer: store params, ``fit``, score, save as bytes (never pickled)."""

    #: the manifest's ``flavor``: the name this trainer is registered under
    flavor: ClassVar[str]
    #: the tasks this trainer can learn
    tasks: ClassVar[tuple[Task, ...]]
    task: Task

    def get_params(self) -> dict[str, Any]:
        """Every parameter the model was (or will be) trained with, defaults included."""
        ...

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        feature_names: list[str],
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Learn from ``x``/``y``; ``validation`` drives early stopping where supported."""
        ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Classification: the probability of the positive class for each row."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Regression: the predicted value for each row."""
        ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self: ...


@dataclass
class BoostingTrainer:
    """What the boosting trainers (xgboost, lightgbm) share: their recorded parameters, the
    fitted booster, the early-stopping iteration and the validation curve."""

    #: the library's defaults as DecisionLoop sets them, under the trainer's own param names
    defaults: ClassVar[dict[str, Any]] = {}

    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    task: Task = "classification"
    class_weight: ClassWeight = "none"
    booster: Any = None
    best_iteration: int | None = None
    #: validation metric per boosting round, when fitted with a validation split
    curve: dict[str, list[float]] = field(default_factory=dict)

    def get_params(self) -> dict[str, Any]:
        return {
            **self.defaults,
            **self.params,
            "seed": self.seed,
            "task": self.task,
            "class_weight": self.class_weight,
        }


def learning_curve(trainer: object) -> dict[str, list[float]]:
    """Per-iteration validation metrics a trainer recorded while fitting (boosting trainers
    with a validation split: ``{"validation_logloss": [...]}``); empty for the others."""
    curve = getattr(trainer, "curve", None)
    return dict(curve) if isinstance(curve, dict) else {}


def score(trainer: Trainer, x: np.ndarray) -> np.ndarray:
    """What the task evaluates: probabilities for classification, values for regression."""
    return trainer.predict_proba(x) if trainer.task == "classification" else trainer.predict(x)


def check_params(label: str, params: dict[str, Any], valid: set[str] | frozenset[str]) -> None:
    """Refuse parameters the trainer does not know, listing the ones it does."""
    unknown = set(params) - set(valid) - COMMON_PARAMS
    if unknown:
        raise Invalid(
            f"unknown {label} parameter(s): {', '.join(sorted(unknown))}",
            hint=f"use any of {', '.join(sorted(valid))}",
        )


def check_task(label: str, task: str, supported: tuple[Task, ...]) -> Task:
    for known in supported:
        if task == known:
            return known
    raise Invalid(
        f"{label} does not support task {task!r}",
        hint=f"{label} learns {' or '.join(supported)}",
    )


def class_weights(
    y: np.ndarray, sample_weight: np.ndarray | None, *, task: Task, class_weight: ClassWeight
) -> np.ndarray | None:
    """The sample weights to train with: ``balanced`` gives each class the same total weight."""
    if task != "classification" or class_weight == "none":
        return sample_weight
    from sklearn.utils.class_weight import compute_sample_weight

    balanced: np.ndarray = compute_sample_weight("balanced", y)
    return balanced if sample_weight is None else balanced * sample_weight


def not_fitted() -> Invalid:
    return Invalid("the trainer is not fitted", hint="call fit() first")


def wrong_task(task: Task, method: str) -> Invalid:
    other = "predict()" if method == "predict_proba" else "predict_proba()"
    return Invalid(f"{method}() is not available for a {task} model", hint=f"use {other}")
