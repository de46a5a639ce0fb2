"""One iteration of the loop: ingest, validate, train, evaluate, gate, register, promote."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.backends.metadata.records import MetricPoint, NewModelVersion
from decisionloop.config import ColumnSpec, ColumnType, DataSpec, ModelSpec
from decisionloop.errors import DecisionLoopError, InvalidConfig
from decisionloop.evaluation.metrics import prefixed
from decisionloop.pipelines.assess import assess
from decisionloop.pipelines.feature_steps import (
    bundle_features,
    refresh_features,
    with_feature_columns,
)
from decisionloop.pipelines.gating import gate_version, keep_evaluation
from decisionloop.pipelines.prepare import Prepared, prepare_rows

if TYPE_CHECKING:
    from decisionloop.platform import Platform, ProgressCallback

CHAMPION = "champion"
__all__ = ["CHAMPION", "LoopResult", "Prepared", "prepare_rows", "run_loop"]


@dataclass(frozen=True)
class LoopResult:
    model: str
    version: int
    aliases: list[str]
    promoted: bool
    run_id: str
    snapshot_id: str
    snapshot_hash: str
    rows: int
    metrics: dict[str, float]
    gates: dict[str, Any]
    split: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    #: the search's settings and outcome when the run was tuned (see ``model.tuning``)
    tuning: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "aliases": self.aliases,
            "promoted": self.promoted,
            "run_id": self.run_id,
            "snapshot_id": self.snapshot_id,
            "snapshot_hash": self.snapshot_hash,
            "rows": self.rows,
            "metrics": self.metrics,
            "gates": self.gates,
            "split": self.split,
            "params": self.params,
            "tuning": self.tuning,
        }


def feature_columns(spec: DataSpec, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
    skip = {spec.target, spec.entity, spec.timestamp, *spec.exclude}
    return {name: col for name, col in columns.items() if name not in skip}


def code_version(folder: Path) -> str | None:
    """The git commit of the project folder (with ``-dirty`` when it has changes), if any.

    One ``git status`` answers both (commit and changes); a folder with no ``.git`` in it or
    above it is in no repository, which is known without starting git."""
    folder = folder.resolve()
    if not any((parent / ".git").exists() for parent in (folder, *folder.parents)):
        return None
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0:
        return None
    commit, dirty = None, False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.removeprefix("# branch.oid ").strip()
        elif line and not line.startswith("# "):
            dirty = True  # a changed, staged, unmerged or untracked path
    if commit is None or commit == "(initial)":  # a repository without commits
        return None
    return commit + ("-dirty" if dirty else "")


def run_loop(platform: Platform, progress: ProgressCallback, *, tune: bool = True) -> LoopResult:
    """One loop iteration; with ``model.tuning`` set (and ``tune``), a parameter search first:
    each trial a child run of this run, scored on validation rows carved from the training
    rows, and the best trial's parameters retrained on all training rows."""
    from decisionloop.backends.metadata.environment import capture_environment
    from decisionloop.evaluation.gates import check_gates
    from decisionloop.evaluation.metrics import gate_metric_names
    from decisionloop.pipelines.reproduce import run_inputs
    from decisionloop.pipelines.trials import tune_parameters, tuning_summary
    from decisionloop.training.registry import check_trainer_params, create_trainer
    from decisionloop.training.tuning import objective_for, search_space

    settings = platform.settings
    source = settings.data_source()
    assert settings.data is not None
    spec = settings.data
    project_file = str(settings.project_dir / "decisionloop.yaml")

    model_spec = settings.model
    check_gates(
        settings.gates,
        gate_metric_names(model_spec.task),
        task=model_spec.task,
        project_dir=settings.project_dir,
    )
    check_trainer_params(model_spec.trainer, model_spec.task, dict(model_spec.params))
    tuning = model_spec.tuning if tune else None
    if tuning is not None:  # refuse a wrong search before any data is read
        objective_for(tuning, model_spec.task)
        search_space(tuning, model_spec.trainer, model_spec.task)
    progress("ingest", f"reading {source}")
    prepared = _ingest_training_data(platform, source, project_file, progress)
    snapshot = prepared.snapshot
    features = feature_columns(spec, prepared.columns)
    split = prepared.split

    params = dict(model_spec.params)
    inputs = run_inputs(settings, prepared, features)
    runs = platform.metadata.runs
    trainer_params = create_trainer(
        model_spec.trainer,
        task=model_spec.task,
        params=params,
        seed=model_spec.seed,
        class_weight=model_spec.class_weight,
    ).get_params()
    tags = {"trainer": model_spec.trainer, "task": model_spec.task, "split": split.strategy}
    run = runs.start(
        settings.name,
        # a tuning run learns its trainer parameters from the search: logged once known
        params=inputs if tuning is not None else {**trainer_params, **inputs},
        tags={**tags, "tuning": "true"} if tuning is not None else tags,
        snapshot_id=snapshot.id,
        code_version=code_version(settings.project_dir),
        actor=platform.actor,
        environment=capture_environment(settings.project_dir),
        feature_versions=prepared.feature_lineage,
    )
    summary: dict[str, Any] | None = None
    try:
        extra_metrics: dict[str, float] = {}
        if tuning is not None:
            searched = tune_parameters(platform, run, prepared, features, progress)
            params.update(searched.best_params)
            summary = tuning_summary(tuning, searched, model_spec.seed)
            chosen = create_trainer(
                model_spec.trainer,
                task=model_spec.task,
                params=params,
                seed=model_spec.seed,
                class_weight=model_spec.class_weight,
            )
            runs.log_params(
                run.id, {**chosen.get_params(), "tuning": summary}, actor=platform.actor
            )
            if searched.best is not None:
                extra_metrics[f"best_{searched.objective.key}"] = searched.best.value
        progress("train", f"training {model_spec.trainer} on {len(split.train_index)} rows")
        trained = train_and_evaluate(model_spec, params, prepared, features)
        trainer, metrics = trained.trainer, trained.metrics
        log_training(platform, run.id, trainer)
        progress("evaluate", f"scored {len(split.test_index)} held-out rows")
        reports = assess(platform, prepared, trained, features)
        report = gate_version(platform, prepared, trained, reports=reports)
        progress(
            "gate",
            "passed"
            if report.passed
            else "FAILED: " + "; ".join(report.to_dict()["blocking_failures"]),
        )
        progress("register", "saving the model and registering a version")
        version = _register(platform, run, prepared, trained, report)
        keep_evaluation(platform, version.version, prepared, trained, reports)
        runs.finish(
            run.id, status="finished", metrics={**metrics, **extra_metrics}, actor=platform.actor
        )
    except BaseException as exc:
        runs.finish(
            run.id, status="failed", metrics={}, error=str(exc)[:2000], actor=platform.actor
        )
        raise

    aliases: list[str] = []
    if report.passed:
        progress("promote", f"{settings.name}/{version.version} becomes @{CHAMPION}")
        platform.set_alias(settings.name, CHAMPION, version.version)
        aliases.append(CHAMPION)
    else:
        progress("promote", f"{settings.name}/{version.version} kept out of @{CHAMPION}")
    return LoopResult(
        model=settings.name,
        version=version.version,
        aliases=aliases,
        promoted=report.passed,
        run_id=run.id,
        snapshot_id=snapshot.id,
        snapshot_hash=snapshot.content_hash,
        rows=len(prepared.frame),
        metrics=metrics,
        gates=report.to_dict(),
        split=split.describe(),
        params=trainer.get_params(),
        tuning=summary,
    )


