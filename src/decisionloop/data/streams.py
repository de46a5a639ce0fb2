"""A stream source: micro-batches of decoded messages from an event log topic (local or Kafka).

Each message value is decoded into one row (a JSON object, or an Avro record with a given
schema). A message that does not decode is never dropped and never stops the stream: it
becomes a row with ``_error`` (a short reason) and ``_payload`` (the raw value as text, cut at
64 KiB), which ingestion quarantines. A batch's ``acknowledge`` commits its offsets for the
consumer group, so delivery is at-least-once: what was not acknowledged is read again by the
group's next source.

Stream URLs::

    kafka://host:9092/orders?group=ingest&format=json
    eventlog:///abs/path/events.db?topic=orders&group=ingest&format=avro
    eventlog://.decisionloop/events.db?topic=orders          (relative to the project folder)

URLs are parsed in :mod:`decisionloop.data.stream_urls`, values decoded in
:mod:`decisionloop.data.decoding` (which the Kinesis source shares).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from typing import Any, Protocol, cast

from decisionloop.backends.events import open_event_log
from decisionloop.backends.events.base import EventLog, validate_group, validate_topic
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch
from decisionloop.data.decoding import (
    MAX_PAYLOAD_BYTES,
    Decoder,
    ValueFormat,
    decode_batch,
    value_decoder,
)
from decisionloop.data.stream_urls import DEFAULT_GROUP, StreamUrl, parse_stream_url
from decisionloop.errors import Invalid

__all__ = [
    "DEFAULT_GROUP",
    "MAX_PAYLOAD_BYTES",
    "EventLogSource",
    "StreamUrl",
    "ValueColumns",
    "ValueFormat",
    "ValuePolling",
    "parse_stream_url",
]

#: a micro-batch stops growing past this many value bytes (bounded memory)
MAX_BATCH_BYTES = 64 * 1024 * 1024

#: one message as a stream source needs it: (partition, offset, value)
ValueRow = tuple[int, int, bytes]
#: one poll's messages as three lists: partitions, offsets, values
ValueColumns = tuple[list[int], list[int], list[bytes]]
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)


class ValuePolling(Protocol):
    """An event log that can also hand polled messages in bulk without building
    :class:`Event` objects: as ``(partition, offset, value)`` tuples, or as three lists (same
    positions and semantics as ``poll``). Both built-in logs do; a source uses
    ``poll_columns`` when the log's class defines it, else ``poll_values``, else ``poll``."""

    def poll_values(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[ValueRow]: ...

    def poll_columns(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> ValueColumns: ...


class EventLogSource:
    """A :class:`~decisionloop.data.batches.Source` over one topic of an :class:`EventLog`.

    ``read()`` is a generator of micro-batches: each holds up to ``max_batch_rows`` messages,
    collected for at most ``max_wait_s`` (bounded latency). Nothing is polled until the
    consumer asks for the first batch; then a helper thread reads (polls and decodes) the next
    batch while the consumer works on the current one, never more than one batch ahead
    (back-pressure; a batch read ahead is dropped at :meth:`stop`, unacknowledged, so it is
    read again by the group's next source). Without ``follow`` it ends when polls
    have waited ``max_wait_s`` without a message (the poll that ended the last batch counts);
    with ``follow`` it waits for new messages until :meth:`stop`. Columns are the union of
    the decoded keys, with JSON scalars as their Arrow types (bool, int64, float64 for ints
    mixed with floats, string) and text where a column mixes types; nested objects and arrays
    become JSON text. Types are inferred per batch.

    JSON batches are parsed at once by Arrow's JSON reader where that gives exactly what
    decoding message by message gives (see :func:`~decisionloop.data.decoding.decode_batch`),
    else message by message; logs offering :class:`ValuePolling` hand the messages in bulk.

    ``acknowledge()`` commits, per partition, the offset after the batch's last message;
    acknowledge batches in order (a batch's commit implies the earlier ones; an earlier batch
    acknowledged later commits nothing, since offsets never move back).
    """

    def __init__(
        self,
        url: str,
        log: EventLog,
        topic: str,
        group: str = DEFAULT_GROUP,
        value_format: ValueFormat = "json",
        avro_schema: Mapping[str, Any] | str | None = None,
        *,
        max_wait_s: float = 0.5,
        close_log: bool = False,
    ) -> None:
        self.url = url
        self.log = log
        self.topic = topic
        self.group = group
        self.value_format = value_format
        self.avro_schema = avro_schema
        self.max_wait_s = max_wait_s
        self.close_log = close_log
        self._stopped = threading.Event()
        self._ack_lock = threading.Lock()
        self._acknowledged: dict[int, int] = {}
        self._readers: set[_ReadAhead] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        avro_schema: Mapping[str, Any] | str | None = None,
        max_wait_s: float = 0.5,
    ) -> EventLogSource:
        """Open the event log named by a stream URL; :meth:`close` closes it too."""
        log_url, topic, options = parse_stream_url(url)
        value_format: ValueFormat = "avro" if options.get("format") == "avro" else "json"
        return cls(
            url,
            open_event_log(log_url),
            topic,
            options.get("group", DEFAULT_GROUP),
            value_format,
            avro_schema,
            max_wait_s=max_wait_s,
            close_log=True,
        )

    def read(self, *, follow: bool = False, max_batch_rows: int = 100_000) -> Iterator[RawBatch]:
        if max_batch_rows < 1:
            raise Invalid(f"max_batch_rows must be at least 1, got {max_batch_rows}", hint="1000")
        decode = value_decoder(self.value_format, self.avro_schema)
        validate_topic(self.topic)
        validate_group(self.group)
        reader = _ReadAhead(self._batches(follow, max_batch_rows, decode), self._stopped)
        self._readers.add(reader)
        try:
            yield from reader
        finally:
            self._readers.discard(reader)

    def stop(self) -> None:
        """Make ``read()`` return after its current poll (at most ``max_wait_s``)."""
        self._stopped.set()

    def close(self) -> None:
        """Stop, wait for a batch being read ahead, and close the log if it is ours."""
        self.stop()
        for reader in list(self._readers):
            reader.close()
        if self.close_log:
            self.log.close()

    def __repr__(self) -> str:
        return f"EventLogSource({self.url!r}, topic={self.topic!r}, group={self.group!r})"

    # -- reading ---------------------------------------------------------------------------

    def _batches(self, follow: bool, max_batch_rows: int, decode: Decoder) -> Iterator[RawBatch]:
        """The micro-batches, each polled and decoded when asked for."""
        quiet = 0.0
        while not self._stopped.is_set():
            partitions, offsets, values, idle = self._collect(
                max_batch_rows, 0.0 if follow else quiet
            )
            if self._stopped.is_set():
                return  # not decoded: it would be dropped
            if values:
                quiet = idle
                yield self._batch(partitions, offsets, values, decode)
            elif not follow:
                return

    def _poll(self, max_records: int, timeout_s: float) -> ValueColumns:
        """Partitions, offsets and values of the next messages: in bulk where the log's class
        offers it (no Event objects), else from ``poll``."""
        kind = type(self.log)
        bulk = cast(ValuePolling, self.log)
        if callable(getattr(kind, "poll_columns", None)):
            return bulk.poll_columns(
                self.topic, self.group, max_records=max_records, timeout_s=timeout_s
            )
        if callable(getattr(kind, "poll_values", None)):
            rows = bulk.poll_values(
                self.topic, self.group, max_records=max_records, timeout_s=timeout_s
            )
        else:
            events = self.log.poll(
                self.topic, self.group, max_records=max_records, timeout_s=timeout_s
            )
            rows = [(event.partition, event.offset, event.value) for event in events]
        return list(map(_FIRST, rows)), list(map(_SECOND, rows)), list(map(_THIRD, rows))

    def _collect(
        self, max_rows: int, quiet: float
    ) -> tuple[list[int], list[int], list[bytes], float]:
        """The next messages, as partitions, offsets and values: until ``max_rows``, 64 MiB,
        ``max_wait_s`` or a poll that finds nothing; and how long that last poll waited.

        ``quiet`` is how long the log was polled in vain before (at the end of the previous
        batch): the first poll waits only for the rest of ``max_wait_s``, so that a drain ends
        once polls have waited ``max_wait_s`` in all without a message.
        """
        partitions: list[int] = []
        offsets: list[int] = []
        values: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.max_wait_s
        while len(values) < max_rows and size < MAX_BATCH_BYTES and not self._stopped.is_set():
            remaining = max(deadline - time.monotonic(), 0.0)
            wait = remaining if values else max(remaining - quiet, 0.0)
            started = time.monotonic()
            got_partitions, got_offsets, got_values = self._poll(max_rows - len(values), wait)
            if not got_values:
                return partitions, offsets, values, time.monotonic() - started
            partitions += got_partitions
            offsets += got_offsets
            values += got_values
            size += sum(map(len, got_values))
            if remaining <= 0:
                break
        return partitions, offsets, values, 0.0

    def _batch(
        self, partitions: list[int], offsets: list[int], values: list[bytes], decode: Decoder
    ) -> RawBatch:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        names, arrays, errors, payloads = decode_batch(values, decode)
        partition_numbers = np.asarray(partitions, np.int64)
        offset_numbers = np.asarray(offsets, np.int64)
        positions = pc.binary_join_element_wise(
            f"{self.topic}/",
            pa.array(partition_numbers).cast(pa.string()),
            "@",
            pa.array(offset_numbers).cast(pa.string()),
            "",
        )
        table = pa.table(
            [*arrays, positions, errors, payloads], names=[*names, POSITION, ERROR, PAYLOAD]
        )
        keys, inverse = np.unique(partition_numbers, return_inverse=True)
        lows = np.full(len(keys), np.iinfo(np.int64).max, np.int64)
        highs = np.full(len(keys), -1, np.int64)
        np.minimum.at(lows, inverse, offset_numbers)
        np.maximum.at(highs, inverse, offset_numbers)
        spans = list(zip(keys.tolist(), lows.tolist(), highs.tolist(), strict=True))
        origin = f"{self.topic}:" + ",".join(f"{p}@{low}-{high}" for p, low, high in spans)
        next_offsets = {partition: high + 1 for partition, _, high in spans}
        return RawBatch(origin=origin, table=table, acknowledge=self._acknowledger(next_offsets))

    def _acknowledger(self, offsets: dict[int, int]) -> Callable[[], None]:
        def acknowledge() -> None:
            with self._ack_lock:
                forward = {p: o for p, o in offsets.items() if o > self._acknowledged.get(p, -1)}
                if forward:
                    self.log.commit(self.topic, self.group, forward)
                    self._acknowledged.update(forward)

        return acknowledge


#: what the helper thread of :class:`_ReadAhead` hands over after the last batch
_END = object()


class _ReadAhead:
    """Batches, each read (polled and decoded) by a helper thread while the consumer works on
    the one before: at most one batch ahead, so that polling and decoding overlap the
    consumer's validation and storage. Nothing is read before the consumer asks for the first
    batch; a batch read ahead once ``stopped`` is set is dropped (it was never acknowledged,
    so the group's next source reads it again). The helper's exceptions are raised in the
    consumer's thread."""

    def __init__(self, batches: Iterator[RawBatch], stopped: threading.Event) -> None:
        self._batches = batches
        self._stopped = stopped
        self._ready: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._wanted = threading.Semaphore(0)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decisionloop-read-ahead")
        self._thread.daemon = True

    def __iter__(self) -> Iterator[RawBatch]:
        self._thread.start()
        self._wanted.release()
        try:
            while True:
                item = self._ready.get()
                if isinstance(item, BaseException):
                    raise item
                if not isinstance(item, RawBatch) or self._stopped.is_set():
                    return
                self._wanted.release()  # the next batch, while the consumer works on this one
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Let the helper end (after the batch it is reading) and wait for it."""
        self._closing.set()
        self._wanted.release()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._wanted.acquire()
            if self._closing.is_set():
                return
            try:
                item: object = next(self._batches)
            except StopIteration:
                item = _END
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
                item = exc
            self._ready.put(item)
            if not isinstance(item, RawBatch):
                return
