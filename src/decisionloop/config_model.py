"""The model's sections of the project file: the trainer and its parameters, the search, and
the gates (see docs/configuration.md). ``decisionloop.config`` re-exports every name."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TrainerName = Literal[
    "xgboost",
    "lightgbm",
    "logistic_regression",
    "linear_regression",
    "random_forest",
    "gradient_boosting",
]
#: the tasks each trainer learns (docs/training.md); training.registry holds the trainers
TRAINER_TASKS: dict[str, tuple[str, ...]] = {
    "xgboost": ("classification", "regression"),
    "lightgbm": ("classification", "regression"),
    "logistic_regression": ("classification",),
    "linear_regression": ("regression",),
    "random_forest": ("classification", "regression"),
    "gradient_boosting": ("classification", "regression"),
}


TuningValue = float | int | str | bool


class SearchRange(_Section):
    """A numeric range to search: integers when ``low`` and ``high`` are both integers."""

    low: int | float
    high: int | float
    log: bool = Field(default=False, description="Sample on a log scale (needs low > 0).")

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if self.low >= self.high:
            raise ValueError("`low` must be below `high`")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs `low` above 0")
        return self


class SearchChoices(_Section):
    """A list of values to choose from."""

    choices: list[TuningValue] = Field(min_length=1)


class TuningSpec(_Section):
    """Hyperparameter search: trials scored on validation rows carved from the training rows."""

    trials: int = Field(default=20, ge=1, le=10_000, description="How many trials to run.")
    metric: str | None = Field(
        default=None,
        description="Metric the trials are scored on (default: the task's default gate metric).",
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        default=None, description="Inferred from the metric when omitted."
    )
    space: dict[str, SearchRange | SearchChoices] = Field(
        default_factory=dict, description="Parameter -> range or choices (default per trainer)."
    )
    seed: int | None = Field(default=None, description="Sampler seed (default: model.seed).")
    validation_size: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Share of training rows that score trials."
    )


class ModelSpec(_Section):
    """The model to train."""

    task: Literal["classification", "regression"] = Field(
        default="classification",
        description="classification (a two-valued target) or regression (a numeric target).",
    )
    trainer: TrainerName = "xgboost"
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    class_weight: Literal["balanced", "none"] = Field(
        default="none", description="balanced: weight rows so each class counts the same."
    )
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 42
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    tuning: TuningSpec | None = Field(
        default=None, description="Search the trainer's parameters before training."
    )

    @model_validator(mode="after")
    def _trainer_learns_task(self) -> ModelSpec:
        if self.task not in TRAINER_TASKS[self.trainer]:
            fits = sorted(n for n, tasks in TRAINER_TASKS.items() if self.task in tasks)
            raise ValueError(
                f"trainer {self.trainer} does not learn {self.task}; use one of {', '.join(fits)}"
            )
        return self


GateKind = Literal["threshold", "overfit", "champion", "calibration", "fairness", "drift", "custom"]

_FUNCTION = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)

#: the keys each gate kind needs (one of them for `threshold` and `fairness`) and allows
_GATE_KEYS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "threshold": (("metric",), frozenset({"metric", "min", "max"})),
    "overfit": (("metric", "max_gap"), frozenset({"metric", "max_gap"})),
    "champion": ((), frozenset({"metric", "margin", "resamples", "confidence"})),
    "calibration": (("max_ece",), frozenset({"max_ece", "bins"})),
    "fairness": (("column", "measure"), frozenset({"column", "measure", "min", "max"})),
    "drift": (("max_share",), frozenset({"max_share"})),
    "custom": (("function",), frozenset({"function"})),
}


class GateSpec(_Section):
    """A check a version must pass; a failing ``block`` gate keeps it from ``@champion``.

    ``kind`` (default ``threshold``, so older project files keep working) decides which keys
    apply; see docs/evaluation.md#gates."""

    kind: GateKind = "threshold"
    metric: str | None = Field(
        default=None, description="threshold/overfit/champion: the metric checked."
    )
    min: float | None = None
    max: float | None = None
    max_gap: float | None = Field(
        default=None, description="overfit: the largest train - test gap allowed."
    )
    margin: float = Field(
        default=0.0, ge=0.0, description="champion: how much worse than @champion is tolerated."
    )
    resamples: int = Field(
        default=1000, ge=100, le=100_000, description="champion: bootstrap resamples."
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="champion: the bootstrap interval's level."
    )
    max_ece: float | None = Field(
        default=None, ge=0.0, description="calibration: the largest test ECE allowed."
    )
    bins: int = Field(default=10, ge=2, le=1000, description="calibration: uniform ECE bins.")
    column: str | None = Field(default=None, description="fairness: the sensitive column.")
    measure: str | None = Field(
        default=None, description="fairness: the between-group measure, e.g. disparate_impact."
    )
    max_share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="drift: the largest share of drifted columns."
    )
    function: str | None = Field(
        default=None, description="custom: `module:function` in the project folder."
    )
    severity: Literal["block", "warn"] = "block"

    @model_validator(mode="after")
    def _keys_fit_kind(self) -> GateSpec:
        # a model validator: a field validator on `max` never runs when `max` is omitted
        required, allowed = _GATE_KEYS[self.kind]
        for key in required:
            if getattr(self, key) is None:
                raise ValueError(f"a {self.kind} gate needs `{key}`")
        defaults = {"margin": 0.0, "resamples": 1000, "confidence": 0.95, "bins": 10}
        for key in sorted(self.model_fields_set - allowed - {"kind", "severity"}):
            if getattr(self, key) != defaults.get(key):
                raise ValueError(f"`{key}` does not apply to a {self.kind} gate")
        if self.kind in ("threshold", "fairness") and self.min is None and self.max is None:
            raise ValueError("a gate needs `min` or `max`")
        if self.function is not None and not _FUNCTION.match(self.function):
            raise ValueError("`function` must be `module:function`, e.g. `checks:no_region_gap`")
        return self
