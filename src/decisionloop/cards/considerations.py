"""The considerations section of a model card: limitations computed from the fairness,
over-fitting and drift results, usage notes (namespace, rate limit, the retrain condition
built from the blocking gates), and the drift summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import ModelVersion
    from decisionloop.cards.model_card import GateOutcome
    from decisionloop.evaluation.fairness import FairnessReport
    from decisionloop.platform import Platform
    from decisionloop.registry.bundle import ModelBundle

#: a group is named a limitation when its recall or AUC trails its column's best by this much
RECALL_GAP, AUC_GAP = 0.05, 0.02
#: ... and holds at least this many test rows
MIN_GROUP_ROWS = 30
#: train - test gap of the headline metric named as over-fitting
OVERFIT_GAP = 0.05
DEFAULT_NAMESPACE = "production"


@dataclass(frozen=True)
class DriftSummary:
    share_drifted: float
    dataset_drift: bool
    drifted_columns: tuple[str, ...]
    columns: tuple[dict[str, Any], ...]  # column, method, statistic, drifted


@dataclass(frozen=True)
class UsageNotes:
    namespace: str
    rate_limit: str
    retrain_conditions: tuple[str, ...]
    notes: tuple[str, ...]  # anything else a user must know, e.g. a failed gate


@dataclass(frozen=True)
class Considerations:
    limitations: tuple[str, ...]
    usage: UsageNotes
    drift: DriftSummary | None


def metric_label(metric: str) -> str:
    """``test_auc`` -> ``test AUC``; ``train_log_loss`` -> ``train log loss``."""
    upper = {"auc": "AUC", "ece": "ECE", "rmse": "RMSE", "mae": "MAE", "r2": "R2", "f1": "F1"}
    part, _, bare = metric.partition("_")
    if part not in ("train", "test"):
        part, bare = "", metric
    words = upper.get(bare, bare.replace("_", " "))
    return f"{part} {words}".strip()


def _number(value: float) -> str:
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def retrain_conditions(report: Mapping[str, Any]) -> tuple[str, ...]:
    """One "retrain if ..." per blocking gate, the opposite of what it requires."""
    conditions = []
    for result in report.get("results") or []:
        if result.get("severity", "block") != "block" or result.get("kind") == "champion":
            continue
        label = metric_label(str(result.get("metric", "")))
        low, high = result.get("min"), result.get("max")
        if low is not None:
            conditions.append(f"retrain if {label} < {_number(float(low))}")
        if high is not None:
            conditions.append(f"retrain if {label} > {_number(float(high))}")
        if low is None and high is None and result.get("bound"):
            conditions.append(f"retrain if {label} fails {result['bound']}")
    return tuple(conditions)


def usage_notes(
    platform: Platform,
    version: ModelVersion,
    model_tags: Mapping[str, str],
    gates: tuple[GateOutcome, ...],
) -> UsageNotes:
    serving = platform.settings.serving

    def setting(key: str) -> Any:
        return version.tags.get(key) or model_tags.get(key) or getattr(serving, key, None)

    namespace = str(setting("namespace") or DEFAULT_NAMESPACE)
    limit = setting("rate_limit")
    rate = (
        str(limit)
        if limit
        else f"not set (at most {serving.max_rows_per_request:,} rows and "
        f"{serving.max_body_bytes / 2**20:g} MiB per request)"
    )
    conditions = retrain_conditions(version.gate_report or {})
    notes = []
    if not version.gate_passed:
        notes.append("This version failed a blocking gate: it can never be @champion.")
    return UsageNotes(namespace, rate, conditions, tuple(notes))


def drift_summary(drift: Mapping[str, Any]) -> DriftSummary:
    columns = tuple(
        {
            "column": c.get("column"),
            "method": c.get("method"),
            "statistic": c.get("statistic"),
            "psi": c.get("psi"),
            "drifted": bool(c.get("drifted")),
        }
        for c in drift.get("columns") or []
    )
    return DriftSummary(
        share_drifted=float(drift.get("share_drifted") or 0.0),
        dataset_drift=bool(drift.get("dataset_drift")),
        drifted_columns=tuple(str(c) for c in drift.get("drifted_columns") or []),
        columns=columns,
    )


def _outcome(recorded: Mapping[str, Any], bundle: ModelBundle) -> str:
    target, positive = recorded.get("target") or "the positive class", bundle.positive_label
    if not positive or positive.lower() in ("yes", "true", "1"):
        return str(target)
    return f"{target} = {positive}"


def limitations(
    version: ModelVersion,
    recorded: Mapping[str, Any],
    fairness: FairnessReport | None,
    drift: Mapping[str, Any] | None,
    bundle: ModelBundle,
) -> tuple[str, ...]:
    """Computed: groups that under-perform, adverse impact, over-fitting, drift."""
    from decisionloop.evaluation.fairness import worst_groups

    found: list[str] = []
    if fairness is not None:
        outcome = _outcome(recorded, bundle)
        for worst in worst_groups(fairness, "true_positive_rate", k=3, min_count=MIN_GROUP_ROWS):
            if worst.gap >= RECALL_GAP:
                found.append(
                    f"May under-predict {outcome} for {worst.column} = {worst.group}: "
                    f"recall {worst.value:.2f} against {worst.best:.2f} for the best group "
                    f"({worst.count:,} test rows)."
                )
        for worst in worst_groups(fairness, "auc", k=3, min_count=MIN_GROUP_ROWS):
            if worst.gap >= AUC_GAP:
                found.append(
                    f"Ranks {worst.column} = {worst.group} less well: AUC {worst.value:.2f} "
                    f"against {worst.best:.2f} for the best group ({worst.count:,} test rows)."
                )
        for column in fairness.columns:
            if column.adverse_impact_groups:
                found.append(
                    f"Adverse impact (four-fifths rule) on {column.column} = "
                    + ", ".join(column.adverse_impact_groups)
                    + "."
                )
    for name in ("auc", "r2"):
        train, test = version.metrics.get(f"train_{name}"), version.metrics.get(f"test_{name}")
        if train is not None and test is not None and train - test >= OVERFIT_GAP:
            found.append(
                f"Fits its training rows better than new ones: {metric_label(name)} "
                f"{train:.2f} (train) against {test:.2f} (test)."
            )
    if drift is None:
        found.append(
            "Sensitive to sudden shifts in its input data (concept drift): drift not measured "
            "yet for this version; monitor it."
        )
    elif drift.get("drifted_columns"):
        drifted = [str(c) for c in drift.get("drifted_columns") or []]
        found.append(
            f"Input drift measured on {len(drifted)} column(s) "
            f"({float(drift.get('share_drifted') or 0.0):.0%} of those checked): "
            + ", ".join(drifted[:10])
            + "; its performance there is unproven."
        )
    else:
        against = drift.get("reference")
        found.append(
            "Sensitive to sudden shifts in its input data (concept drift): "
            + (f"no input drift against {against}" if against else "no input drift measured")
            + " yet; monitor it."
        )
    return tuple(found)
