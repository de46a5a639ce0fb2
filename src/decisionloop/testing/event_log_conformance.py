"""A conformance suite for :class:`~decisionloop.backends.events.EventLog` implementations.

In the style of scikit-learn's ``check_estimator``: every check is a plain function raising
:class:`AssertionError` when the log does not behave like the Protocol says. A check takes a
*factory* ``open_log()`` returning a new instance over the same storage (the same SQLite file,
the same brokers), because redelivery is about a *new* consumer of a group::

    import pytest
    from decisionloop.testing.event_log_conformance import EVENT_LOG_CHECKS

    @pytest.mark.parametrize("check", EVENT_LOG_CHECKS, ids=lambda c: c.__name__)
    def test_my_log(check, tmp_path):
        check(lambda: MyEventLog(...))

or all at once with :func:`check_event_log`. Each check uses fresh topic and group names and
closes the instances it opens, so checks can share one log, in any order.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from decisionloop.backends.events.base import (
    Capabilities,
    Event,
    EventLog,
    EventPosition,
    NewEvent,
    murmur2,
)
from decisionloop.errors import Conflict, Invalid, NotFound, TooLarge
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises

__all__ = [
    "EVENT_LOG_CHECKS",
    "EventLogCheck",
    "EventLogFactory",
    "check_append_poll_round_trip",
    "check_commit_then_poll_resumes_after_commit",
    "check_committed_round_trip",
    "check_create_topic_is_idempotent",
    "check_empty_poll_returns_within_timeout",
    "check_event_log",
    "check_event_size_limit",
    "check_groups_are_independent",
    "check_implements_protocol",
    "check_keyed_events_keep_their_partition",
    "check_many_records_in_batches",
    "check_order_within_partition",
    "check_poll_advances_without_commit",
    "check_poll_wakes_up_for_new_events",
    "check_round_robin_without_key",
    "check_uncommitted_events_are_redelivered",
    "check_unknown_topic_and_bad_names",
]

#: ``open_log()``: a new EventLog instance over the same storage
EventLogFactory = Callable[[], EventLog]
EventLogCheck = Callable[[EventLogFactory], None]

_CLOCK_SLACK = timedelta(seconds=5)
#: generous bound for "returned promptly" on a loaded CI machine
_LATENCY_SLACK_S = 3.0


def _names() -> tuple[str, str]:
    """A fresh topic and group, so checks never see each other's events."""
    suffix = uuid.uuid4().hex[:12]
    return f"conformance-{suffix}", f"group-{suffix}"


@contextlib.contextmanager
def _opened(open_log: EventLogFactory) -> Iterator[EventLog]:
    log = open_log()
    try:
        yield log
    finally:
        log.close()


def _poll_exactly(
    log: EventLog, topic: str, group: str, count: int, *, max_records: int = 1000
) -> list[Event]:
    """Poll until ``count`` events arrived (fail after 30 s), then check nothing more comes."""
    events: list[Event] = []
    deadline = time.monotonic() + 30
    while len(events) < count and time.monotonic() < deadline:
        batch = log.poll(topic, group, max_records=max_records, timeout_s=1.0)
        _expect(len(batch) <= max_records, f"poll returned {len(batch)} > {max_records} events")
        events.extend(batch)
    _expect_equal(len(events), count, f"events polled from {topic} by {group}")
    extra = log.poll(topic, group, max_records=max_records, timeout_s=0.3)
    _expect_equal([e.position for e in extra], [], "events after the expected ones")
    return events


def _by_position(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.partition, e.offset))


def _next_offsets(events: list[Event]) -> dict[int, int]:
    result: dict[int, int] = {}
    for event in events:
        result[event.partition] = max(result.get(event.partition, 0), event.offset + 1)
    return result


def check_implements_protocol(open_log: EventLogFactory) -> None:
    with _opened(open_log) as log:
        _expect(isinstance(log, EventLog), f"{type(log).__name__} is not an EventLog")
        _expect(isinstance(log.url, str) and "://" in log.url, f"url {log.url!r} is not a URL")
        capabilities = log.capabilities
        _expect(isinstance(capabilities, Capabilities), "capabilities is not a Capabilities")
        _expect(capabilities.max_event_bytes >= 64 * 1024, "max_event_bytes below 64 KiB")