@dataclass(frozen=True)
class Trained:
    """A fitted model, its preprocessor, the transformed test rows and the train/test metrics."""

    trainer: Any
    preprocessor: Any
    x_test: Any
    metrics: dict[str, float]
    y_test: Any = None
    test_scores: Any = None


def train_and_evaluate(
    model_spec: ModelSpec,
    params: dict[str, Any],
    prepared: Prepared,
    features: Mapping[str, ColumnSpec],
) -> Trained:
    """Fit the preprocessor and the trainer on the training rows (boosting trainers hold 10%
    out for early stopping) and score the train and test rows. Deterministic for a seed."""
    from decisionloop.evaluation.metrics import calibration_and_ranking_metrics
    from decisionloop.training.base import score
    from decisionloop.training.preprocess import Preprocessor
    from decisionloop.training.registry import create_trainer

    split, frame, y = prepared.split, prepared.frame, prepared.y
    train_frame = frame.iloc[split.train_index]
    test_frame = frame.iloc[split.test_index]
    preprocessor = Preprocessor.fit(train_frame, dict(features))
    x_train = preprocessor.transform(train_frame)
    x_test = preprocessor.transform(test_frame)
    y_train, y_test = y[split.train_index], y[split.test_index]
    trainer = create_trainer(
        model_spec.trainer,
        task=model_spec.task,
        params=params,
        seed=model_spec.seed,
        class_weight=model_spec.class_weight,
    )
    _fit(trainer, x_train, y_train, list(preprocessor.feature_names), model_spec)
    task, threshold = model_spec.task, model_spec.threshold
    test_scores = score(trainer, x_test)
    metrics = {
        **_metrics("train", y_train, score(trainer, x_train), task, threshold),
        **_metrics("test", y_test, test_scores, task, threshold),
    }
    if task == "classification":
        metrics.update(prefixed("test", calibration_and_ranking_metrics(y_test, test_scores)))
    return Trained(trainer, preprocessor, x_test, metrics, y_test, test_scores)


