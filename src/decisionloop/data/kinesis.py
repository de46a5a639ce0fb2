"""A Kinesis source: micro-batches of JSON records from every shard of a Kinesis data stream.

Each record's data is decoded into one row exactly as :class:`~decisionloop.data.streams.
EventLogSource` decodes a message (:func:`~decisionloop.data.decoding.decode_batch`): a record
that does not decode becomes a row with ``_error`` and ``_payload``, which ingestion
quarantines. ``_position`` is ``stream/shardId@sequenceNumber``.

Where each shard resumes is kept in the metadata store (``stream_checkpoints``), per source
(``kinesis://stream?group=g``) and shard: a batch's ``acknowledge`` records, per shard, the
sequence number of its last record, and a new source reads every shard after its checkpoint
(``AFTER_SEQUENCE_NUMBER``), or from the oldest record kept (``TRIM_HORIZON``) when it has none.
Delivery is at-least-once: what was read but not acknowledged is read again by the next source.

Stream URLs::

    kinesis://orders                          (format json, group decisionloop-ingest)
    kinesis://orders?group=ingest&format=json

boto3 is imported on first use (``pip install 'decisionloop[kinesis]'``); credentials come from
boto3's usual sources (``AWS_*`` variables, profiles, roles). For a local server (an explicit
``endpoint_url``) without any credentials, dummy ones are used. The URL is parsed in
:mod:`decisionloop.data.stream_urls`, the AWS calls are made in
:mod:`decisionloop.data.kinesis_client`.
"""

from __future__ import annotations

import functools
import getpass
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from decisionloop.data import kinesis_client
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch
from decisionloop.data.decoding import decode_batch, decode_json
from decisionloop.data.kinesis_client import (
    BACKOFF_FIRST_S,
    IteratorExpired,
    Throttled,
    jittered,
    next_backoff,
)
from decisionloop.data.stream_urls import KinesisUrl, parse_kinesis_url
from decisionloop.data.streams import MAX_BATCH_BYTES
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import ShardTypeDef

__all__ = ["Checkpoints", "KinesisSource", "KinesisUrl", "parse_kinesis_url"]

#: most records one GetRecords call returns
_MAX_RECORDS_PER_CALL = 10_000
#: a shard that had nothing new is asked again after this long (AWS allows 5 reads/s a shard)
_IDLE_S = 0.2
#: with ``follow``, the shard list is read again this often (resharding adds shards)
_RELIST_S = 10.0


class Checkpoints(Protocol):
    """Where stream sources resume; the metadata store's ``ingestion`` repository is one."""

    def get_checkpoints(self, source: str) -> dict[str, str]: ...

    def set_checkpoints(self, source: str, positions: Mapping[str, str], *, actor: str) -> None: ...


@dataclass
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    #: sequence number of the last record read (in memory), or of the checkpoint
    last: str | None
    iterator: str | None = None
    #: got an answer at least once (so ``behind_ms`` means something)
    polled: bool = False
    #: read to its end (a shard closed by resharding)
    closed: bool = False
    behind_ms: int = 0
    #: monotonic time before which the shard is not asked again (idle or throttled)
    not_before: float = 0.0
    backoff_s: float = 0.0


