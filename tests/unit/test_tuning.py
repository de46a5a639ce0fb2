"""The search on its own: objective metric and direction, spaces, a seeded TPE sampler."""

from __future__ import annotations

from typing import Any

import pytest

from decisionloop.config import (
    TRAINER_TASKS,
    SearchChoices,
    SearchRange,
    TuningSpec,
    load_settings,
)
from decisionloop.errors import InvalidConfig
from decisionloop.pipelines.reproduce import compare_metrics
from decisionloop.training.registry import check_trainer_params
from decisionloop.training.tuning import (
    DEFAULT_SPACES,
    Objective,
    objective_for,
    search,
    search_space,
)


@pytest.mark.parametrize(
    ("metric", "task", "direction", "name"),
    [
        (None, "classification", "maximize", "auc"),
        (None, "regression", "maximize", "r2"),
        ("test_log_loss", "classification", "minimize", "log_loss"),
        ("brier", "classification", "minimize", "brier"),
        ("validation_f1", "classification", "maximize", "f1"),
        ("test_rmse", "regression", "minimize", "rmse"),
        ("mae", "regression", "minimize", "mae"),
    ],
)
def test_the_objective_is_a_validation_metric_with_an_inferred_direction(
    metric: str | None, task: str, direction: str, name: str
) -> None:
    objective = objective_for(TuningSpec(metric=metric), task)
    assert (objective.metric, objective.direction) == (name, direction)
    assert objective.key == f"validation_{name}"


def test_an_explicit_direction_wins() -> None:
    objective = objective_for(TuningSpec(metric="auc", direction="minimize"), "classification")
    assert objective.direction == "minimize"


@pytest.mark.parametrize(
    ("metric", "task"),
    [("positive_rate", "classification"), ("rmse", "classification"), ("auc", "regression")],
)
def test_a_metric_the_task_cannot_be_tuned_on_is_refused(metric: str, task: str) -> None:
    with pytest.raises(InvalidConfig, match=r"model\.tuning\.metric"):
        objective_for(TuningSpec(metric=metric), task)


@pytest.mark.parametrize(
    ("trainer", "task"),
    [(trainer, task) for trainer, tasks in TRAINER_TASKS.items() for task in tasks],
)
def test_every_default_space_names_the_trainers_own_parameters(trainer: str, task: str) -> None:
    space = search_space(TuningSpec(), trainer, task)  # type: ignore[arg-type]
    assert space == DEFAULT_SPACES[trainer]
    check_trainer_params(trainer, task, dict.fromkeys(space))  # type: ignore[arg-type]


def test_a_space_with_unknown_or_model_level_parameters_is_refused() -> None:
    unknown = TuningSpec(space={"depth": SearchRange(low=1, high=4)})
    with pytest.raises(InvalidConfig, match="depth"):
        search_space(unknown, "xgboost", "classification")
    seed = TuningSpec(space={"seed": SearchRange(low=1, high=4)})
    with pytest.raises(InvalidConfig, match="cannot tune seed"):
        search_space(seed, "xgboost", "classification")


def test_the_project_file_refuses_a_bad_range(make_project: Any) -> None:
    folder = make_project({"model": {"tuning": {"space": {"C": {"low": 5, "high": 1}}}}})
    with pytest.raises(InvalidConfig, match="below"):
        load_settings(folder)
    folder = make_project(
        {"model": {"tuning": {"space": {"C": {"low": 0, "high": 1, "log": True}}}}}
    )
    with pytest.raises(InvalidConfig, match="log range"):
        load_settings(folder)


def test_the_project_file_reads_ranges_and_choices(make_project: Any) -> None:
    folder = make_project(
        {
            "model": {
                "trainer": "random_forest",
                "tuning": {
                    "trials": 5,
                    "metric": "test_f1",
                    "space": {
                        "max_depth": {"low": 2, "high": 8},
                        "max_features": {"choices": ["sqrt", 0.5]},
                    },
                },
            }
        }
    )
    tuning = load_settings(folder).model.tuning
    assert tuning is not None
    assert tuning.trials == 5
    assert tuning.space["max_depth"] == SearchRange(low=2, high=8)
    assert isinstance(tuning.space["max_depth"], SearchRange)
    assert type(tuning.space["max_depth"].low) is int
    assert tuning.space["max_features"] == SearchChoices(choices=["sqrt", 0.5])


SPACE = {
    "depth": SearchRange(low=1, high=9),
    "rate": SearchRange(low=1e-3, high=1.0, log=True),
    "kind": SearchChoices(choices=["a", "b", "c"]),
}


def _score(number: int, params: dict[str, Any]) -> float:
    return -((params["depth"] - 4) ** 2) - abs(params["rate"] - 0.1) + (params["kind"] == "b")


def test_the_same_seed_gives_the_same_trials_and_best() -> None:
    maximize = Objective("auc", "maximize")
    first = search(SPACE, trials=14, objective=maximize, seed=7, evaluate=_score)
    again = search(SPACE, trials=14, objective=maximize, seed=7, evaluate=_score)
    other = search(SPACE, trials=14, objective=maximize, seed=8, evaluate=_score)
    assert first.trials == again.trials
    assert first.best == again.best
    assert [t.params for t in first.trials] != [t.params for t in other.trials]
    assert len(first.trials) == 14
    assert first.best is not None
    assert first.best.value == max(t.value for t in first.trials)
    for trial in first.trials:
        assert type(trial.params["depth"]) is int
        assert 1 <= trial.params["depth"] <= 9
        assert 1e-3 <= trial.params["rate"] <= 1.0
        assert trial.params["kind"] in ("a", "b", "c")


def test_minimize_picks_the_lowest_value_and_reports_each_trial() -> None:
    seen: list[tuple[int, int]] = []
    result = search(
        SPACE,
        trials=6,
        objective=Objective("log_loss", "minimize"),
        seed=3,
        evaluate=_score,
        on_trial=lambda trial, best: seen.append((trial.number, best.number)),
    )
    assert result.best is not None
    assert result.best.value == min(t.value for t in result.trials)
    assert [number for number, _ in seen] == list(range(6))
    assert seen[-1][1] == result.best.number
    assert result.best_params == result.best.params


def test_an_error_in_a_trial_stops_the_search() -> None:
    def failing(number: int, params: dict[str, Any]) -> float:
        if number == 1:
            raise ValueError("boom")
        return 1.0

    with pytest.raises(ValueError, match="boom"):
        search(SPACE, trials=4, objective=Objective("auc", "maximize"), seed=1, evaluate=failing)


def test_metrics_compare_within_the_tolerance_only() -> None:
    checks = compare_metrics(
        {"test_auc": 0.8, "train_auc": 0.9, "best_validation_auc": 0.7, "test_f1": 0.5},
        {"test_auc": 0.8 + 1e-12, "train_auc": 0.91, "test_f1": float("nan")},
        1e-9,
    )
    by_name = {c.name: c for c in checks}
    assert set(by_name) == {"test_auc", "train_auc", "test_f1"}
    assert by_name["test_auc"].matches is True
    assert by_name["train_auc"].matches is False
    assert by_name["test_f1"].matches is False
    missing = compare_metrics({"test_auc": 0.8}, {}, 1e-9)
    assert [(c.name, c.reproduced, c.matches) for c in missing] == [("test_auc", None, False)]
