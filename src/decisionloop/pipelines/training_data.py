"""The rows a run trained on, read again: its snapshot, joined point in time with the feature
views it used (their recorded definitions over their recorded snapshots), when it used any."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from decisionloop.platform import Platform


def training_table(
    platform: Platform, snapshot_id: str, feature_lineage: Mapping[str, Any] | None
) -> pa.Table:
    """The snapshot's rows, with the features of ``feature_lineage`` (a run's
    ``feature_versions``) when it names feature views."""
    table = platform.data.read_snapshot(snapshot_id)
    if feature_lineage and feature_lineage.get("views"):
        return platform.features.rebuild_training_set(table, feature_lineage).table
    return table
