"""A model card for one registered version, every field computed from what the platform
recorded: the version, its run, its data snapshot, its bundle, its gates and its test rows.

Sections follow the Model Card Toolkit schema (``model_details``, ``model_parameters``,
``quantitative_analysis``, ``considerations``) plus ours: ``gates`` and ``business_impact``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from decisionloop.cards.considerations import (
    Considerations,
    drift_summary,
    limitations,
    usage_notes,
)
from decisionloop.cards.importance import feature_importance

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import ModelVersion, Run, Snapshot
    from decisionloop.cards.evaluation import Evaluation
    from decisionloop.evaluation.fairness import FairnessReport
    from decisionloop.platform import Platform
    from decisionloop.refs import ModelRef
    from decisionloop.registry.bundle import ModelBundle

__all__ = ["ModelCard", "build_card"]

ALGORITHMS = {
    "xgboost": "XGBoost (tree-based gradient boosting)",
    "lightgbm": "LightGBM (tree-based gradient boosting)",
    "gradient_boosting": "Gradient boosting (scikit-learn, tree-based)",
    "random_forest": "Random forest (tree ensemble)",
    "logistic_regression": "Logistic regression (linear)",
    "linear_regression": "Linear regression (ridge, linear)",
}


@dataclass(frozen=True)
class Lineage:
    run_id: str | None
    snapshot_id: str | None
    snapshot_hash: str | None
    snapshot_rows: int | None
    snapshot_created: str | None
    data_start: str | None  # the earliest and latest value of the timestamp column, if any
    data_end: str | None
    timestamp_column: str | None
    code_version: str | None
    environment_lock_hash: str | None
    python: str | None


@dataclass(frozen=True)
class ModelDetails:
    name: str
    version_id: str  # e.g. churn/3
    version: int
    algorithm: str
    trainer: str
    description: str
    owners: tuple[str, ...]
    created: str
    status: str
    aliases: tuple[str, ...]
    lineage: Lineage


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    columns: tuple[str, ...]
    features: int  # model features (a string column is one feature per category)


@dataclass(frozen=True)
class ModelParameters:
    task: str
    target: str | None
    positive: str | None
    entity: str | None
    feature_count: int
    input_columns: int
    feature_groups: tuple[FeatureGroup, ...]
    feature_names: tuple[str, ...]
    training_rows: int | None
    test_rows: int | None
    split: str | None
    threshold: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class PerformanceMetric:
    name: str
    train: float | None
    test: float | None
    interval: tuple[float, float] | None = None  # the test value's confidence interval


@dataclass(frozen=True)
class ColumnParity:
    column: str
    statistical_parity_ratio: float | None
    statistical_parity_difference: float | None
    disparate_impact: float | None
    four_fifths_rule: str | None
    groups: tuple[dict[str, Any], ...]  # group, count, selection_rate, true_positive_rate, auc


@dataclass(frozen=True)
class QuantitativeAnalysis:
    metrics: tuple[PerformanceMetric, ...]
    evaluation_rows: int | None
    evaluation_source: str | None  # stored, recomputed, or None when no test rows are known
    fairness: tuple[ColumnParity, ...]
    #: the lowest statistical parity ratio over the sensitive columns, and its column
    statistical_parity: float | None
    statistical_parity_column: str | None
    expected_calibration_error: float | None
    calibration_curve: dict[str, list[float]] | None
    roc_curve: dict[str, list[float]] | None
    feature_importance: tuple[tuple[str, float], ...]
    importance_type: str | None


@dataclass(frozen=True)
class GateOutcome:
    kind: str
    metric: str
    value: float | None
    bound: str
    severity: str
    passed: bool
    why: str


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card shows; :meth:`to_dict` is the JSON form."""

    model_details: ModelDetails
    model_parameters: ModelParameters
    quantitative_analysis: QuantitativeAnalysis
    considerations: Considerations
    gates: tuple[GateOutcome, ...]
    gates_passed: bool
    business_impact: str | None = None
    schema: str = field(default="decisionloop.model_card/1")

    def metric(self, name: str) -> PerformanceMetric | None:
        for metric in self.quantitative_analysis.metrics:
            if metric.name == name:
                return metric
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data in the Model Card Toolkit's section names (NaN becomes None)."""
        result: dict[str, Any] = _json_safe(asdict(self))
        return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


# -- building ---------------------------------------------------------------------------------