def check_append_poll_round_trip(open_log: EventLogFactory) -> None:
    """Keys, values and headers come back byte for byte, at the positions append returned."""
    topic, group = _names()
    records = [
        NewEvent(value=bytes(range(256)), key=b"\x00\xff binary key"),
        NewEvent(value=b"", key=None),
        NewEvent(value="héllo wörld ✓".encode(), key=b""),
        NewEvent(value=b'{"a": 1}', key=b"k", headers=(("trace", b"\x01\x02"), ("x", b""))),
    ]
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=1)
        before = datetime.now(tz=UTC)
        positions = log.append(topic, records)
        after = datetime.now(tz=UTC)
        expected_positions = [EventPosition(topic, 0, offset) for offset in range(len(records))]
        _expect_equal(positions, expected_positions, "positions returned by append")
        events = _poll_exactly(log, topic, group, len(records))
    _expect_equal([e.position for e in events], expected_positions, "positions polled")
    _expect_equal([e.value for e in events], [r.value for r in records], "values")
    _expect_equal([e.key for e in events], [r.key for r in records], "keys")
    _expect_equal([e.headers for e in events], [r.headers for r in records], "headers")
    for event in events:
        _expect(
            before - _CLOCK_SLACK <= event.timestamp <= after + _CLOCK_SLACK,
            f"timestamp {event.timestamp} outside the append window {before}..{after}",
        )
        _expect(event.timestamp.tzinfo is not None, "timestamps are timezone-aware (UTC)")


def check_order_within_partition(open_log: EventLogFactory) -> None:
    """Offsets are gap-free from 0 and events come back in append order per partition."""
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=3)
        positions: list[EventPosition] = []
        for start in range(0, 300, 50):
            positions += log.append(
                topic,
                [
                    NewEvent(value=f"{i}".encode(), key=f"key-{i % 7}".encode())
                    for i in range(start, start + 50)
                ],
            )
        events = _poll_exactly(log, topic, group, 300, max_records=64)
    for partition in range(3):
        offsets = [p.offset for p in positions if p.partition == partition]
        _expect_equal(offsets, list(range(len(offsets))), f"offsets in partition {partition}")
        polled = [e for e in events if e.partition == partition]
        _expect_equal(
            [e.offset for e in polled], offsets, f"polled offsets in partition {partition}"
        )
    for key in range(7):
        sequence = [int(e.value) for e in events if e.key == f"key-{key}".encode()]
        _expect_equal(sequence, sorted(sequence), f"order of events with key-{key}")
        _expect_equal(len(sequence), len(range(key, 300, 7)), f"events with key-{key}")


def check_keyed_events_keep_their_partition(open_log: EventLogFactory) -> None:
    """Every event with the same key lands in the same partition, across appends and
    instances: Kafka's ``murmur2(key) % partitions``, as other Kafka clients place them."""
    topic, _ = _names()
    keys = [f"customer-{i}".encode() for i in range(20)]
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=4)
        first = log.append(topic, [NewEvent(value=b"1", key=key) for key in keys])
    with _opened(open_log) as log:
        second = log.append(topic, [NewEvent(value=b"2", key=key) for key in reversed(keys)])
    expected = [(murmur2(key) & 0x7FFFFFFF) % 4 for key in keys]
    _expect_equal([p.partition for p in first], expected, "partitions of keys (murmur2)")
    _expect_equal([p.partition for p in reversed(second)], expected, "partitions, again")
    _expect(len({p.partition for p in first}) > 1, "20 keys all hashed to one partition")


def check_round_robin_without_key(open_log: EventLogFactory) -> None:
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=4)
        positions = log.append(topic, [NewEvent(value=f"{i}".encode()) for i in range(8)])
        counts = [sum(p.partition == partition for p in positions) for partition in range(4)]
        _expect_equal(counts, [2, 2, 2, 2], "unkeyed events per partition")
        events = _poll_exactly(log, topic, group, 8)
    _expect_equal(
        sorted(e.value for e in events), sorted(f"{i}".encode() for i in range(8)), "values"
    )


def check_poll_advances_without_commit(open_log: EventLogFactory) -> None:
    """One instance is one consumer: successive polls continue where the last one stopped."""
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=1)
        log.append(topic, [NewEvent(value=f"{i}".encode()) for i in range(10)])
        events = _poll_exactly(log, topic, group, 10, max_records=4)
        _expect_equal(log.committed(topic, group), {}, "committed offsets without a commit")
    _expect_equal([int(e.value) for e in events], list(range(10)), "values over several polls")


