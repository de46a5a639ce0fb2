"""The event log on Kafka (``kafka://host:port``), through confluent-kafka (loaded lazily).

Appends use an idempotent producer with ``acks=all`` and wait for every delivery report, so a
returned ``append`` is acknowledged by all in-sync replicas. Consumers are *assigned* all
partitions of a topic at the group's committed offsets instead of joining the group: no group
rebalance to wait for (Tansu, the test broker, holds a first JoinGroup for half the session
timeout), and the same one-consumer-per-group model as the local log. Offsets are committed
synchronously. Nothing here relies on high watermarks (Tansu reports them wrong).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from decisionloop.backends.events.base import (
    Capabilities,
    Event,
    EventPosition,
    NewEvent,
    choose_partition,
    validate_group,
    validate_poll,
    validate_positions,
    validate_records,
    validate_topic,
)
from decisionloop.errors import Conflict, Invalid, NotFound, TooLarge, Unavailable

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message, Producer
    from confluent_kafka.admin import AdminClient

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "KafkaEventLog", "bootstrap_servers"]

#: Kafka brokers refuse record batches over ~1 MiB unless message.max.bytes is raised
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
_BATCH_OVERHEAD_BYTES = 64 * 1024
_INSTALL_HINT = "pip install 'decisionloop[kafka]'"
_LOGGER = logging.getLogger("decisionloop.kafka")
#: the most messages confluent-kafka's consume() hands out per call
_MAX_CONSUME = 1_000_000
#: messages consumed (and converted) at once by a poll
_CHUNK = 1000
#: the longest a poll holds the consumer lock while waiting for a first message
_WAIT_SLICE_S = 0.05
#: how much a consumer fetches ahead of its caller (about one micro-batch of a stream source)
_PREFETCH_KBYTES = 64 * 1024
#: how soon a consumer whose prefetch queue was full fetches again
_PREFETCH_BACKOFF_MS = 20


def bootstrap_servers(url: str) -> str:
    """``kafka://host:port[,host:port...]`` -> ``host:port[,host:port...]``."""
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise Invalid(f"not a Kafka URL: {url}", hint="use kafka://host:9092")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise Invalid(
            f"a Kafka event log URL names only brokers: {url}",
            hint="use kafka://host:9092[,host2:9092]; pass client settings as `config`",
        )
    for server in parts.netloc.split(","):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise Invalid(f"broker {server!r} is not host:port", hint="use kafka://host:9092")
    return parts.netloc


def _error_text(error: KafkaError | None) -> str:
    return "unknown error" if error is None else f"{error.name()}: {error.str()}"


def _unavailable(what: str, exc: BaseException) -> Unavailable:
    error = exc.args[0] if exc.args else None
    detail = _error_text(error) if hasattr(error, "name") else str(exc)
    return Unavailable(
        f"Kafka {what} failed: {detail}",
        hint="check that the brokers in the URL are running and reachable",
    )


