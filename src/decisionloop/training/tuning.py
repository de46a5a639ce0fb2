"""Hyperparameter search with Optuna's seeded TPE sampler: spaces, the objective metric, trials.

This module only searches: it asks ``objective(number, params)`` for a score per trial and
returns the best parameters. What a trial trains and where it is recorded (a child run) is the
loop's business (``pipelines/loop.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from decisionloop.config import SearchChoices, SearchRange, TuningSpec
from decisionloop.errors import Invalid, InvalidConfig
from decisionloop.training.base import Task

Direction = Literal["maximize", "minimize"]
Space = Mapping[str, SearchRange | SearchChoices]

_PROJECT_FILE = "decisionloop.yaml"
#: metrics where lower is better; every other metric is maximised
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
#: metrics no model choice can change, so no search can use them
_NOT_TUNABLE = frozenset({"positive_rate"})


def _log(low: float, high: float) -> SearchRange:
    return SearchRange(low=low, high=high, log=True)


def _linear(low: float, high: float) -> SearchRange:
    return SearchRange(low=low, high=high)


#: the space searched when ``model.tuning.space`` is omitted, per trainer
DEFAULT_SPACES: dict[str, dict[str, SearchRange | SearchChoices]] = {
    "xgboost": {
        "max_depth": _linear(2, 8),
        "learning_rate": _log(0.01, 0.3),
        "subsample": _linear(0.6, 1.0),
        "colsample_bytree": _linear(0.5, 1.0),
        "min_child_weight": _log(0.5, 10.0),
        "reg_lambda": _log(1e-3, 10.0),
    },
    "lightgbm": {
        "num_leaves": SearchRange(low=8, high=128, log=True),
        "learning_rate": _log(0.01, 0.3),
        "min_child_samples": SearchRange(low=5, high=100, log=True),
        "colsample_bytree": _linear(0.5, 1.0),
        "reg_lambda": _log(1e-3, 10.0),
    },
    "logistic_regression": {"C": _log(1e-3, 100.0)},
    "linear_regression": {"alpha": _log(1e-4, 100.0)},
    "random_forest": {
        "n_estimators": _linear(100, 400),
        "max_depth": _linear(2, 16),
        "min_samples_leaf": SearchRange(low=1, high=20, log=True),
        "max_features": SearchChoices(choices=["sqrt", "log2", 1.0]),
    },
    "gradient_boosting": {
        "learning_rate": _log(0.01, 0.3),
        "max_depth": _linear(2, 6),
        "min_samples_leaf": SearchRange(low=1, high=30, log=True),
        "subsample": _linear(0.6, 1.0),
    },
}


@dataclass(frozen=True)
class Objective:
    """What the trials are scored on: a metric (without its ``validation_`` prefix) and whether
    higher or lower is better."""

    metric: str
    direction: Direction

    @property
    def key(self) -> str:
        """The metric's name in a trial run, e.g. ``validation_auc``."""
        return f"validation_{self.metric}"


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    value: float


@dataclass(frozen=True)
class TuningResult:
    objective: Objective
    trials: list[Trial] = field(default_factory=list)
    best: Trial | None = None

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params) if self.best is not None else {}


def objective_for(tuning: TuningSpec, task: str) -> Objective:
    """The metric and direction of a search; refuses a metric the task does not compute.

    ``metric`` may be given bare (``auc``) or as a gate metric (``test_auc``): trials are
    always scored on validation rows."""
    from decisionloop.evaluation.metrics import (
        BINARY_METRICS,
        DEFAULT_GATE_METRIC,
        REGRESSION_METRICS,
    )

    known = REGRESSION_METRICS if task == "regression" else BINARY_METRICS
    given = tuning.metric or DEFAULT_GATE_METRIC[task]
    name = given
    for prefix in ("test_", "train_", "validation_"):
        name = name.removeprefix(prefix)
    if name not in known or name in _NOT_TUNABLE:
        raise InvalidConfig(
            f"cannot tune on metric {given!r}",
            file=_PROJECT_FILE,
            key="model.tuning.metric",
            hint=f"use one of {', '.join(m for m in known if m not in _NOT_TUNABLE)}",
        )
    inferred: Direction = "minimize" if name in LOWER_IS_BETTER else "maximize"
    return Objective(metric=name, direction=tuning.direction or inferred)


def search_space(tuning: TuningSpec, trainer: str, task: Task) -> dict[str, Any]:
    """The space to search (``tuning.space`` or the trainer's default); refuses parameters the
    trainer does not know before any data is read."""
    from decisionloop.training.base import COMMON_PARAMS
    from decisionloop.training.registry import check_trainer_params

    space = dict(tuning.space) if tuning.space else dict(DEFAULT_SPACES[trainer])
    recorded = sorted(set(space) & COMMON_PARAMS)
    if recorded:
        raise InvalidConfig(
            f"cannot tune {', '.join(recorded)}",
            file=_PROJECT_FILE,
            key="model.tuning.space",
            hint="seed, task and class_weight are model settings, not trainer parameters",
        )
    try:
        check_trainer_params(trainer, task, dict.fromkeys(space))
    except InvalidConfig:
        raise
    except Invalid as exc:
        raise InvalidConfig(
            exc.message, file=_PROJECT_FILE, key="model.tuning.space", hint=exc.hint
        ) from exc
    return space


def search(
    space: Space,
    *,
    trials: int,
    objective: Objective,
    seed: int,
    evaluate: Callable[[int, dict[str, Any]], float],
    on_trial: Callable[[Trial, Trial], None] | None = None,
) -> TuningResult:
    """Run ``trials`` trials with a TPE sampler seeded by ``seed``: the same scores give the
    same sequence of parameters. ``evaluate(number, params)`` scores one trial; an error in it
    stops the search. ``on_trial(trial, best_so_far)`` is called after each trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is ours to show
    study = optuna.create_study(
        direction=objective.direction, sampler=optuna.samplers.TPESampler(seed=seed)
    )
    done: list[Trial] = []

    def run_trial(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        value = float(evaluate(trial.number, params))
        done.append(Trial(trial.number, params, value))
        if on_trial is not None:
            on_trial(done[-1], _best(done, objective.direction))
        return value

    study.optimize(run_trial, n_trials=trials, catch=())
    return TuningResult(objective, done, _best(done, objective.direction) if done else None)


def _best(trials: list[Trial], direction: Direction) -> Trial:
    """The first trial with the best value (ties go to the earlier trial)."""
    sign = 1.0 if direction == "maximize" else -1.0
    best = trials[0]
    for trial in trials[1:]:
        if sign * trial.value > sign * best.value:
            best = trial
    return best


def _suggest(trial: Any, name: str, spec: SearchRange | SearchChoices) -> Any:
    if isinstance(spec, SearchChoices):
        return trial.suggest_categorical(name, list(spec.choices))
    if isinstance(spec.low, int) and isinstance(spec.high, int):
        return trial.suggest_int(name, spec.low, spec.high, log=spec.log)
    return trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)
