"""What the loop learns about a candidate besides its metrics: fairness on the test rows per
sensitive column, and drift of the new data against a reference. Both feed the gates, are
stored with the version (a JSON artifact named by tags, sha256-verified) and fill its card."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from decisionloop.errors import IntegrityError, NotFound

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import ModelVersion, Run
    from decisionloop.evaluation.drift_profile import ReferenceProfile
    from decisionloop.pipelines.loop import Prepared, Trained
    from decisionloop.platform import Platform

#: version tags naming the stored reports (``decisionloop.*`` tags are the system's own, as
#: MLflow's ``mlflow.*`` tags are)
REPORTS_TAG = "decisionloop.reports.artifact"
REPORTS_SHA256_TAG = "decisionloop.reports.sha256"
#: version tags naming the exact reference profile of the data a version learned from, kept
#: so that drift against @champion reads it rather than @champion's snapshot each run
PROFILE_TAG = "decisionloop.drift.profile.artifact"
PROFILE_SHA256_TAG = "decisionloop.drift.profile.sha256"
PROFILE_KEY_TAG = "decisionloop.drift.profile.key"  # what it was built from (_profile_key)


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


def drift_reference(
    platform: Platform, prepared: Prepared, features: Mapping[str, Any]
) -> tuple[str, Any]:
    """What the new data is compared with: the data the @champion learned from when it came
    from another snapshot (did the data move since the model in production was trained?) as
    its exact :class:`ReferenceProfile` (see :func:`reference_profile`), else the candidate's
    own training rows (a frame) against its test rows (a time split shows drift over time
    there)."""
    champion = _champion_elsewhere(platform, prepared)
    if champion is not None:
        version, run = champion
        columns = {name: spec for name, spec in features.items() if name in prepared.frame}
        label = f"@champion's training snapshot {str(run.snapshot_id)[:12]}"
        return label, reference_profile(platform, version, run, columns)
    train_frame = prepared.frame.iloc[prepared.split.train_index]
    return "the training rows (test rows compared)", train_frame


def reference_profile(
    platform: Platform, version: ModelVersion, run: Run, columns: Mapping[str, Any]
) -> ReferenceProfile:
    """The exact profile of the rows ``run`` trained on (``version``'s data), over those of
    ``columns`` they hold: read back when ``version`` names one of the same snapshot content,
    feature lineage and columns (three ``decisionloop.drift.profile.*`` tags, sha256-verified),
    else profiled from the snapshot, stored in the artifact store and named on ``version`` so
    that the next run reads it instead of the snapshot."""
    from decisionloop.evaluation.drift import exact_profile
    from decisionloop.evaluation.drift_profile import ReferenceProfile, column_kind

    kinds = {name: column_kind(spec) for name, spec in columns.items()}
    key = _profile_key(version, run, kinds)
    tags = version.tags
    if tags.get(PROFILE_KEY_TAG) == key and tags.get(PROFILE_TAG):
        sha256 = tags.get(PROFILE_SHA256_TAG)
        if not sha256:
            raise IntegrityError(f"the reference profile {tags[PROFILE_TAG]!r} has no sha256")
        try:
            data = platform.artifacts.get(tags[PROFILE_TAG], sha256=sha256)
        except NotFound:
            pass  # the artifact was removed: profile again
        else:
            return ReferenceProfile.from_bytes(data)
    from decisionloop.pipelines.training_data import training_table

    assert run.snapshot_id is not None
    table = training_table(platform, run.snapshot_id, run.feature_versions)
    present = [name for name in kinds if name in table.column_names]
    frame = table.select(present).to_pandas()
    profile = exact_profile(frame, {name: kinds[name] for name in present})
    stored = platform.artifacts.put(profile.to_bytes())
    ref = f"{version.model_name}/{version.version}"
    platform.set_tag(ref, PROFILE_TAG, stored.key)
    platform.set_tag(ref, PROFILE_SHA256_TAG, stored.sha256)
    platform.set_tag(ref, PROFILE_KEY_TAG, key)
    return profile


def _champion_elsewhere(platform: Platform, prepared: Prepared) -> tuple[ModelVersion, Run] | None:
    """@champion and its run, when it learned from another snapshot than the candidate."""
    from decisionloop.pipelines.loop import CHAMPION

    try:
        champion = platform.get_version(f"{platform.settings.name}@{CHAMPION}")
    except NotFound:
        return None
    run = platform.runs.get(champion.run_id) if champion.run_id else None
    current = prepared.snapshot
    if run is None or not run.snapshot_id or current is None or run.snapshot_id == current.id:
        return None
    return champion, run


def _profile_key(version: ModelVersion, run: Run, kinds: Mapping[str, str]) -> str:
    """What a stored profile was built from: the snapshot's content, the feature lineage and
    the columns with their kinds (and the profile format)."""
    from decisionloop.evaluation.drift_profile import PROFILE_FORMAT

    described = {
        "format": PROFILE_FORMAT,
        "snapshot": version.snapshot_hash or run.snapshot_id,
        "features": run.feature_versions,
        "columns": dict(sorted(kinds.items())),
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _drift(
    platform: Platform, prepared: Prepared, features: Mapping[str, Any]
) -> dict[str, Any] | None:
    from decisionloop.evaluation.drift import drift_report
    from decisionloop.evaluation.drift_profile import ReferenceProfile

    label, reference = drift_reference(platform, prepared, features)
    if isinstance(reference, ReferenceProfile):
        current = prepared.frame
        reference_columns, reference_rows = reference.columns, reference.rows
    else:
        current = prepared.frame.iloc[prepared.split.test_index]
        reference_columns, reference_rows = reference.columns, len(reference)
    columns = {
        name: spec
        for name, spec in features.items()
        if name in reference_columns and name in current.columns
    }
    if not columns or len(current) == 0 or reference_rows == 0:
        return None
    if not isinstance(reference, ReferenceProfile):
        reference = reference[list(columns)]
    report = drift_report(reference, current[list(columns)], columns)
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