def check_commit_then_poll_resumes_after_commit(open_log: EventLogFactory) -> None:
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=1)
        log.append(topic, [NewEvent(value=f"{i}".encode()) for i in range(10)])
        _poll_exactly(log, topic, group, 10)
        log.commit(topic, group, {0: 6})
    with _opened(open_log) as log:
        _expect_equal(log.committed(topic, group), {0: 6}, "committed offsets, new instance")
        events = _poll_exactly(log, topic, group, 4)
        _expect_equal([e.offset for e in events], [6, 7, 8, 9], "offsets after the commit")
        log.commit(topic, group, _next_offsets(events))
    with _opened(open_log) as log:
        _expect_equal(log.poll(topic, group, timeout_s=0.5), [], "poll after committing all")


def check_uncommitted_events_are_redelivered(open_log: EventLogFactory) -> None:
    """At-least-once: a new consumer of the group gets everything after the last commit."""
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=2)
        log.append(topic, [NewEvent(value=f"{i}".encode(), key=f"{i}".encode()) for i in range(6)])
        first = _poll_exactly(log, topic, group, 6)
    with _opened(open_log) as log:
        again = _poll_exactly(log, topic, group, 6)
    _expect_equal(
        [(e.position, e.value) for e in _by_position(again)],
        [(e.position, e.value) for e in _by_position(first)],
        "events redelivered to a new consumer",
    )


def check_groups_are_independent(open_log: EventLogFactory) -> None:
    topic, group = _names()
    other = f"{group}-other"
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=1)
        log.append(topic, [NewEvent(value=f"{i}".encode()) for i in range(5)])
        log.commit(topic, group, _next_offsets(_poll_exactly(log, topic, group, 5)))
        _expect_equal(log.committed(topic, other), {}, "the other group's committed offsets")
        events = _poll_exactly(log, topic, other, 5)
        _expect_equal([int(e.value) for e in events], list(range(5)), "the other group's events")
        _expect_equal(log.committed(topic, group), {0: 5}, "the first group's offsets")


def check_committed_round_trip(open_log: EventLogFactory) -> None:
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=2)
        log.append(topic, [NewEvent(value=b"x", key=f"{i}".encode()) for i in range(20)])
        _expect_equal(log.committed(topic, group), {}, "committed offsets before any commit")
        log.commit(topic, group, {0: 3, 1: 5})
        _expect_equal(log.committed(topic, group), {0: 3, 1: 5}, "committed offsets")
        log.commit(topic, group, {0: 4})
        _expect_equal(log.committed(topic, group), {0: 4, 1: 5}, "after committing one partition")
        with _raises(Invalid, "commit to partition 7 of a 2-partition topic"):
            log.commit(topic, group, {7: 1})
        with _raises(Invalid, "commit of a negative offset"):
            log.commit(topic, group, {0: -5})
        _expect_equal(log.committed(topic, group), {0: 4, 1: 5}, "after refused commits")


def check_empty_poll_returns_within_timeout(open_log: EventLogFactory) -> None:
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=2)
        for timeout_s in (0.0, 0.5):
            started = time.monotonic()
            events = log.poll(topic, group, max_records=10, timeout_s=timeout_s)
            elapsed = time.monotonic() - started
            _expect_equal(events, [], f"poll of an empty topic (timeout {timeout_s} s)")
            _expect(
                elapsed <= timeout_s + _LATENCY_SLACK_S,
                f"empty poll with timeout {timeout_s} s took {elapsed:.2f} s",
            )


def check_poll_wakes_up_for_new_events(open_log: EventLogFactory) -> None:
    """A waiting poll returns soon after an event is appended, not at its timeout."""
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=1)
        log.append(topic, [NewEvent(value=b"warm-up")])
        _poll_exactly(log, topic, group, 1)
        with _opened(open_log) as producer:
            producer.append(topic, [NewEvent(value=b"warm-up-2")])  # connect before timing
            timer = threading.Timer(0.3, lambda: producer.append(topic, [NewEvent(value=b"late")]))
            started = time.monotonic()
            timer.start()
            try:
                events: list[Event] = []
                while len(events) < 2 and time.monotonic() - started < 20:
                    events += log.poll(topic, group, max_records=10, timeout_s=20)
            finally:
                timer.join()
        elapsed = time.monotonic() - started
    _expect_equal([e.value for e in events], [b"warm-up-2", b"late"], "events seen by the poll")
    _expect(elapsed < 0.3 + _LATENCY_SLACK_S, f"poll woke up after {elapsed:.2f} s")