def build_card(
    platform: Platform,
    ref: ModelRef | str,
    *,
    drift: Mapping[str, Any] | None = None,
    business_impact: str | None = None,
) -> ModelCard:
    """The card of a version. ``drift`` is a drift report's ``to_dict()``; by default the one
    stored with the version when it was trained, and without either the card says drift was
    not measured. ``business_impact`` defaults to the version's (or model's)
    ``business_impact`` tag."""
    from decisionloop.cards.evaluation import evaluation_for

    version, bundle = platform.load_model(ref)
    run = platform.runs.get(version.run_id) if version.run_id else None
    recorded: dict[str, Any] = dict(run.params) if run else {}
    snapshot = (
        platform.metadata.datasets.get_snapshot(run.snapshot_id)
        if run is not None and run.snapshot_id
        else None
    )
    if drift is None:
        from decisionloop.pipelines.assess import load_reports

        drift = load_reports(platform, version.tags).get("drift")
    evaluation = evaluation_for(platform, version) if bundle.task == "classification" else None
    model_tags = _model_tags(platform, version.model_name)
    fairness = _fairness(evaluation, bundle) if evaluation is not None else None
    details = _details(platform, version, bundle, run, snapshot, recorded, model_tags)
    parameters = _parameters(platform, version, bundle, recorded)
    analysis = _analysis(version, bundle, evaluation, fairness)
    gates = _gates(version.gate_report or {})
    considerations = Considerations(
        limitations=limitations(version, recorded, fairness, drift, bundle),
        usage=usage_notes(platform, version, model_tags, gates),
        drift=drift_summary(drift) if drift is not None else None,
    )
    impact = (
        business_impact
        or version.tags.get("business_impact")
        or model_tags.get("business_impact")
        or None
    )
    return ModelCard(
        model_details=details,
        model_parameters=parameters,
        quantitative_analysis=analysis,
        considerations=considerations,
        gates=gates,
        gates_passed=bool(version.gate_passed),
        business_impact=impact,
    )


def _model_tags(platform: Platform, name: str) -> dict[str, str]:
    for model in platform.search_models(prefix=name):
        if model.name == name:
            return dict(model.tags)
    return {}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _details(
    platform: Platform,
    version: ModelVersion,
    bundle: ModelBundle,
    run: Run | None,
    snapshot: Snapshot | None,
    recorded: Mapping[str, Any],
    model_tags: Mapping[str, str],
) -> ModelDetails:
    trainer = str(recorded.get("trainer") or bundle.flavor)
    start, end = _data_period(platform, run, recorded.get("timestamp"))
    environment = (run.environment if run else None) or {}
    owners = version.tags.get("owner") or model_tags.get("owner") or model_tags.get("owners")
    lineage = Lineage(
        run_id=version.run_id,
        snapshot_id=run.snapshot_id if run else None,
        snapshot_hash=version.snapshot_hash,
        snapshot_rows=snapshot.row_count if snapshot else None,
        snapshot_created=_iso(snapshot.created_at) if snapshot else None,
        data_start=start,
        data_end=end,
        timestamp_column=recorded.get("timestamp"),
        code_version=version.code_version,
        environment_lock_hash=environment.get("lock_hash"),
        python=environment.get("python"),
    )
    return ModelDetails(
        name=version.model_name,
        version_id=f"{version.model_name}/{version.version}",
        version=version.version,
        algorithm=ALGORITHMS.get(trainer, trainer),
        trainer=trainer,
        description=version.description or platform.settings.description,
        owners=tuple(o.strip() for o in (owners or "").split(",") if o.strip()),
        created=_iso(version.created_at) or "",
        status=version.status,
        aliases=tuple(version.aliases),
        lineage=lineage,
    )


def _data_period(
    platform: Platform, run: Run | None, timestamp: str | None
) -> tuple[str | None, str | None]:
    """The first and last event time of the snapshot the run trained on."""
    if run is None or run.snapshot_id is None or not timestamp:
        return None, None
    import pandas as pd

    table = platform.data.read_snapshot(run.snapshot_id)
    if timestamp not in table.column_names:
        return None, None
    times = pd.to_datetime(table.column(timestamp).to_pandas(), errors="coerce", utc=True)
    times = times.dropna()
    if times.empty:
        return None, None
    return times.min().isoformat(), times.max().isoformat()


