"""The held-out rows a model card is drawn from: labels, scores and sensitive groups.

The loop stores them once per registered version (:func:`save_evaluation`) as a small Parquet
artifact, hash-verified like every artifact, and names it in two version tags. A version
registered without one is re-scored from what its run recorded (:func:`recompute_evaluation`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from decisionloop.errors import IntegrityError, Invalid

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

    from decisionloop.backends.metadata.records import ModelVersion
    from decisionloop.platform import Platform

__all__ = [
    "ARTIFACT_TAG",
    "SHA256_TAG",
    "Evaluation",
    "evaluation_for",
    "load_evaluation",
    "recompute_evaluation",
    "save_evaluation",
]

#: the version tags naming the stored evaluation artifact and its sha256
ARTIFACT_TAG = "decisionloop.evaluation.artifact"
SHA256_TAG = "decisionloop.evaluation.sha256"
_Y, _SCORE, _GROUP = "y_true", "score", "group."


@dataclass(frozen=True)
class Evaluation:
    """The test rows of one version: 0/1 labels (or targets), scores, and each sensitive
    column's raw values. ``source`` says whether they were stored or re-scored."""

    y_true: np.ndarray
    scores: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    source: Literal["stored", "recomputed"] = "stored"

    @property
    def rows(self) -> int:
        return int(self.y_true.size)


def _to_parquet(y_true: ArrayLike, scores: ArrayLike, groups: Mapping[str, ArrayLike]) -> bytes:
    import numpy as np
    import pandas as pd

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype="float64")
    if y.ndim != 1 or y.shape != s.shape:
        raise Invalid(f"y_true {y.shape} and scores {s.shape} must be 1-D and of equal length")
    columns: dict[str, Any] = {_Y: y, _SCORE: s}
    for name, values in groups.items():
        array = np.asarray(values)
        if array.shape != y.shape:
            raise Invalid(f"group column {name!r} has {array.size} rows, not {y.size}")
        columns[_GROUP + name] = array
    buffer = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buffer, index=False)
    return buffer.getvalue()


def save_evaluation(
    platform: Platform,
    name: str,
    version: int,
    y_true: ArrayLike,
    scores: ArrayLike,
    groups: Mapping[str, ArrayLike] | None = None,
) -> str:
    """Store the test rows of ``name/version`` (labels, scores, sensitive columns' raw values)
    as a Parquet artifact, tag the version with its key and sha256, and return the key."""
    stored = platform.artifacts.put(_to_parquet(y_true, scores, groups or {}))
    ref = f"{name}/{version}"
    platform.set_tag(ref, ARTIFACT_TAG, stored.key)
    platform.set_tag(ref, SHA256_TAG, stored.sha256)
    return stored.key


def load_evaluation(platform: Platform, name: str, version: int) -> Evaluation | None:
    """The stored test rows of ``name/version`` (sha256-verified), or None when none were
    stored."""
    return _load(platform, platform.get_version(f"{name}/{version}"))


def _load(platform: Platform, version: ModelVersion) -> Evaluation | None:
    import numpy as np
    import pandas as pd

    key, sha256 = version.tags.get(ARTIFACT_TAG), version.tags.get(SHA256_TAG)
    if not key:
        return None
    if not sha256:
        raise IntegrityError(
            f"{version.model_name}/{version.version} names an evaluation without its sha256",
            hint="store it again with decisionloop.cards.evaluation.save_evaluation",
        )
    frame = pd.read_parquet(io.BytesIO(platform.artifacts.get(key, sha256=sha256)))
    return Evaluation(
        y_true=frame[_Y].to_numpy(),
        scores=frame[_SCORE].to_numpy(dtype="float64"),
        groups={
            column.removeprefix(_GROUP): np.asarray(frame[column].to_numpy())
            for column in frame.columns
            if column.startswith(_GROUP)
        },
        source="stored",
    )


def recompute_evaluation(platform: Platform, version: ModelVersion) -> Evaluation | None:
    """Re-score the test rows of a version from its run's recorded snapshot, target, columns
    and split; None when the run did not record them or the split no longer matches."""
    from decisionloop.config import ModelSpec
    from decisionloop.pipelines.loop import Prepared, prepare_rows
    from decisionloop.pipelines.reproduce import recorded_data_spec

    if version.run_id is None:
        return None
    run = platform.runs.get(version.run_id)
    recorded = run.params
    needed = ("target", "columns", "split", "test_size", "seed", "task")
    if run.snapshot_id is None or any(key not in recorded for key in needed):
        return None
    data_spec = recorded_data_spec(run.snapshot_id, recorded)
    model_spec = ModelSpec(
        task=recorded["task"],
        trainer=recorded.get("trainer", platform.settings.model.trainer),
        test_size=recorded["test_size"],
        seed=recorded["seed"],
        threshold=recorded.get("threshold", 0.5),
    )
    settings = platform.settings.model_copy(update={"data": data_spec, "model": model_spec})
    prepared = Prepared(columns=dict(data_spec.columns))
    from decisionloop.pipelines.training_data import training_table

    table = training_table(platform, run.snapshot_id, run.feature_versions)
    prepare_rows(settings, table, prepared)
    if prepared.split.describe() != recorded["split"]:
        return None
    test_frame = prepared.frame.iloc[prepared.split.test_index]
    _, bundle = platform.load_model(f"{version.model_name}/{version.version}")
    scores = (
        bundle.predict_value(test_frame)
        if bundle.task == "regression"
        else bundle.predict_proba(test_frame)
    )
    sensitive = platform.settings.data.sensitive if platform.settings.data else []
    return Evaluation(
        y_true=prepared.y[prepared.split.test_index],
        scores=scores,
        groups={
            name: test_frame[name].to_numpy() for name in sensitive if name in test_frame.columns
        },
        source="recomputed",
    )


def evaluation_for(platform: Platform, version: ModelVersion) -> Evaluation | None:
    """The stored test rows of a version, else re-scored ones, else None."""
    return _load(platform, version) or recompute_evaluation(platform, version)
