"""Conformance checks of the data set snapshots of a metadata store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    Snapshot,
)
from decisionloop.errors import NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    RICH_JSON,
    _add_snapshot,
    _expect_events,
    _expect_same_json,
    _expect_utc,
    _hash,
    _mark,
    _no_new_events,
    _uid,
)


def check_snapshot_add_get_list(store: MetadataStore) -> None:
    """``add_snapshot`` stores every field; ``get_snapshot`` and ``list_snapshots`` return it."""
    dataset = f"ds-{_uid()}"
    content_hash = _hash()
    mark = _mark(store)
    start = datetime.now(UTC)
    snapshot = store.datasets.add_snapshot(
        dataset,
        content_hash=content_hash,
        row_count=7043,
        columns=RICH_JSON,
        artifact_key=f"datasets/{dataset}/{content_hash}.parquet",
        source="s3://bucket/telco → churn.csv",
        actor=_ACTOR,
    )
    end = datetime.now(UTC)
    _expect(isinstance(snapshot, Snapshot), f"add_snapshot returned {snapshot!r}")
    _expect(isinstance(snapshot.id, str) and bool(snapshot.id), f"snapshot id {snapshot.id!r}")
    _expect_equal(snapshot.dataset, dataset, "snapshot.dataset")
    _expect_equal(snapshot.content_hash, content_hash, "snapshot.content_hash")
    _expect_equal(snapshot.row_count, 7043, "snapshot.row_count")
    _expect_same_json(snapshot.columns, RICH_JSON, "snapshot.columns")
    _expect_equal(snapshot.source, "s3://bucket/telco → churn.csv", "snapshot.source")
    _expect_utc(snapshot.created_at, "snapshot.created_at", near=(start, end))
    _expect_events(
        store, mark, [("snapshot.create", f"dataset:{dataset}")], "add_snapshot (new content)"
    )

    stored = store.datasets.get_snapshot(snapshot.id)
    _expect_equal(stored, snapshot, "get_snapshot(id)")
    _expect_same_json(stored.columns, RICH_JSON, "get_snapshot(id).columns")
    _expect_equal(store.datasets.list_snapshots(dataset), [snapshot], "list_snapshots(dataset)")
    _expect(snapshot in store.datasets.list_snapshots(), "list_snapshots() misses the new snapshot")
    _expect_equal(store.datasets.list_snapshots(f"ds-{_uid()}"), [], "list_snapshots(unknown)")
    with _raises(NotFound, "get_snapshot(unknown id)"):
        store.datasets.get_snapshot(uuid.uuid4().hex)


def check_snapshot_same_hash_is_deduplicated(store: MetadataStore) -> None:
    """The same content of the same data set returns the existing snapshot, without an event."""
    dataset = f"ds-{_uid()}"
    content_hash = _hash()
    first = _add_snapshot(store, dataset, content_hash, row_count=10)
    mark = _mark(store)
    second = _add_snapshot(store, dataset, content_hash, row_count=10)
    _expect_equal(second.id, first.id, "id of a snapshot with the same hash")
    _expect_equal(second, first, "snapshot returned for the same hash")
    _no_new_events(store, mark, "add_snapshot of the same hash")
    _expect_equal(
        [s.id for s in store.datasets.list_snapshots(dataset)], [first.id], "list after dedupe"
    )

    other = f"ds-{_uid()}"
    elsewhere = _add_snapshot(store, other, content_hash, row_count=10)
    _expect(elsewhere.id != first.id, "same hash in another data set reused the snapshot id")
    _expect_equal(elsewhere.dataset, other, "dataset of the same hash in another data set")
    changed = _add_snapshot(store, dataset, _hash(), row_count=11)
    _expect(changed.id != first.id, "new content reused the snapshot id")
    _expect_events(
        store,
        mark,
        [("snapshot.create", f"dataset:{other}"), ("snapshot.create", f"dataset:{dataset}")],
        "add_snapshot of new content",
    )


def check_snapshot_list_newest_first(store: MetadataStore) -> None:
    """``list_snapshots`` returns newest first, filters by data set and honours ``limit``."""
    dataset, other = f"ds-{_uid()}", f"ds-{_uid()}"
    made = []
    for n in range(4):
        made.append(_add_snapshot(store, dataset, _hash(), row_count=n))
        _add_snapshot(store, other, _hash(), row_count=n)
    newest_first = list(reversed(made))
    _expect_equal(store.datasets.list_snapshots(dataset), newest_first, "list_snapshots(dataset)")
    _expect_equal(
        store.datasets.list_snapshots(dataset, limit=2), newest_first[:2], "list(limit=2)"
    )
    everything = store.datasets.list_snapshots(limit=8)
    _expect_equal(len(everything), 8, "list_snapshots(limit=8) over both data sets")
    _expect_equal({s.dataset for s in everything}, {dataset, other}, "data sets in list()")
    stamps = [s.created_at for s in everything]
    _expect_equal(stamps, sorted(stamps, reverse=True), "list_snapshots() created_at order")
