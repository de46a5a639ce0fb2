"""The event log Protocol: partitioned, append-only topics read by consumer groups.

An event log holds *topics*; each topic has a fixed number of *partitions*; each partition is
an ordered sequence of events numbered by *offset* (0, 1, 2, ...). Producers ``append``;
consumer groups ``poll`` and ``commit`` the next offset to read per partition. Delivery is
at-least-once: whatever a group has not committed is delivered again to the group's next
consumer. The same model as Kafka, so the embedded log and Kafka are interchangeable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from decisionloop.errors import Invalid, TooLarge

__all__ = [
    "Capabilities",
    "Event",
    "EventLog",
    "EventPosition",
    "NewEvent",
    "choose_partition",
    "murmur2",
    "validate_group",
    "validate_topic",
]

#: Kafka's rule for topic names, used by every event log so topics can move between them.
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
MAX_GROUP_LENGTH = 255


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: ``value`` bytes, an optional ``key`` (events with the same key go to
    the same partition, so they stay in order) and optional ``headers``."""

    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def size(self) -> int:
        """Bytes counted against :attr:`Capabilities.max_event_bytes`."""
        key = len(self.key) if self.key is not None else 0
        return len(self.value) + key + sum(len(n.encode()) + len(v) for n, v in self.headers)


@dataclass(frozen=True, slots=True)
class EventPosition:
    """Where an appended event was stored."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Event:
    """An event as read back: its position, key, value, headers and append time (UTC)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: datetime
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> EventPosition:
        return EventPosition(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an implementation offers beyond the Protocol's common ground."""

    #: largest event (value + key + headers) ``append`` accepts; larger ones raise TooLarge
    max_event_bytes: int
    #: processes on other machines can append and poll (Kafka), not only this machine's
    shared_across_hosts: bool
    #: the stored events survive a restart of the log's server (always for the local log;
    #: for Kafka it depends on the broker's storage, and the test broker keeps them in memory)
    persistent: bool


@runtime_checkable
class EventLog(Protocol):
    """Partitioned append-only topics with consumer-group offsets.

    * ``create_topic`` is idempotent; a different partition count for an existing topic raises
      :class:`~decisionloop.errors.Conflict`.
    * ``append`` returns once every event is durably stored (the local log: committed to
      SQLite with ``synchronous=FULL``; Kafka: acknowledged by all in-sync replicas). Events
      with a key go to ``murmur2(key) % partitions`` (Kafka's default partitioner), events
      without one round-robin. Positions come back in the order of ``records``.
    * ``poll`` returns up to ``max_records`` events after the group's position, in offset order
      within each partition, as soon as at least one is available, or ``[]`` after
      ``timeout_s``. The position starts at the group's committed offsets (or the start of the
      partition) and then advances in memory: an instance is *one consumer* per group, and a
      new instance (a restart) starts again at the committed offsets, so uncommitted events
      are delivered again (at-least-once). Groups do not share partitions between consumers:
      run one consumer per group at a time.
    * ``commit`` records, per partition, the next offset the group will read; ``committed``
      reads them back (partitions never committed are absent).
    * An unknown topic raises :class:`~decisionloop.errors.NotFound` everywhere but
      ``create_topic``; a bad topic or group name raises :class:`~decisionloop.errors.Invalid`;
      an unreachable server raises :class:`~decisionloop.errors.Unavailable`.
    """

    url: str
    capabilities: Capabilities

    def create_topic(self, topic: str, partitions: int = 1) -> None: ...

    def append(self, topic: str, records: Sequence[NewEvent]) -> list[EventPosition]: ...

    def poll(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[Event]: ...

    def commit(self, topic: str, group: str, positions: Mapping[int, int]) -> None: ...

    def committed(self, topic: str, group: str) -> dict[int, int]: ...

    def close(self) -> None: ...


def validate_topic(topic: str) -> str:
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise Invalid(
            f"invalid topic name {topic!r}",
            hint="topic names are 1-249 letters, digits, '.', '_' or '-' (Kafka's rule)",
        )
    return topic


def validate_group(group: str) -> str:
    if not isinstance(group, str) or not group or len(group) > MAX_GROUP_LENGTH:
        raise Invalid(
            f"invalid consumer group name {group!r}",
            hint=f"a group is a non-empty name of at most {MAX_GROUP_LENGTH} characters",
        )
    return group


def validate_poll(max_records: int, timeout_s: float) -> None:
    if max_records < 1:
        raise Invalid(f"max_records must be at least 1, got {max_records}", hint="use e.g. 1000")
    if timeout_s < 0:
        raise Invalid(f"timeout_s must not be negative, got {timeout_s}", hint="use e.g. 1.0")


def validate_records(records: Sequence[NewEvent], max_event_bytes: int) -> None:
    for index, record in enumerate(records):
        if not isinstance(record, NewEvent):
            raise Invalid(
                f"record {index} is a {type(record).__name__}, not a NewEvent",
                hint="append NewEvent(value=b'...', key=b'...' or None)",
            )
        if not isinstance(record.value, bytes) or not isinstance(record.key, bytes | None):
            raise Invalid(
                f"record {index}: key and value must be bytes",
                hint="encode text first, e.g. json.dumps(row).encode()",
            )
        if record.size > max_event_bytes:
            raise TooLarge(
                f"record {index} has {record.size} bytes, more than the log's limit of "
                f"{max_event_bytes}",
                hint="store large payloads in the artifact store and append a reference",
            )


def validate_positions(positions: Mapping[int, int], partitions: int) -> dict[int, int]:
    checked: dict[int, int] = {}
    for partition, offset in positions.items():
        if not 0 <= partition < partitions:
            raise Invalid(
                f"no partition {partition} (the topic has {partitions})",
                hint="commit the partitions that poll returned",
            )
        if offset < 0:
            raise Invalid(
                f"offset {offset} for partition {partition} is negative",
                hint="commit the next offset to read: the last processed offset + 1",
            )
        checked[int(partition)] = int(offset)
    return checked


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (as in the Java client's ``Utils.murmur2``), as a signed 32-bit int."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def choose_partition(key: bytes | None, partitions: int, counter: int) -> int:
    """The partition for an event: ``murmur2(key)`` like Kafka's Java producer (so keyed events
    land where other Kafka clients would put them), else round-robin by ``counter``."""
    if key is None:
        return counter % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions
