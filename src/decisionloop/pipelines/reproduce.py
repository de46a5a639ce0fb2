"""Reproduce a run: retrain it from what it recorded (its snapshot, trainer, parameters, seed,
split and columns) without registering a version, and compare its metrics with the original's.

A run records what retraining needs (:func:`run_inputs`) next to its trainer parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.config import ColumnSpec, DataSpec
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import Run
    from decisionloop.config import ModelSpec
    from decisionloop.pipelines.loop import Prepared
    from decisionloop.platform import Platform, ProgressCallback

#: metrics of a reproduction match the original's when they differ by at most this much
TOLERANCE = 1e-9
#: the inputs a run must have recorded to be reproduced
_REQUIRED = ("trainer", "task", "seed", "split", "test_size", "threshold", "target", "columns")


def run_inputs(settings: Any, prepared: Prepared, features: Mapping[str, Any]) -> dict[str, Any]:
    """What a run records besides its trainer parameters so that it can be retrained exactly
    (``decisionloop runs reproduce``): trainer, split, threshold, target, columns, features."""
    spec = settings.data
    model_spec = settings.model
    return {
        "trainer": model_spec.trainer,
        "test_size": model_spec.test_size,
        "threshold": model_spec.threshold,
        "split": prepared.split.describe(),
        "target": spec.target,
        "positive": prepared.positive or None,
        "entity": spec.entity,
        "timestamp": spec.timestamp,
        "exclude": list(spec.exclude),
        "features": list(features),
        "columns": {
            name: column.model_dump(mode="json", exclude_defaults=True)
            for name, column in prepared.columns.items()
        },
    }


#: run params that are not trainer parameters (inputs above, and what training logs)
RECORDED_INPUTS = frozenset(
    {
        "trainer",
        "test_size",
        "threshold",
        "split",
        "target",
        "positive",
        "entity",
        "timestamp",
        "exclude",
        "features",
        "columns",
        "tuning",
        "best_iteration",
        "trial",
    }
)


@dataclass(frozen=True)
class MetricCheck:
    """One metric of the original run next to the reproduction's."""

    name: str
    original: float | None
    reproduced: float | None
    matches: bool


@dataclass(frozen=True)
class Reproduction:
    """The outcome of :func:`reproduce_run`: ``matches`` when the split and every metric
    match."""

    original_run_id: str
    run_id: str
    snapshot_id: str
    tolerance: float
    split_matches: bool
    metrics: list[MetricCheck]

    @property
    def matches(self) -> bool:
        return self.split_matches and all(check.matches for check in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_run_id": self.original_run_id,
            "run_id": self.run_id,
            "snapshot_id": self.snapshot_id,
            "tolerance": self.tolerance,
            "matches": self.matches,
            "split_matches": self.split_matches,
            "metrics": [
                {
                    "name": check.name,
                    "original": check.original,
                    "reproduced": check.reproduced,
                    "matches": check.matches,
                }
                for check in self.metrics
            ],
        }