def _fit(trainer: Any, x: Any, y: Any, names: list[str], model_spec: ModelSpec) -> None:
    from decisionloop.training.registry import USES_VALIDATION

    if model_spec.trainer in USES_VALIDATION:
        fit_part, valid_part = _validation_split(
            y, seed=model_spec.seed, stratify=model_spec.task == "classification"
        )
        trainer.fit(
            x[fit_part], y[fit_part], feature_names=names, validation=(x[valid_part], y[valid_part])
        )
    else:  # no early stopping on our rows: learn from all training rows
        trainer.fit(x, y, feature_names=names)


def _register(
    platform: Platform, run: Any, prepared: Prepared, trained: Trained, report: Any
) -> Any:
    """Save the bundle, check it scores as evaluated, and register a version."""
    import numpy as np

    from decisionloop.registry.bundle import ModelBundle
    from decisionloop.training.base import score

    settings = platform.settings
    trainer, x_test = trained.trainer, trained.x_test
    bundle = ModelBundle(
        preprocessor=trained.preprocessor,
        model=trainer,
        inputs={name: prepared.columns[name] for name in trained.preprocessor.input_columns},
        threshold=settings.model.threshold,
        positive_label=prepared.positive,
        negative_label=prepared.negative,
        features=bundle_features(prepared),
    )
    stored = bundle.save(platform.artifacts)
    # the saved model must score exactly as evaluated: reload and compare
    reloaded = ModelBundle.load(platform.artifacts, stored.key, stored.sha256)
    if not np.allclose(score(reloaded.model, x_test), score(trainer, x_test), atol=1e-6):
        raise DecisionLoopError("the saved model does not reproduce its own test scores")
    return platform.metadata.models.register(
        NewModelVersion(
            model_name=settings.name,
            artifact_key=stored.key,
            artifact_sha256=stored.sha256,
            signature=bundle.signature(),
            metrics=trained.metrics,
            params={**trainer.get_params(), "split": prepared.split.describe()},
            gate_passed=report.passed,
            gate_report=report.to_dict(),
            run_id=run.id,
            snapshot_hash=prepared.snapshot.content_hash,
            code_version=run.code_version,
        ),
        actor=platform.actor,
    )


def _metrics(part: str, y: Any, scores: Any, task: str, threshold: float) -> dict[str, float]:
    from decisionloop.evaluation.metrics import binary_metrics, regression_metrics

    if task == "regression":
        return prefixed(part, regression_metrics(y, scores))
    return prefixed(part, binary_metrics(y, scores, threshold=threshold))