def check_unknown_topic_and_bad_names(open_log: EventLogFactory) -> None:
    topic, group = _names()
    missing = f"{topic}-missing"
    with _opened(open_log) as log:
        with _raises(NotFound, "poll of an unknown topic"):
            log.poll(missing, group, timeout_s=0.1)
        with _raises(NotFound, "append to an unknown topic"):
            log.append(missing, [NewEvent(value=b"x")])
        with _raises(NotFound, "commit to an unknown topic"):
            log.commit(missing, group, {0: 1})
        with _raises(NotFound, "committed of an unknown topic"):
            log.committed(missing, group)
        for bad in ("", "has space", "slash/topic", "x" * 250, ".."):
            with _raises(Invalid, f"create_topic({bad!r})"):
                log.create_topic(bad)
        log.create_topic(topic)
        with _raises(Invalid, "poll with an empty group"):
            log.poll(topic, "", timeout_s=0.1)
        with _raises(Invalid, "poll with max_records=0"):
            log.poll(topic, group, max_records=0, timeout_s=0.1)
        with _raises(Invalid, "append of a str value"):
            log.append(topic, [NewEvent(value="text")])  # type: ignore[arg-type]
    with _opened(open_log) as log:
        _expect_equal(log.poll(topic, group, timeout_s=0.3), [], "events after refused appends")
        with _raises(NotFound, "poll of the unknown topic, again"):
            log.poll(missing, group, timeout_s=0.1)


def check_create_topic_is_idempotent(open_log: EventLogFactory) -> None:
    topic, group = _names()
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=2)
        log.append(topic, [NewEvent(value=b"kept")])
        log.create_topic(topic, partitions=2)
        with _raises(Conflict, "create_topic with another partition count"):
            log.create_topic(topic, partitions=3)
        with _raises(Invalid, "create_topic with 0 partitions"):
            log.create_topic(f"{topic}-zero", partitions=0)
        events = _poll_exactly(log, topic, group, 1)
    _expect_equal([e.value for e in events], [b"kept"], "events after creating the topic again")


def check_event_size_limit(open_log: EventLogFactory) -> None:
    """Events up to ``max_event_bytes`` round trip; a larger one raises TooLarge, stores nothing."""
    topic, group = _names()
    with _opened(open_log) as log:
        limit = log.capabilities.max_event_bytes
        big = bytes(i % 251 for i in range(min(limit - 1024, 1_000_000)))
        log.create_topic(topic, partitions=1)
        with _raises(TooLarge, f"append of {limit + 1} bytes"):
            log.append(topic, [NewEvent(value=b"small"), NewEvent(value=b"x" * (limit + 1))])
        log.append(topic, [NewEvent(value=big, key=b"big")])
        events = _poll_exactly(log, topic, group, 1)
    _expect(events[0].value == big, f"a {len(big)}-byte value did not round trip byte-exact")


def check_many_records_in_batches(open_log: EventLogFactory) -> None:
    """10,000 events appended 1,000 at a time arrive exactly once, in order per partition."""
    topic, group = _names()
    total, batch = 10_000, 1_000
    with _opened(open_log) as log:
        log.create_topic(topic, partitions=2)
        for start in range(0, total, batch):
            positions = log.append(
                topic,
                [
                    NewEvent(value=f"event-{i:05d}".encode(), key=f"{i % 10}".encode())
                    for i in range(start, start + batch)
                ],
            )
            _expect_equal(len(positions), batch, "positions per append")
        events = _poll_exactly(log, topic, group, total, max_records=batch)
        values = sorted(e.value for e in events)
        _expect_equal(values, [f"event-{i:05d}".encode() for i in range(total)], "values")
        for partition in range(2):
            offsets = [e.offset for e in events if e.partition == partition]
            _expect_equal(offsets, list(range(len(offsets))), f"offsets of partition {partition}")
        log.commit(topic, group, _next_offsets(events))
        _expect_equal(sum(log.committed(topic, group).values()), total, "committed offsets sum")
    with _opened(open_log) as log:
        _expect_equal(log.poll(topic, group, timeout_s=0.3), [], "poll after committing all")


#: Every check, in a sensible order.
EVENT_LOG_CHECKS: list[EventLogCheck] = [
    check_implements_protocol,
    check_append_poll_round_trip,
    check_order_within_partition,
    check_keyed_events_keep_their_partition,
    check_round_robin_without_key,
    check_poll_advances_without_commit,
    check_commit_then_poll_resumes_after_commit,
    check_uncommitted_events_are_redelivered,
    check_groups_are_independent,
    check_committed_round_trip,
    check_empty_poll_returns_within_timeout,
    check_poll_wakes_up_for_new_events,
    check_unknown_topic_and_bad_names,
    check_create_topic_is_idempotent,
    check_event_size_limit,
    check_many_records_in_batches,
]


def check_event_log(open_log: EventLogFactory) -> None:
    """Run every check against logs made by ``open_log``."""
    for check in EVENT_LOG_CHECKS:
        check(open_log)
