"""The loop's feature-service steps: refresh the feature views' data and definitions before
training, the training columns a service gives, and what a bundle records to serve by id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from decisionloop.config import PROJECT_FILE, ColumnSpec, DataSpec
from decisionloop.errors import InvalidConfig

if TYPE_CHECKING:
    from decisionloop.pipelines.prepare import Prepared
    from decisionloop.platform import Platform, ProgressCallback


def refresh_features(platform: Platform, service: str, progress: ProgressCallback) -> Any:
    """Ingest the feature views' declared sources (unchanged files are skipped), apply the
    definitions, and return the resolved service."""
    features = platform.features
    plan = features.repo.service(service)
    settings = platform.settings
    for source in dict.fromkeys(view.source for view, _ in plan.views):
        if source == settings.name or source not in settings.datasets:
            continue
        for result in platform.dataset(source).ingest(strict=True):
            progress("features", f"data set {source}: {result.report.summary()}")
    changes = features.apply().pending
    if changes:
        progress(
            "features",
            "applied "
            + ", ".join(f"{c.action} {c.kind.replace('_', ' ')} {c.name}" for c in changes),
        )
    online = [view.name for view, _ in plan.views if view.online]
    for view in features.materialize(online) if online else []:
        progress(
            "features",
            f"materialized {view.view} ({view.mode}): {view.rows_written} of "
            f"{view.entities} entities written to the online store",
        )
    return plan


def with_feature_columns(
    columns: dict[str, ColumnSpec], spec: DataSpec, service: Any
) -> dict[str, ColumnSpec]:
    """The training columns with a feature service: the label data's key, time and target,
    then the service's features (the label data's other columns are not model inputs)."""
    if spec.entity is None or spec.timestamp is None:
        raise InvalidConfig(
            "a feature service needs `data.entity` and `data.timestamp`",
            file=PROJECT_FILE,
            key="data.features",
            hint="name the label rows' entity key and the time each label was observed",
        )
    kept = {
        name: column
        for name, column in columns.items()
        if name in (spec.entity, spec.timestamp, spec.target)
    }
    for name, dtype in service.outputs.items():
        kept[name] = ColumnSpec(type=dtype)
    return kept


def bundle_features(prepared: Prepared) -> dict[str, Any] | None:
    """What serving needs to look a model's features up by entity id."""
    lineage = prepared.feature_lineage
    if not lineage or not lineage.get("service"):
        return None
    join_keys = list(dict.fromkeys(view["join_key"] for view in lineage["views"].values()))
    return {
        "service": lineage["service"]["name"],
        "version": lineage["service"]["version"],
        "join_keys": join_keys,
    }