def reproduce_run(
    platform: Platform,
    run_id: str,
    progress: ProgressCallback,
    *,
    tolerance: float = TOLERANCE,
) -> Reproduction:
    """Retrain the finished run ``run_id`` as it was recorded, as a new run tagged
    ``reproduction_of=<run_id>`` (no version is registered), and compare the metrics."""
    from decisionloop.backends.metadata.environment import capture_environment
    from decisionloop.pipelines.loop import (
        Prepared,
        code_version,
        feature_columns,
        log_training,
        prepare_rows,
        train_and_evaluate,
    )
    from decisionloop.pipelines.training_data import training_table

    runs = platform.metadata.runs
    original = runs.get(run_id)
    _check_reproducible(original)
    recorded = original.params
    model_spec = _model_spec(recorded)
    trainer_params = {k: v for k, v in recorded.items() if k not in RECORDED_INPUTS | _COMMON}
    assert original.snapshot_id is not None
    data_spec = recorded_data_spec(original.snapshot_id, recorded)
    settings = platform.settings.model_copy(update={"data": data_spec, "model": model_spec})

    assert original.snapshot_id is not None
    progress("validate", f"reading snapshot {original.snapshot_id[:12]} of run {run_id[:12]}")
    prepared = Prepared(columns=dict(data_spec.columns))
    prepare_rows(
        settings,
        training_table(platform, original.snapshot_id, original.feature_versions),
        prepared,
    )
    split_matches = prepared.split.describe() == recorded["split"]
    features = feature_columns(data_spec, prepared.columns)
    run = runs.start(
        original.model_name,
        params={k: v for k, v in recorded.items() if k not in ("tuning", "best_iteration")},
        tags={
            **{k: v for k, v in original.tags.items() if k != "tuning"},
            "reproduction_of": original.id,
        },
        snapshot_id=original.snapshot_id,
        code_version=code_version(platform.settings.project_dir),
        actor=platform.actor,
        environment=capture_environment(platform.settings.project_dir),
        feature_versions=original.feature_versions,
    )
    try:
        progress("train", f"retraining {model_spec.trainer} with the recorded parameters")
        trained = train_and_evaluate(model_spec, trainer_params, prepared, features)
        log_training(platform, run.id, trained.trainer)
        finished = runs.finish(
            run.id, status="finished", metrics=trained.metrics, actor=platform.actor
        )
    except BaseException as exc:
        runs.finish(
            run.id, status="failed", metrics={}, error=str(exc)[:2000], actor=platform.actor
        )
        raise
    checks = compare_metrics(original.metrics, finished.metrics, tolerance)
    progress(
        "evaluate",
        f"{sum(c.matches for c in checks)}/{len(checks)} metrics match"
        + ("" if split_matches else "; the split differs"),
    )
    return Reproduction(
        original_run_id=original.id,
        run_id=run.id,
        snapshot_id=original.snapshot_id,
        tolerance=tolerance,
        split_matches=split_matches,
        metrics=checks,
    )


def compare_metrics(
    original: Mapping[str, float], reproduced: Mapping[str, float], tolerance: float
) -> list[MetricCheck]:
    """Every train/test metric of the original and every other metric both runs have; a metric
    the reproduction lacks does not match."""
    names = [
        name
        for name in sorted(original)
        if name in reproduced or name.startswith(("train_", "test_"))
    ]
    checks = []
    for name in names:
        first, second = original.get(name), reproduced.get(name)
        same = (
            first is not None
            and second is not None
            and (abs(first - second) <= tolerance or (math.isnan(first) and math.isnan(second)))
        )
        checks.append(MetricCheck(name, first, second, same))
    return checks


_COMMON = frozenset({"seed", "task", "class_weight"})


def _check_reproducible(run: Run) -> None:
    if run.parent_run_id is not None:
        raise Invalid(
            f"run {run.id} is a tuning trial",
            hint=f"reproduce its tuning run: decisionloop runs reproduce {run.parent_run_id}",
        )
    if run.status != "finished":
        raise Invalid(f"run {run.id} is {run.status}", hint="only a finished run can be reproduced")
    missing = [key for key in _REQUIRED if key not in run.params]
    if run.snapshot_id is None:
        missing.append("snapshot")
    if missing:
        raise Invalid(
            f"run {run.id} did not record {', '.join(missing)}",
            hint="the run predates recording these; train again with `decisionloop run`",
        )


def _model_spec(recorded: Mapping[str, Any]) -> ModelSpec:
    from pydantic import ValidationError

    from decisionloop.config import ModelSpec

    try:
        spec = ModelSpec(
            task=recorded["task"],
            trainer=recorded["trainer"],
            class_weight=recorded.get("class_weight", "none"),
            test_size=recorded["test_size"],
            seed=recorded["seed"],
            threshold=recorded["threshold"],
        )
    except ValidationError as exc:
        raise Invalid(
            f"the run's recorded settings are not valid: {exc.errors()[0]['msg']}",
            hint="the run was recorded by another version of DecisionLoop",
        ) from exc
    return spec


def recorded_data_spec(snapshot_id: str, recorded: Mapping[str, Any]) -> DataSpec:
    """The data section a run trained with, rebuilt from its recorded params: its snapshot,
    target, positive class, entity, timestamp, exclusions and column contract."""
    columns = {
        name: ColumnSpec.model_validate(column) for name, column in recorded["columns"].items()
    }
    return DataSpec(
        source=f"snapshot:{snapshot_id}",
        target=recorded["target"],
        positive=recorded.get("positive"),
        entity=recorded.get("entity"),
        timestamp=recorded.get("timestamp"),
        exclude=list(recorded.get("exclude") or []),
        columns=columns,
    )
