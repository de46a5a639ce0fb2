"""Tuning trials as runs: each trial is a child run of the tuning run, scored on validation rows
carved from the training rows. The search itself is ``training/tuning.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.config import ColumnSpec, TuningSpec
    from decisionloop.pipelines.loop import Prepared
    from decisionloop.platform import Platform, ProgressCallback
    from decisionloop.training.tuning import TuningResult


def tune_parameters(
    platform: Platform,
    parent: Any,
    prepared: Prepared,
    features: Mapping[str, ColumnSpec],
    progress: ProgressCallback,
) -> TuningResult:
    """Search the trainer's parameters: each trial is a child run of ``parent``, fitted on part
    of the training rows and scored on the rest (the validation rows); test rows are never
    seen."""
    import numpy as np

    from decisionloop.pipelines.loop import _fit, _metrics, _validation_split, log_training
    from decisionloop.training.base import score
    from decisionloop.training.preprocess import Preprocessor
    from decisionloop.training.registry import create_trainer
    from decisionloop.training.tuning import Trial, objective_for, search, search_space

    settings = platform.settings
    model_spec = settings.model
    tuning = model_spec.tuning
    assert tuning is not None
    objective = objective_for(tuning, model_spec.task)
    space = search_space(tuning, model_spec.trainer, model_spec.task)
    seed = tuning.seed if tuning.seed is not None else model_spec.seed

    split = prepared.split
    train_frame = prepared.frame.iloc[split.train_index]
    y_train = prepared.y[split.train_index]
    if split.strategy == "time":  # validate on the latest training rows, as the test set does
        assert settings.data is not None
        assert settings.data.timestamp is not None
        order = np.argsort(train_frame[settings.data.timestamp].to_numpy(), kind="stable")
        cut = len(order) - max(2, round(len(order) * tuning.validation_size))
        fit_part, valid_part = np.sort(order[:cut]), np.sort(order[cut:])
    else:
        fit_part, valid_part = _validation_split(
            y_train,
            seed=seed,
            stratify=model_spec.task == "classification",
            size=tuning.validation_size,
        )
    if model_spec.task == "classification" and len(np.unique(y_train[valid_part])) < 2:
        raise Invalid(
            "the tuning validation rows hold only one class",
            hint="raise model.tuning.validation_size or provide more rows of the rarer class",
        )
    preprocessor = Preprocessor.fit(train_frame.iloc[fit_part], dict(features))
    x_fit = preprocessor.transform(train_frame.iloc[fit_part])
    x_valid = preprocessor.transform(train_frame.iloc[valid_part])
    y_fit, y_valid = y_train[fit_part], y_train[valid_part]
    names = list(preprocessor.feature_names)
    runs = platform.metadata.runs

    def evaluate(number: int, searched: dict[str, Any]) -> float:
        trainer = create_trainer(
            model_spec.trainer,
            task=model_spec.task,
            params={**model_spec.params, **searched},
            seed=model_spec.seed,
            class_weight=model_spec.class_weight,
        )
        trial = runs.start(
            settings.name,
            params={**trainer.get_params(), "trial": number},
            tags={"trainer": model_spec.trainer, "task": model_spec.task, "trial": str(number)},
            snapshot_id=parent.snapshot_id,
            code_version=parent.code_version,
            actor=platform.actor,
            parent_run_id=parent.id,
        )
        try:
            _fit(trainer, x_fit, y_fit, names, model_spec)
            log_training(platform, trial.id, trainer)
            metrics = _metrics(
                "validation",
                y_valid,
                score(trainer, x_valid),
                model_spec.task,
                model_spec.threshold,
            )
        except BaseException as exc:
            runs.finish(
                trial.id, status="failed", metrics={}, error=str(exc)[:2000], actor=platform.actor
            )
            raise
        runs.finish(trial.id, status="finished", metrics=metrics, actor=platform.actor)
        return metrics[objective.key]

    def report(trial: Trial, best: Trial) -> None:
        progress(
            "tune",
            f"trial {trial.number + 1}/{tuning.trials}: {objective.key} {trial.value:.4f}"
            f" (best {best.value:.4f}, trial {best.number + 1})",
        )

    progress(
        "tune",
        f"{tuning.trials} trials of {model_spec.trainer} on {len(fit_part)} rows, "
        f"{objective.direction} {objective.key} on {len(valid_part)} validation rows",
    )
    return search(
        space,
        trials=tuning.trials,
        objective=objective,
        seed=seed,
        evaluate=evaluate,
        on_trial=report,
    )


def tuning_summary(tuning: TuningSpec, searched: TuningResult, model_seed: int) -> dict[str, Any]:
    best = searched.best
    return {
        "trials": len(searched.trials),
        "metric": searched.objective.key,
        "direction": searched.objective.direction,
        "seed": tuning.seed if tuning.seed is not None else model_seed,
        "validation_size": tuning.validation_size,
        "best_trial": best.number if best is not None else None,
        "best_value": best.value if best is not None else None,
        "best_params": searched.best_params,
    }
