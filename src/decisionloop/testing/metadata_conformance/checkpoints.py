"""Conformance checks of the stream checkpoints of a metadata store (where sources resume)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    _expect_events,
    _mark,
    _no_new_events,
    _uid,
)

#: a Kinesis sequence number: longer than any integer column holds
_LONG = "49590338271490256608559692538361571095921575989136588898"


def check_checkpoints_set_get(store: MetadataStore) -> None:
    """``get_checkpoints`` of a new source is empty; ``set_checkpoints`` upserts the partitions
    it names and keeps the others; sources are independent; each write is one audit event."""
    source, other = f"kinesis://orders-{_uid()}?group=g", f"kinesis://orders-{_uid()}?group=g"
    ingestion = store.ingestion
    _expect_equal(ingestion.get_checkpoints(source), {}, "get_checkpoints(new source)")
    mark = _mark(store)
    first = {"shardId-000000000000": _LONG, "shardId-000000000001": "7", "zürich/東京": "1"}
    ingestion.set_checkpoints(source, first, actor=_ACTOR)
    _expect_equal(ingestion.get_checkpoints(source), first, "get_checkpoints after set")

    ingestion.set_checkpoints(
        source, {"shardId-000000000001": "9", "shardId-000000000002": "3"}, actor=_ACTOR
    )
    _expect_equal(
        ingestion.get_checkpoints(source),
        {**first, "shardId-000000000001": "9", "shardId-000000000002": "3"},
        "get_checkpoints after an upsert of two partitions",
    )
    ingestion.set_checkpoints(other, {"shardId-000000000000": "1"}, actor=_ACTOR)
    _expect_equal(ingestion.get_checkpoints(other), {"shardId-000000000000": "1"}, "another source")
    _expect_equal(ingestion.get_checkpoints(source)["shardId-000000000000"], _LONG, "kept")
    events = _expect_events(
        store,
        mark,
        [
            ("checkpoint.set", f"source:{source}"),
            ("checkpoint.set", f"source:{source}"),
            ("checkpoint.set", f"source:{other}"),
        ],
        "set_checkpoints three times",
    )
    _expect_equal(
        events[1].details.get("positions"),
        {"shardId-000000000001": "9", "shardId-000000000002": "3"},
        "details of checkpoint.set",
    )

    before = _mark(store)
    ingestion.set_checkpoints(source, {}, actor=_ACTOR)
    ingestion.get_checkpoints(source)
    _no_new_events(store, before, "set_checkpoints({}) and get_checkpoints")


class _Breaks(Mapping[str, str]):
    """Two partitions, then an error while they are being read: a write must not half-happen."""

    def __init__(self) -> None:
        self._items = {"shardId-000000000000": "100", "shardId-000000000001": "200"}

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __len__(self) -> int:
        return 3

    def __iter__(self) -> Iterator[str]:
        yield from self._items
        raise RuntimeError("the positions broke halfway")


def check_checkpoints_write_is_all_or_nothing(store: MetadataStore) -> None:
    """A ``set_checkpoints`` that fails stores none of its positions and audits nothing."""
    source = f"kinesis://orders-{_uid()}?group=g"
    store.ingestion.set_checkpoints(source, {"shardId-000000000000": "1"}, actor=_ACTOR)
    mark = _mark(store)
    with _raises(RuntimeError, "set_checkpoints(mapping that raises)"):
        store.ingestion.set_checkpoints(source, _Breaks(), actor=_ACTOR)
    _expect_equal(
        store.ingestion.get_checkpoints(source),
        {"shardId-000000000000": "1"},
        "checkpoints after a failed set_checkpoints",
    )
    _no_new_events(store, mark, "a failed set_checkpoints")