def _parameters(
    platform: Platform, version: ModelVersion, bundle: ModelBundle, recorded: Mapping[str, Any]
) -> ModelParameters:
    split = version.params.get("split") or recorded.get("split") or {}
    sensitive = set(platform.settings.data.sensitive) if platform.settings.data else set()
    preprocessor = bundle.preprocessor
    groups: list[FeatureGroup] = []
    numeric = [f.name for f in preprocessor.numeric if f.name not in sensitive]
    categorical = [f for f in preprocessor.categorical if f.name not in sensitive]
    chosen = [f.name for f in preprocessor.numeric if f.name in sensitive]
    chosen += [f.name for f in preprocessor.categorical if f.name in sensitive]
    if numeric:
        groups.append(FeatureGroup("numeric", tuple(numeric), len(numeric)))
    if categorical:
        groups.append(
            FeatureGroup(
                "categorical (one-hot)",
                tuple(f.name for f in categorical),
                sum(len(f.categories) for f in categorical),
            )
        )
    if chosen:
        width = {f.name: len(f.categories) for f in preprocessor.categorical}
        groups.append(
            FeatureGroup("sensitive", tuple(chosen), sum(width.get(c, 1) for c in chosen))
        )
    params = {k: v for k, v in version.params.items() if k != "split"}
    return ModelParameters(
        task=bundle.task,
        target=recorded.get("target"),
        positive=bundle.positive_label or None,
        entity=recorded.get("entity"),
        feature_count=len(preprocessor.feature_names),
        input_columns=len(preprocessor.input_columns),
        feature_groups=tuple(groups),
        feature_names=tuple(preprocessor.feature_names),
        training_rows=split.get("train_rows"),
        test_rows=split.get("test_rows"),
        split=split.get("strategy"),
        threshold=bundle.threshold if bundle.task == "classification" else None,
        params=params,
    )


def _fairness(evaluation: Evaluation, bundle: ModelBundle) -> FairnessReport | None:
    from decisionloop.evaluation.fairness import fairness_report

    if not evaluation.groups:
        return None
    return fairness_report(
        evaluation.y_true,
        evaluation.scores,
        bundle.threshold,
        evaluation.groups,
        specs={name: spec for name, spec in bundle.inputs.items() if name in evaluation.groups},
    )


def _analysis(
    version: ModelVersion,
    bundle: ModelBundle,
    evaluation: Evaluation | None,
    fairness: FairnessReport | None,
) -> QuantitativeAnalysis:
    metrics = []
    names = sorted(
        {
            key.split("_", 1)[1]
            for key in version.metrics
            if key.startswith(("train_", "test_")) and not key.endswith(("_low", "_high"))
        }
    )
    for name in names:
        low = version.metrics.get(f"test_{name}_ci_low")
        high = version.metrics.get(f"test_{name}_ci_high")
        metrics.append(
            PerformanceMetric(
                name=name,
                train=version.metrics.get(f"train_{name}"),
                test=version.metrics.get(f"test_{name}"),
                interval=(low, high) if low is not None and high is not None else None,
            )
        )
    parity = _parity(fairness)
    defined = [c for c in parity if c.statistical_parity_ratio is not None]
    worst = min(defined, key=lambda c: c.statistical_parity_ratio or 0.0) if defined else None
    ece, curve, roc = None, None, None
    if evaluation is not None and evaluation.rows and len(set(evaluation.y_true.tolist())) == 2:
        from decisionloop.evaluation.calibration import (
            expected_calibration_error,
            reliability_curve,
        )

        ece = expected_calibration_error(evaluation.y_true, evaluation.scores)
        curve = reliability_curve(evaluation.y_true, evaluation.scores).to_dict()
        roc = _roc(evaluation)
    importance, kind = feature_importance(bundle)
    return QuantitativeAnalysis(
        metrics=tuple(metrics),
        evaluation_rows=evaluation.rows if evaluation is not None else None,
        evaluation_source=evaluation.source if evaluation is not None else None,
        fairness=parity,
        statistical_parity=worst.statistical_parity_ratio if worst else None,
        statistical_parity_column=worst.column if worst else None,
        expected_calibration_error=ece,
        calibration_curve=curve,
        roc_curve=roc,
        feature_importance=tuple(importance),
        importance_type=kind,
    )


def _roc(evaluation: Evaluation, points: int = 200) -> dict[str, list[float]]:
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(evaluation.y_true, evaluation.scores)
    if len(fpr) > points:  # keep the card small: an even thinning, ends included
        keep = np.unique(np.linspace(0, len(fpr) - 1, points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}


def _parity(fairness: FairnessReport | None) -> tuple[ColumnParity, ...]:
    if fairness is None:
        return ()
    keys = ("group", "count", "selection_rate", "true_positive_rate", "auc", "impact_ratio")
    return tuple(
        ColumnParity(
            column=column.column,
            statistical_parity_ratio=column.statistical_parity_ratio,
            statistical_parity_difference=column.statistical_parity_difference,
            disparate_impact=column.disparate_impact,
            four_fifths_rule=column.four_fifths_rule,
            groups=tuple({key: getattr(g, key) for key in keys} for g in column.groups),
        )
        for column in fairness.columns
    )


def _gates(report: Mapping[str, Any]) -> tuple[GateOutcome, ...]:
    return tuple(
        GateOutcome(
            kind=str(result.get("kind", "threshold")),
            metric=str(result.get("metric", "")),
            value=result.get("value"),
            bound=str(result.get("bound", "")),
            severity=str(result.get("severity", "block")),
            passed=bool(result.get("passed")),
            why=str(result.get("why", "")),
        )
        for result in report.get("results") or []
    )


# -- considerations ---------------------------------------------------------------------------
