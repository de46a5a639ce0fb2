"""How DecisionLoop records become MLflow REST payloads: params, metric points, tags, batches.

Pure functions, no I/O; the exporter (``decisionloop.export.mlflow``) sends what they build.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Conflict

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import MetricPoint, ModelVersion, Run

#: MLflow's limits per runs/log-batch call and per tag value
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_TAG_VALUE = 8000
#: the tag that maps an MLflow run to its DecisionLoop run
RUN_TAG = "decisionloop.run_id"
#: the tag that maps an MLflow model version to its DecisionLoop version number
VERSION_TAG = "decisionloop.version"


def run_name(run: Run) -> str:
    return f"{run.model_name}-{run.id[:8]}"


def millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def param_text(value: Any) -> str:
    """A param value as MLflow keeps it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json_text(value)


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Params as MLflow shows and compares them: nested mappings become dotted keys
    (``split.seed``), values become text."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = param_text(value)
    return flat


def new_params(run: Run, existing: Mapping[str, str]) -> dict[str, str]:
    wanted = flat_params(run.params)
    changed = sorted(k for k, v in wanted.items() if k in existing and existing[k] != v)
    if changed:
        raise Conflict(
            f"the MLflow run of {run.id} has other values for params {changed}",
            hint="MLflow params are set once: delete that MLflow run, then export again",
        )
    return {k: v for k, v in wanted.items() if k not in existing}


def metric_points(run: Run, history: Sequence[MetricPoint]) -> list[dict[str, Any]]:
    """Every step of every metric; a summary metric without history is logged at step 0."""
    fallback = run.ended_at or run.started_at
    points = [
        {
            "key": point.key,
            "value": float(point.value),
            "timestamp": millis(point.timestamp or fallback),
            "step": int(point.step),
        }
        for point in history
    ]
    in_history = {point.key for point in history}
    points.extend(
        {"key": key, "value": float(value), "timestamp": millis(fallback), "step": 0}
        for key, value in sorted(run.metrics.items())
        if key not in in_history
    )
    return points


def long_tag(key: str, text: str) -> dict[str, str]:
    """A value over MLflow's tag limit is split: ``key``, ``key.2``, ``key.3``..."""
    parts = [text[i : i + MAX_TAG_VALUE] for i in range(0, len(text), MAX_TAG_VALUE)] or [""]
    return {key if n == 1 else f"{key}.{n}": part for n, part in enumerate(parts, start=1)}


def pairs(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def log_batches(
    params: Mapping[str, str], tags: Mapping[str, str], metrics: Sequence[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """runs/log-batch bodies within MLflow's limits (100 params, 100 tags, 1000 metrics and
    1000 entities per call)."""
    param_items, tag_items, metric_items = list(params.items()), list(tags.items()), list(metrics)
    while param_items or tag_items or metric_items:
        batch_params = param_items[:MAX_PARAMS_PER_BATCH]
        batch_tags = tag_items[:MAX_TAGS_PER_BATCH]
        room = min(
            MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(batch_params) - len(batch_tags)
        )
        batch_metrics = metric_items[:room]
        del param_items[: len(batch_params)], tag_items[: len(batch_tags)]
        del metric_items[: len(batch_metrics)]
        yield {
            "params": [{"key": k, "value": v} for k, v in batch_params],
            "tags": [{"key": k, "value": v} for k, v in batch_tags],
            "metrics": batch_metrics,
        }


def run_tags(run: Run, parent_mlflow_run_id: str | None) -> dict[str, str]:
    """The tags of a run's MLflow run: its own, then lineage, environment and the mapping."""
    tags: dict[str, str] = {str(k): str(v) for k, v in run.tags.items()}
    tags[RUN_TAG] = run.id
    tags["decisionloop.model"] = run.model_name
    if run.snapshot_id:
        tags["decisionloop.snapshot_id"] = run.snapshot_id
    if run.code_version:
        tags["decisionloop.code_version"] = run.code_version
        tags["mlflow.source.git.commit"] = run.code_version.removesuffix("-dirty")
    if run.error:
        tags["decisionloop.error"] = run.error
    if run.feature_versions:
        tags["decisionloop.feature_versions"] = json_text(run.feature_versions)
    if run.parent_run_id:
        tags["decisionloop.parent_run_id"] = run.parent_run_id
        if parent_mlflow_run_id:
            tags["mlflow.parentRunId"] = parent_mlflow_run_id
    environment = run.environment or {}
    for key in ("python", "lock_hash", "lock_file"):
        if environment.get(key):
            tags[f"decisionloop.environment.{key}"] = str(environment[key])
    packages = environment.get("packages") or {}
    if packages:
        lines = "\n".join(f"{name}=={version}" for name, version in sorted(packages.items()))
        tags.update(long_tag("decisionloop.environment.packages", lines))
    return {key: value for key, value in tags.items() if value != ""}


def version_tags(version: ModelVersion, artifacts_url: str) -> dict[str, str]:
    """The tags of a version's MLflow version: its own, then metrics, lineage and the mapping."""
    tags: dict[str, str] = {str(k): str(v) for k, v in version.tags.items()}
    tags.update(
        {
            VERSION_TAG: str(version.version),
            "decisionloop.model": version.model_name,
            "decisionloop.status": version.status,
            "decisionloop.gate_passed": "true" if version.gate_passed else "false",
            "decisionloop.artifact_url": artifacts_url,
            "decisionloop.artifact_key": version.artifact_key,
            "decisionloop.artifact_sha256": version.artifact_sha256,
            "decisionloop.created_at": version.created_at.isoformat(),
        }
    )
    for key, value in (
        ("decisionloop.run_id", version.run_id),
        ("decisionloop.snapshot_hash", version.snapshot_hash),
        ("decisionloop.code_version", version.code_version),
    ):
        if value:
            tags[key] = value
    if version.signature:
        tags["decisionloop.signature"] = json_text(version.signature)
    for key, number in sorted(version.metrics.items()):
        tags[f"decisionloop.metric.{key}"] = repr(float(number))
    return tags