class KafkaEventLog:
    """An :class:`~decisionloop.backends.events.EventLog` on Kafka.

    ``config`` adds librdkafka settings to every client (e.g. ``security.protocol``,
    ``sasl.*``); ``replication_factor=-1`` takes the broker's default; ``timeout_s`` bounds
    metadata, commit and delivery waits; ``max_event_bytes`` should not exceed the brokers'
    ``message.max.bytes``.
    """

    def __init__(
        self,
        url: str,
        *,
        config: Mapping[str, str | int | float | bool] | None = None,
        replication_factor: int = -1,
        timeout_s: float = 30.0,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.url = url
        self.bootstrap = bootstrap_servers(url)
        self.config = dict(config or {})
        self.replication_factor = replication_factor
        self.timeout_s = timeout_s
        self.capabilities = Capabilities(
            max_event_bytes=max_event_bytes, shared_across_hosts=True, persistent=True
        )
        self._admin: AdminClient | None = None
        self._producer: Producer | None = None
        self._consumers: dict[tuple[str, str], Consumer] = {}
        self._assigned: set[tuple[str, str]] = set()
        self._partitions: dict[str, int] = {}
        self._round_robin: dict[str, int] = {}
        self._producer_lock = threading.Lock()
        self._consumer_lock = threading.RLock()
        self._metadata_lock = threading.Lock()

    # -- clients ---------------------------------------------------------------------------

    def _base_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": "decisionloop",
            # librdkafka's own messages go to Python logging, not straight to stderr
            "logger": _LOGGER,
            **self.config,
        }

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            try:
                from confluent_kafka.admin import AdminClient
            except ImportError as exc:
                raise Unavailable("confluent-kafka is not installed", hint=_INSTALL_HINT) from exc
            self._admin = AdminClient(self._base_config())
        return self._admin

    def _producer_client(self) -> Producer:
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(
                {
                    **self._base_config(),
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 5,
                    "message.max.bytes": self.capabilities.max_event_bytes + _BATCH_OVERHEAD_BYTES,
                    "message.timeout.ms": int(self.timeout_s * 1000),
                }
            )
        return self._producer

    def _consumer(self, topic: str, group: str) -> Consumer:
        consumer = self._consumers.get((topic, group))
        if consumer is None:
            from confluent_kafka import Consumer

            consumer = Consumer(
                {
                    **self._base_config(),
                    "group.id": group,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "allow.auto.create.topics": False,
                    "fetch.wait.max.ms": 100,
                    # bound the prefetch: back-pressure is the caller not polling
                    "queued.max.messages.kbytes": _PREFETCH_KBYTES,
                    # once the caller has drained a full prefetch queue, fetch again soon (by
                    # default a fetch waits a second after finding the queue full)
                    "fetch.queue.backoff.ms": _PREFETCH_BACKOFF_MS,
                    "fetch.message.max.bytes": self.capabilities.max_event_bytes
                    + _BATCH_OVERHEAD_BYTES,
                }
            )
            self._consumers[(topic, group)] = consumer
        return consumer

    def _drop_consumer(self, topic: str, group: str) -> None:
        consumer = self._consumers.pop((topic, group), None)
        self._assigned.discard((topic, group))
        if consumer is not None:
            # closing a broken consumer must not mask the error that made us drop it
            with contextlib.suppress(Exception):
                consumer.close()

    def _partition_count(self, topic: str) -> int:
        validate_topic(topic)
        with self._metadata_lock:
            known = self._partitions.get(topic)
            if known is not None:
                return known
            admin = self._admin_client()  # first: raises Unavailable without confluent-kafka
            from confluent_kafka import KafkaException

            try:
                metadata = admin.list_topics(timeout=self.timeout_s)
            except KafkaException as exc:
                raise _unavailable("metadata request", exc) from exc
            found = metadata.topics.get(topic)
            if found is None or found.error is not None or not found.partitions:
                raise NotFound(
                    f"no topic {topic!r} on {self.bootstrap}",
                    hint="create it first with create_topic(topic, partitions)",
                )
            self._partitions[topic] = len(found.partitions)
            return len(found.partitions)

    # -- the Protocol ----------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        validate_topic(topic)
        if partitions < 1:
            raise Invalid(f"partitions must be at least 1, got {partitions}", hint="use 1")
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.cimpl import NewTopic

        new_topic = NewTopic(
            topic, num_partitions=partitions, replication_factor=self.replication_factor
        )
        try:
            futures = self._admin_client().create_topics(
                [new_topic], operation_timeout=self.timeout_s, request_timeout=self.timeout_s
            )
            futures[topic].result(timeout=self.timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if getattr(error, "code", lambda: None)() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise _unavailable(f"create topic {topic!r}", exc) from exc
            with self._metadata_lock:
                self._partitions.pop(topic, None)
            existing = self._partition_count(topic)
            if existing != partitions:
                raise Conflict(
                    f"topic {topic!r} exists with {existing} partitions, not {partitions}",
                    hint="use the existing partition count, or a new topic name",
                ) from exc
            return
        except TimeoutError as exc:
            raise Unavailable(
                f"Kafka did not create topic {topic!r} within {self.timeout_s} s",
                hint="check that the brokers are running",
            ) from exc
        with self._metadata_lock:
            self._partitions[topic] = partitions

    def append(self, topic: str, records: Sequence[NewEvent]) -> list[EventPosition]:
        validate_records(records, self.capabilities.max_event_bytes)
        count = self._partition_count(topic)
        if not records:
            return []
        from confluent_kafka import KafkaError, KafkaException

        positions: list[EventPosition | None] = [None] * len(records)
        failures: list[KafkaError | None] = []

        def delivered(index: int, error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(error)
                return
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:
                failures.append(None)
                return
            positions[index] = EventPosition(topic, partition, offset)

        with self._producer_lock:
            producer = self._producer_client()
            counter = self._round_robin.get(topic, random.randrange(count))
            for index, record in enumerate(records):
                partition = choose_partition(record.key, count, counter)
                if record.key is None:
                    counter += 1
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=record.value,
                            key=record.key,
                            partition=partition,
                            headers=list(record.headers) or None,
                            on_delivery=functools.partial(delivered, index),
                        )
                        break
                    except BufferError:
                        producer.poll(0.05)  # the local queue is full: let deliveries drain
                    except KafkaException as exc:
                        raise _unavailable("produce", exc) from exc
                producer.poll(0)
            self._round_robin[topic] = counter
            remaining = producer.flush(self.timeout_s + 5)
        if remaining:
            raise Unavailable(
                f"Kafka did not acknowledge {remaining} of {len(records)} events within "
                f"{self.timeout_s} s; some may be stored (retrying may duplicate them)",
                hint="check that the brokers are running",
            )
        if failures:
            first = failures[0]
            if first is not None and first.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                raise TooLarge(
                    f"the broker refused an event as too large: {_error_text(first)}",
                    hint="raise the broker's message.max.bytes, or store large payloads as "
                    "artifacts and append a reference",
                )
            raise Unavailable(
                f"Kafka refused {len(failures)} of {len(records)} events "
                f"({_error_text(first)}); the others are stored",
                hint="retry the append (events may be duplicated: delivery is at-least-once)",
            )
        return [position for position in positions if position is not None]

    def poll(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[Event]:
        events: list[Event] = []
        self._poll(
            topic,
            group,
            max_records,
            timeout_s,
            lambda chunk: events.extend(map(self._event, chunk)),
        )
        return events

    def poll_values(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[tuple[int, int, bytes]]:
        """``poll`` as ``(partition, offset, value)`` tuples, without building Event objects
        (for stream sources; same positions and semantics)."""
        partitions, offsets, values = self.poll_columns(
            topic, group, max_records=max_records, timeout_s=timeout_s
        )
        return list(zip(partitions, offsets, values, strict=True))

    def poll_columns(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> tuple[list[int], list[int], list[bytes]]:
        """``poll_values`` as three lists (partitions, offsets, values): no object per message
        outlives the call, so a large poll leaves Python's cyclic garbage collector little to
        traverse."""
        columns: tuple[list[int], list[int], list[bytes]] = ([], [], [])
        self._poll(topic, group, max_records, timeout_s, lambda chunk: _add_columns(columns, chunk))
        return columns

    def _poll(
        self,
        topic: str,
        group: str,
        max_records: int,
        timeout_s: float,
        take: Callable[[list[Message]], object],
    ) -> None:
        """Wait up to ``timeout_s`` for a first message, then hand ``take`` what is already
        fetched, up to ``max_records`` in all, in chunks of at most :data:`_CHUNK` (each
        consumed ``Message`` is tracked by the cyclic garbage collector: holding a whole
        large poll at once would make it run full collections).

        The wait is cut in slices of :data:`_WAIT_SLICE_S`, the consumer lock released in
        between: a commit from another thread (a stream source reads ahead in one) waits for
        a slice, not for the whole wait."""
        validate_group(group)
        validate_poll(max_records, timeout_s)
        count = self._partition_count(topic)
        deadline = time.monotonic() + timeout_s
        while not self._poll_slice(topic, group, count, max_records, deadline, take):
            if time.monotonic() >= deadline:
                return

    def _poll_slice(
        self,
        topic: str,
        group: str,
        count: int,
        max_records: int,
        deadline: float,
        take: Callable[[list[Message]], object],
    ) -> bool:
        """One slice of :meth:`_poll`'s wait; True once messages were handed to ``take``."""
        from confluent_kafka import KafkaException

        with self._consumer_lock:
            try:
                consumer = self._assigned_consumer(topic, group, count)
                wait = min(max(deadline - time.monotonic(), 0.0), _WAIT_SLICE_S)
                first = consumer.poll(wait)
                if first is None:
                    return False
                take([first])
                # what is already fetched, without waiting for more
                wanted = min(max_records - 1, _MAX_CONSUME)
                while wanted > 0:
                    asked = min(wanted, _CHUNK)
                    chunk = consumer.consume(num_messages=asked, timeout=0)
                    take(chunk)
                    wanted -= len(chunk)
                    if len(chunk) < asked:
                        break
                return True
            except KafkaException as exc:
                # a consumer in an unknown state re-reads from the committed offsets
                self._drop_consumer(topic, group)
                raise _unavailable("poll", exc) from exc
            except (NotFound, Unavailable):
                self._drop_consumer(topic, group)
                raise

    def _assigned_consumer(self, topic: str, group: str, count: int) -> Consumer:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        consumer = self._consumer(topic, group)
        if (topic, group) not in self._assigned:
            committed = self._committed_offsets(consumer, topic, count)
            consumer.assign(
                [
                    TopicPartition(topic, partition, committed.get(partition, OFFSET_BEGINNING))
                    for partition in range(count)
                ]
            )
            self._assigned.add((topic, group))
        return consumer

    @staticmethod
    def _event(message: Message) -> Event:
        from confluent_kafka import KafkaError

        error = message.error()
        if error is not None:
            if error.code() in (
                KafkaError.UNKNOWN_TOPIC_OR_PART,
                KafkaError._UNKNOWN_PARTITION,
                KafkaError._UNKNOWN_TOPIC,
            ):
                raise NotFound(
                    f"topic {message.topic()!r} is gone: {_error_text(error)}",
                    hint="create the topic again, or read another one",
                )
            raise Unavailable(f"Kafka poll failed: {_error_text(error)}", hint="retry")
        kind, milliseconds = message.timestamp()
        timestamp = (
            datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
            if kind and milliseconds >= 0
            else datetime.now(tz=UTC)
        )
        raw_headers = message.headers() or []
        pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
        headers = tuple(
            (name, value.encode() if isinstance(value, str) else value or b"")
            for name, value in pairs
        )
        return Event(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value() or b"",
            timestamp=timestamp,
            headers=headers,
        )

    def commit(self, topic: str, group: str, positions: Mapping[int, int]) -> None:
        validate_group(group)
        checked = validate_positions(positions, self._partition_count(topic))
        if not checked:
            return
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(topic, p, offset) for p, offset in sorted(checked.items())]
        with self._consumer_lock:
            try:
                result = self._consumer(topic, group).commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                raise _unavailable(f"commit for group {group!r}", exc) from exc
        for partition in result or []:
            if partition.error is not None:
                raise Unavailable(
                    f"Kafka refused the commit of partition {partition.partition} for group "
                    f"{group!r}: {_error_text(partition.error)}",
                    hint="another consumer may be subscribed with this group; use your own",
                )

    def committed(self, topic: str, group: str) -> dict[int, int]:
        validate_group(group)
        count = self._partition_count(topic)
        with self._consumer_lock:
            return self._committed_offsets(self._consumer(topic, group), topic, count)

    def _committed_offsets(self, consumer: Consumer, topic: str, count: int) -> dict[int, int]:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            found = consumer.committed(
                [TopicPartition(topic, partition) for partition in range(count)],
                timeout=self.timeout_s,
            )
        except KafkaException as exc:
            raise _unavailable("committed-offsets request", exc) from exc
        # partitions never committed come back as OFFSET_INVALID (-1001)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def close(self) -> None:
        """Flush the producer and close the consumers; a later call reconnects as a new
        consumer (from the committed offsets)."""
        with self._consumer_lock:
            for topic, group in list(self._consumers):
                self._drop_consumer(topic, group)
        with self._producer_lock:
            if self._producer is not None:
                self._producer.flush(self.timeout_s)
                self._producer = None
        self._admin = None

    def __repr__(self) -> str:
        return f"KafkaEventLog({self.url!r})"


def _add_columns(columns: tuple[list[int], list[int], list[bytes]], chunk: list[Message]) -> None:
    """Append a chunk of messages' partitions, offsets and values (C-level maps, no Python
    frame per message); a message with an error raises what ``poll`` raises."""
    if not chunk:
        return
    from confluent_kafka import Message

    if any(map(Message.error, chunk)):
        for message in chunk:
            KafkaEventLog._event(message)
    partitions = list(map(Message.partition, chunk))
    offsets = list(map(Message.offset, chunk))
    values = list(map(Message.value, chunk))
    if None in partitions or None in offsets or None in values:
        # a message without a value (a tombstone) reads as empty, as in poll
        columns[0].extend(partition or 0 for partition in partitions)
        columns[1].extend(offset or 0 for offset in offsets)
        columns[2].extend(value or b"" for value in values)
        return
    # no None in them: the lists hold what the annotations say
    columns[0].extend(cast(list[int], partitions))
    columns[1].extend(cast(list[int], offsets))
    columns[2].extend(cast(list[bytes], values))