def _validation_split(
    y: Any, *, seed: int, stratify: bool = True, size: float = 0.1
) -> tuple[Any, Any]:
    """Hold ``size`` (10%) of the training rows out for early stopping or for scoring tuning
    trials (stratified when possible)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    if not stratify:
        fit, valid = train_test_split(index, test_size=size, random_state=seed)
        return fit, valid
    try:
        fit, valid = train_test_split(index, test_size=size, random_state=seed, stratify=y)
    except ValueError:
        fit, valid = train_test_split(index, test_size=size, random_state=seed)
    return fit, valid


def _ingest_training_data(
    platform: Platform, source: str, project_file: str, progress: ProgressCallback
) -> Prepared:
    """Ingest the training file (or reuse its snapshot when this exact content was ingested),
    refusing it before anything is written if it fails validation or cannot train a model."""
    from decisionloop.data.engine import file_columns
    from decisionloop.data.ingest import ingest_batch
    from decisionloop.data.profile import profile_columns
    from decisionloop.data.sources import FileSource, read_table

    settings = platform.settings
    spec = settings.data
    assert spec is not None
    opened = FileSource(source, s3=settings.s3)
    try:
        batch = next(iter(opened.read()))
        assert batch.file is not None
        names = file_columns(batch.file)
        for key, column in (
            ("data.target", spec.target),
            ("data.entity", spec.entity),
            ("data.timestamp", spec.timestamp),
        ):
            if column is not None and column not in names:
                raise InvalidConfig(
                    f"column {column!r} is not in the data (columns: {', '.join(names[:10])})",
                    file=project_file,
                    key=key,
                    hint="name a column of the data file",
                )
        columns = dict(spec.columns) or profile_columns(read_table(batch.file.local_path))
        target_type: ColumnType = "number" if settings.model.task == "regression" else "string"
        columns.setdefault(spec.target, ColumnSpec(type=target_type, nullable=False))
        service = None
        training_columns = columns
        if spec.features is not None:
            service = refresh_features(platform, spec.features, progress)
            training_columns = with_feature_columns(columns, spec, service)
        prepared = Prepared(columns=training_columns)

        def inspect(table: Any) -> None:
            if service is not None:
                training = platform.features.get_historical_features(
                    table, service=service.name, timestamp=str(spec.timestamp)
                )
                prepared.feature_lineage = training.feature_versions
                table = training.table
                progress(
                    "features",
                    f"joined {len(service.outputs)} features of {service.name} point in time",
                )
            prepare_rows(settings, table, prepared)

        reused = _snapshot_of(platform, batch.origin)
        if reused is not None:
            progress("validate", f"{batch.file.display} was ingested before: reusing its snapshot")
            inspect(platform.data.read_snapshot(reused.id))
            prepared.snapshot = reused
            return prepared
        progress(
            "validate", f"checking {batch.file.display} against {len(columns)} declared columns"
        )
        result = ingest_batch(
            platform,
            settings.name,
            batch,
            columns=columns,
            contract=spec.contract,
            mode="replace",
            strict=True,
            inspect=inspect,
        )
        progress("snapshot", f"stored a content-hashed snapshot ({result.report.summary()})")
        prepared.snapshot = result.snapshot
        return prepared
    finally:
        opened.close()


def _snapshot_of(platform: Platform, origin: str) -> Any:
    if not platform.metadata.ingestion.has_origin(platform.settings.name, origin):
        return None
    for snapshot in platform.metadata.datasets.list_snapshots(platform.settings.name, limit=50):
        if snapshot.source == origin:
            return snapshot
    return None


def log_training(platform: Platform, run_id: str, trainer: object) -> None:
    """The run's learning curve (validation metric per boosting round) and what training
    chose by itself (the early-stopping iteration), in one write each."""
    from decisionloop.training.base import learning_curve

    points = [
        MetricPoint(key, float(value), step)
        for key, values in learning_curve(trainer).items()
        for step, value in enumerate(values)
    ]
    if points:
        platform.metadata.runs.log_metrics(run_id, points, actor=platform.actor)
    best = getattr(trainer, "best_iteration", None)
    if best is not None:
        platform.metadata.runs.log_params(
            run_id, {"best_iteration": int(best)}, actor=platform.actor
        )