class KinesisSource:
    """A :class:`~decisionloop.data.batches.Source` over every shard of one Kinesis stream.

    ``read()`` is a generator of micro-batches: each holds up to ``max_batch_rows`` records
    (and stops growing past 64 MiB of data), collected for at most ``max_wait_s``. Nothing is
    read until the consumer asks for the next batch. Without ``follow`` it ends when a batch's
    wait found nothing and every shard is caught up; with ``follow`` it keeps polling (and
    picks up shards made by resharding; a child shard is read once its parents are read to
    their end) until :meth:`stop`. A throttled shard backs off (100 ms doubling to 5 s, with
    jitter) while the others go on; an expired iterator is renewed where reading stopped.

    ``acknowledge()`` records, per shard, the batch's last sequence number in ``checkpoints``
    under :attr:`checkpoint_source`; acknowledge batches in order (a checkpoint never moves
    back). ``origin`` is ``stream:shardId@first-last[,...]``.
    """

    def __init__(
        self,
        url: str,
        *,
        checkpoints: Checkpoints,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        max_wait_s: float = 0.5,
        actor: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.stream, self.group, self.value_format = parse_kinesis_url(url)
        #: the name the checkpoints are kept under: the stream and the consumer group
        self.checkpoint_source = f"kinesis://{self.stream}?group={self.group}"
        self.checkpoints = checkpoints
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_wait_s = max_wait_s
        self.actor = actor or f"local:{_user()}"
        self._on_close = on_close
        self._stopped = threading.Event()
        self._ack_lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._client: KinesisClient | None = None
        self._shards: dict[str, _Shard] | None = None
        self._acknowledged: dict[str, str] = {}
        self._relist_at = 0.0
        self._closed = False

    # -- the Source protocol ----------------------------------------------------------------

    def read(self, *, follow: bool = False, max_batch_rows: int = 100_000) -> Iterator[RawBatch]:
        if max_batch_rows < 1:
            raise Invalid(f"max_batch_rows must be at least 1, got {max_batch_rows}", hint="1000")
        if self._shards is None:
            self._shards = {}
            self._discover()
        while not self._stopped.is_set():
            shard_ids, sequences, values, drained = self._collect(max_batch_rows)
            if values:
                yield self._batch(shard_ids, sequences, values)
            elif drained and not follow:
                return

    def stop(self) -> None:
        """Make ``read()`` return after its current call (at most ``max_wait_s``)."""
        self._stopped.set()

    def close(self) -> None:
        self.stop()
        if self._closed:
            return
        self._closed = True
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if self._on_close is not None:
            self._on_close()

    def __repr__(self) -> str:
        return f"KinesisSource({self.url!r}, stream={self.stream!r}, group={self.group!r})"

    # -- the client -------------------------------------------------------------------------

    @property
    def client(self) -> KinesisClient:
        with self._client_lock:
            if self._client is None:
                self._client = kinesis_client.make_client(self.endpoint_url, self.region)
            return self._client

    def _call(self, operation: str, request: Callable[[], Any]) -> Any:
        """Run one API call on this stream (:func:`~decisionloop.data.kinesis_client.call`)."""
        return kinesis_client.call(
            operation,
            request,
            stream=self.stream,
            endpoint_url=self.endpoint_url,
            region=self.region,
        )

    # -- shards -----------------------------------------------------------------------------

    def _list_shards(self) -> list[ShardTypeDef]:
        shards: list[ShardTypeDef] = []
        token: str | None = None
        while True:
            page = self._call("ListShards", functools.partial(self._list_page, token))
            shards += page.get("Shards", [])
            token = page.get("NextToken")
            if not token:
                return shards

    def _list_page(self, token: str | None) -> Any:
        if token is None:
            return self.client.list_shards(StreamName=self.stream)
        return self.client.list_shards(NextToken=token)  # the token names the stream

    def _discover(self) -> None:
        """Read the shard list: new shards start at their checkpoint (or the oldest record);
        shards gone from the list (past the retention period) are forgotten."""
        assert self._shards is not None
        backoff = BACKOFF_FIRST_S
        while True:
            try:
                listed = self._list_shards()
                break
            except Throttled:
                if self._stopped.wait(jittered(backoff)):
                    return
                backoff = next_backoff(backoff)
        new = [shard for shard in listed if shard["ShardId"] not in self._shards]
        if new:
            saved = self.checkpoints.get_checkpoints(self.checkpoint_source)
            with self._ack_lock:
                for shard_id, sequence in saved.items():
                    if _after(sequence, self._acknowledged.get(shard_id)):
                        self._acknowledged[shard_id] = sequence
            for shard in new:
                parents = (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
                self._shards[shard["ShardId"]] = _Shard(
                    shard_id=shard["ShardId"],
                    parents=tuple(parent for parent in parents if parent),
                    last=saved.get(shard["ShardId"]),
                )
        listed_ids = {shard["ShardId"] for shard in listed}
        for shard_id in [known for known in self._shards if known not in listed_ids]:
            del self._shards[shard_id]
        self._relist_at = time.monotonic() + _RELIST_S

    def _readable(self) -> list[_Shard]:
        """Open shards whose parents (if still listed) have been read to their end."""
        assert self._shards is not None
        shards = self._shards
        return [
            shard
            for shard in shards.values()
            if not shard.closed
            and all(parent not in shards or shards[parent].closed for parent in shard.parents)
        ]

    def _iterator(self, shard: _Shard) -> str:
        """An iterator after the last record read (or the checkpoint), else at the oldest."""
        last = shard.last

        def call() -> Any:
            if last is None:
                return self.client.get_shard_iterator(
                    StreamName=self.stream, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON"
                )
            return self.client.get_shard_iterator(
                StreamName=self.stream,
                ShardId=shard.shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=last,
            )

        return str(self._call("GetShardIterator", call)["ShardIterator"])

    def _get_records(self, shard: _Shard, limit: int) -> list[dict[str, Any]]:
        """The shard's next records (at most ``limit``); [] when it has none, is throttled
        (then it backs off) or its iterator had expired (then it is renewed next time)."""
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
            iterator = shard.iterator
            answer = self._call(
                "GetRecords", lambda: self.client.get_records(ShardIterator=iterator, Limit=limit)
            )
        except Throttled:
            shard.backoff_s = next_backoff(shard.backoff_s)
            shard.not_before = time.monotonic() + jittered(shard.backoff_s)
            return []
        except IteratorExpired:
            shard.iterator = None
            return []
        shard.backoff_s = 0.0
        shard.polled = True
        shard.behind_ms = int(answer.get("MillisBehindLatest", 0) or 0)
        shard.iterator = answer.get("NextShardIterator")
        records: list[dict[str, Any]] = list(answer.get("Records", []))
        if shard.iterator is None:
            shard.closed = True
            self._relist_at = 0.0  # its children may be listed now
        if records:
            shard.last = str(records[-1]["SequenceNumber"])
        else:
            shard.not_before = time.monotonic() + _IDLE_S
        return records

    # -- batches ----------------------------------------------------------------------------

    def _collect(self, max_rows: int) -> tuple[list[str], list[str], list[bytes], bool]:
        """Records from the shards in turn until ``max_rows``, 64 MiB or ``max_wait_s``; and
        whether every readable shard is caught up (nothing more to read now)."""
        shard_ids: list[str] = []
        sequences: list[str] = []
        values: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.max_wait_s
        while not self._stopped.is_set():
            if time.monotonic() >= self._relist_at:
                self._discover()
            readable = self._readable()
            now = time.monotonic()
            for shard in readable:
                if shard.not_before > now or self._stopped.is_set():
                    continue
                limit = min(_MAX_RECORDS_PER_CALL, max_rows - len(values))
                for record in self._get_records(shard, limit):
                    data = bytes(record["Data"])
                    shard_ids.append(shard.shard_id)
                    sequences.append(str(record["SequenceNumber"]))
                    values.append(data)
                    size += len(data)
                if len(values) >= max_rows or size >= MAX_BATCH_BYTES:
                    return shard_ids, sequences, values, False
            now = time.monotonic()
            if now >= deadline:
                break
            readable = self._readable()
            waits = [shard.not_before for shard in readable if shard.not_before > now]
            if len(waits) == len(readable):  # every shard idle or backing off: sleep
                self._stopped.wait(max(min([*waits, deadline, self._relist_at]) - now, 0.0))
        readable = self._readable()
        drained = not values and all(shard.polled and shard.behind_ms == 0 for shard in readable)
        return shard_ids, sequences, values, drained

    def _batch(self, shard_ids: list[str], sequences: list[str], values: list[bytes]) -> RawBatch:
        import pyarrow as pa

        names, arrays, errors, payloads = decode_batch(values, decode_json)
        positions = pa.array(
            [
                f"{self.stream}/{shard}@{sequence}"
                for shard, sequence in zip(shard_ids, sequences, strict=True)
            ],
            pa.string(),
        )
        table = pa.table(
            [*arrays, positions, errors, payloads], names=[*names, POSITION, ERROR, PAYLOAD]
        )
        spans: dict[str, tuple[str, str]] = {}
        for shard, sequence in zip(shard_ids, sequences, strict=True):
            first = spans[shard][0] if shard in spans else sequence
            spans[shard] = (first, sequence)
        origin = f"{self.stream}:" + ",".join(
            f"{shard}@{first}-{last}" for shard, (first, last) in sorted(spans.items())
        )
        last_read = {shard: last for shard, (_, last) in spans.items()}
        return RawBatch(origin=origin, table=table, acknowledge=self._acknowledger(last_read))

    def _acknowledger(self, last_read: dict[str, str]) -> Callable[[], None]:
        def acknowledge() -> None:
            with self._ack_lock:
                forward = {
                    shard: sequence
                    for shard, sequence in last_read.items()
                    if _after(sequence, self._acknowledged.get(shard))
                }
                if forward:
                    self.checkpoints.set_checkpoints(
                        self.checkpoint_source, forward, actor=self.actor
                    )
                    self._acknowledged.update(forward)

        return acknowledge


def _after(sequence: str, than: str | None) -> bool:
    """Whether a sequence number (a decimal string, increasing within a shard) is past another."""
    if than is None:
        return True
    try:
        return int(sequence) > int(than)
    except ValueError:
        return sequence != than


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
