"""What the loop learns about a candidate besides its metrics: fairness on the test rows per
sensitive column, and drift of the new data against a reference. Both feed the gates, are
stored with the version (a JSON artifact named by tags, sha256-verified) and fill its card."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from decisionloop.errors import IntegrityError, NotFound

if TYPE_CHECKING:
    from decisionloop.pipelines.loop import Prepared, Trained
    from decisionloop.platform import Platform

#: version tags naming the stored reports (``decisionloop.*`` tags are the system's own, as
#: MLflow's ``mlflow.*`` tags are)
REPORTS_TAG = "decisionloop.reports.artifact"
REPORTS_SHA256_TAG = "decisionloop.reports.sha256"


def assess(
    platform: Platform, prepared: Prepared, trained: Trained, features: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{"fairness": ..., "drift": ...}`` as the reports' ``to_dict()``, each present when it
    could be computed: fairness for a classifier with declared sensitive columns present in the
    test rows; drift always (see :func:`drift_reference` for what it is measured against)."""
    reports: dict[str, dict[str, Any]] = {}
    settings = platform.settings
    test_frame = prepared.frame.iloc[prepared.split.test_index]
    sensitive = (
        [c for c in settings.data.sensitive if c in test_frame.columns] if settings.data else []
    )
    if settings.model.task == "classification" and sensitive:
        from decisionloop.evaluation.fairness import fairness_report

        report = fairness_report(
            trained.y_test,
            trained.test_scores,
            settings.model.threshold,
            {c: test_frame[c].to_numpy() for c in sensitive},
            specs={c: prepared.columns[c] for c in sensitive if c in prepared.columns},
        )
        reports["fairness"] = report.to_dict()
    drift = _drift(platform, prepared, features)
    if drift is not None:
        reports["drift"] = drift
    return reports


def drift_reference(platform: Platform, prepared: Prepared) -> tuple[str, Any]:
    """What the new data is compared with: the data the @champion learned from when it came
    from another snapshot (did the data move since the model in production was trained?),
    else the candidate's own training rows against its test rows (a time split shows drift
    over time there)."""
    from decisionloop.pipelines.loop import CHAMPION

    settings = platform.settings
    try:
        champion = platform.get_version(f"{settings.name}@{CHAMPION}")
    except NotFound:
        champion = None
    run = platform.runs.get(champion.run_id) if champion and champion.run_id else None
    current = prepared.snapshot
    if (
        run is not None
        and run.snapshot_id
        and current is not None
        and run.snapshot_id != current.id
    ):
        from decisionloop.pipelines.training_data import training_table

        table = training_table(platform, run.snapshot_id, run.feature_versions)
        return f"@champion's training snapshot {run.snapshot_id[:12]}", table.to_pandas()
    train_frame = prepared.frame.iloc[prepared.split.train_index]
    return "the training rows (test rows compared)", train_frame


def _drift(
    platform: Platform, prepared: Prepared, features: Mapping[str, Any]
) -> dict[str, Any] | None:
    from decisionloop.evaluation.drift import drift_report

    label, reference = drift_reference(platform, prepared)
    current = (
        prepared.frame
        if label.startswith("@champion")
        else prepared.frame.iloc[prepared.split.test_index]
    )
    columns = {
        name: spec
        for name, spec in features.items()
        if name in reference.columns and name in current.columns
    }
    if not columns or len(current) == 0 or len(reference) == 0:
        return None
    report = drift_report(reference[list(columns)], current[list(columns)], columns)
    return {**report.to_dict(), "reference": label}


def store_reports(
    platform: Platform, name: str, version: int, reports: Mapping[str, Any]
) -> str | None:
    """Keep the reports with the version; returns the artifact key (None when empty)."""
    if not reports:
        return None
    data = json.dumps(reports, sort_keys=True, default=_json_default).encode()
    stored = platform.artifacts.put(data)
    ref = f"{name}/{version}"
    platform.set_tag(ref, REPORTS_TAG, stored.key)
    platform.set_tag(ref, REPORTS_SHA256_TAG, stored.sha256)
    return stored.key


def load_reports(platform: Platform, tags: Mapping[str, str]) -> dict[str, Any]:
    """The reports stored with a version (from its tags), verified; empty when none."""
    key, sha256 = tags.get(REPORTS_TAG), tags.get(REPORTS_SHA256_TAG)
    if not key:
        return {}
    if not sha256:
        raise IntegrityError(f"the reports artifact {key!r} has no recorded sha256")
    loaded = json.loads(platform.artifacts.get(key, sha256=sha256))
    return loaded if isinstance(loaded, dict) else {}


def _json_default(value: object) -> object:
    """numpy scalars in report dicts as plain numbers; anything else as text."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else str(value)
