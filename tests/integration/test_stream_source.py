"""The stream source over both event logs: decoding, poisoned messages, Avro, acknowledgement."""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from decisionloop.backends.events.base import Event, EventLog, NewEvent
from decisionloop.backends.events.local import LocalEventLog
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch, Source
from decisionloop.data.decoding import decode_json as _decode_json
from decisionloop.data.decoding import decoded_columns as _decoded_columns
from decisionloop.data.decoding import json_columns as _json_columns
from decisionloop.data.streams import (
    MAX_PAYLOAD_BYTES,
    EventLogSource,
    StreamUrl,
    parse_stream_url,
)
from decisionloop.errors import Invalid, NotFound, Unavailable

OpenLog = Callable[[], EventLog]


def _topic(log: EventLog, partitions: int = 1) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:12]
    topic = f"stream-{suffix}"
    log.create_topic(topic, partitions)
    return topic, f"group-{suffix}"


def _json(*rows: object) -> list[NewEvent]:
    return [NewEvent(value=json.dumps(row).encode()) for row in rows]


def _source(log: EventLog, topic: str, group: str, **options: Any) -> EventLogSource:
    return EventLogSource(f"test://{topic}", log, topic, group, max_wait_s=0.3, **options)


def _read_all(source: EventLogSource, max_batch_rows: int = 100_000) -> list[RawBatch]:
    return list(source.read(max_batch_rows=max_batch_rows))


def _table(batches: list[RawBatch]) -> pa.Table:
    tables = [batch.table for batch in batches if batch.table is not None]
    assert len(tables) == len(batches)
    return pa.concat_tables(tables, promote_options="permissive")


def test_json_rows_round_trip_into_arrow(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    rows = [
        {"id": 1, "name": "ann", "score": 1, "vip": True, "mixed": 1, "nested": {"a": [1]}},
        {"id": 2, "name": "bob", "score": 2.5, "vip": False, "mixed": "x", "nested": None},
        {"id": 3, "name": None, "score": None, "vip": None, "mixed": 2.5, "extra": "late"},
    ]
    log.append(topic, _json(*rows))
    source = _source(log, topic, group)
    assert isinstance(source, Source)

    batches = _read_all(source)

    assert len(batches) == 1
    assert batches[0].origin == f"{topic}:0@0-2"
    table = _table(batches)
    assert table.column_names == [
        *["id", "name", "score", "vip", "mixed", "nested", "extra"],
        *[POSITION, ERROR, PAYLOAD],
    ]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("name").type == pa.string()
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("vip").type == pa.bool_()
    assert table.schema.field("mixed").type == pa.string()
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("score").to_pylist() == [1.0, 2.5, None]
    assert table.column("vip").to_pylist() == [True, False, None]
    assert table.column("mixed").to_pylist() == ["1", "x", "2.5"]
    assert table.column("nested").to_pylist() == ['{"a": [1]}', None, None]
    assert table.column("extra").to_pylist() == [None, None, "late"]
    assert table.column(POSITION).to_pylist() == [f"{topic}/0@{i}" for i in range(3)]
    assert table.column(ERROR).to_pylist() == [None, None, None]
    assert table.column(PAYLOAD).to_pylist() == [None, None, None]


def test_positions_cover_every_partition(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log, partitions=3)
    appended = log.append(
        topic,
        [NewEvent(value=json.dumps({"n": i}).encode(), key=f"k{i}".encode()) for i in range(30)],
    )

    table = _table(_read_all(_source(log, topic, group)))

    expected = {f"{p.topic}/{p.partition}@{p.offset}" for p in appended}
    assert set(table.column(POSITION).to_pylist()) == expected
    assert sorted(table.column("n").to_pylist()) == list(range(30))


def test_poisoned_messages_become_error_rows_and_the_stream_continues(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    huge = b"z" * 1_000_000
    values = [
        b'{"n": 1}',
        b"not json at all",
        b"[1, 2, 3]",
        b'"just a string"',
        b"\xff\xfe{bad utf-8}",
        huge,
        b'{"_position": "forged"}',
        b'{"n": 1' + b"0" * 5000 + b"}",  # beyond Python's int conversion limit
        b'{"n": 2}',
    ]
    log.append(topic, [NewEvent(value=value) for value in values])

    table = _table(_read_all(_source(log, topic, group)))

    assert table.num_rows == len(values)
    assert table.column("n").to_pylist() == [1, None, None, None, None, None, None, None, 2]
    errors = table.column(ERROR).to_pylist()
    assert errors[0] is None
    assert errors[-1] is None
    assert errors[1].startswith("not valid JSON")
    assert errors[2] == "a JSON array, not an object"
    assert errors[3] == "a JSON string, not an object"
    assert errors[4] == "not valid UTF-8 (byte 0)"
    assert errors[5].startswith("not valid JSON")
    assert f"cut to {MAX_PAYLOAD_BYTES} of 1000000 bytes" in errors[5]
    assert errors[6] == "uses the reserved key '_position'"
    assert errors[7].startswith("not valid JSON: Exceeds the limit")
    payloads = table.column(PAYLOAD).to_pylist()
    assert payloads[0] is None
    assert payloads[-1] is None
    assert payloads[1] == "not json at all"
    assert payloads[2] == "[1, 2, 3]"
    assert payloads[4] == "\ufffd\ufffd{bad utf-8}"
    assert payloads[5] == "z" * MAX_PAYLOAD_BYTES
    assert table.column(POSITION).to_pylist() == [f"{topic}/0@{i}" for i in range(len(values))]


def test_awkward_messages_never_stop_the_stream(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    values = [
        b'{"n": 1, "s": "\\ud800"}',  # an unpaired surrogate escape: no UTF-8 text holds it
        b'{"n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than any parser's stack
        b'{"n": 2, "s": "ok"}\r\n',  # a line ending after the object
        b'{\n  "n": 3,\n  "s": "pretty"\n}',
        b'{"n": 4, "s": "tab\there"}',  # a raw control character in a string
        b'{"n": 5, "s": "2024-05-06T07:08:09Z"}',  # text, not a timestamp
    ]
    log.append(topic, [NewEvent(value=value) for value in values])

    table = _table(_read_all(_source(log, topic, group)))

    assert table.column("n").to_pylist() == [None, None, 2, 3, None, 5]
    assert table.column("s").to_pylist() == [
        None,
        None,
        "ok",
        "pretty",
        None,
        "2024-05-06T07:08:09Z",
    ]
    errors = table.column(ERROR).to_pylist()
    assert errors[0] == "not valid JSON: unpaired surrogate \\ud800"
    assert errors[1] == "JSON nested too deeply (payload cut to 65536 of 200007 bytes)"
    assert errors[2:4] == [None, None]
    assert errors[4].startswith("not valid JSON: Invalid control character")
    assert errors[5] is None
    assert table.column(PAYLOAD).to_pylist()[0] == '{"n": 1, "s": "\\ud800"}'


# -- the JSON fast path gives what decoding message by message gives ---------------------------


def _decoded_table(values: list[bytes], *, fast: bool) -> pa.Table | None:
    columns = _json_columns(values) if fast else _decoded_columns(values, _decode_json)
    if columns is None:
        return None
    return pa.table(
        [*columns.arrays, columns.errors, columns.payloads],
        names=[*columns.names, ERROR, PAYLOAD],
    )


def _fast_matches_exact(values: list[bytes]) -> bool:
    """Whether the fast path took the batch; where it did, it must equal the exact path."""
    exact = _decoded_table(values, fast=False)
    fast = _decoded_table(values, fast=True)
    assert exact is not None
    if fast is None:
        return False
    assert fast.schema == exact.schema
    # through JSON text, where NaN equals NaN
    assert json.dumps(fast.to_pylist()) == json.dumps(exact.to_pylist())
    return True


FAST_BATCHES: dict[str, list[bytes]] = {
    "flat records": [
        b'{"id": 1, "name": "ann", "score": 1, "vip": true, "note": null}',
        b'{"id": 2, "name": "b\\u00f8b", "score": 2.5, "vip": false, "extra": "late"}',
        b'{"name": "\xc3\xa9\\n\\"", "id": -9223372036854775808, "score": -0.5}',
    ],
    "poisoned messages": [
        b'{"n": 1}',
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"",
        b"   ",
        b'{"n": "\xff"}',
        b'{"_error": "forged"}',
        b'{"n": ',
        b'{"n": 1}x',
        b'{"n": 1,}',
        b'{"n": "\\ud83d"}',
        b'{"n": "a\x01b"}',
        b'{"n": 2}',
    ],
    "every message poisoned": [b"nope", b'{"n":', b"[]"],
    "whitespace and lines": [b' {"n": 1}\n', b'{"n": 2}\r\n', b'{\n "n": 3\n}', b'\t{"n": 4} '],
    "dates stay text": [b'{"at": "2024-01-02"}', b'{"at": "2024-01-02 03:04:05", "n": 1}'],
    "nested as JSON text": [
        b'{"o": {"b": [1, 2.5], "a": null}, "l": [], "n": 1}',
        b'{"o": {}, "l": [{"z": 1}], "n": 2}',
        b'{"o": null, "n": 3}',
    ],
    "reserved names as values": [b'{"s": "_position"}', b'{"s": "_payload"}'],
    "only empty objects": [b"{}", b"{ }"],
    "keys always null": [b'{"a": null}', b'{"a": null, "b": 1}'],
}

EXACT_BATCHES: dict[str, list[bytes]] = {
    "mixed types": [b'{"a": 1}', b'{"a": "x"}', b'{"a": true}', b'{"a": 2.5}'],
    "objects and scalars": [b'{"a": {"b": 1}}', b'{"a": [1]}', b'{"a": 1}'],
    "duplicate keys": [b'{"a": 1, "a": 2}'],
    "integers beyond int64": [b'{"a": 1}', b'{"a": 99999999999999999999}'],
    "integers beyond floats": [b'{"a": 9007199254740993}', b'{"a": 0.5}'],
    "negative zero": [b'{"a": -0}', b'{"a": 1.5}'],
    "not finite": [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'],
    "Arrow-only numbers": [b'{"a": Inf}', b'{"a": -NaN}', b'{"a": 1e400}'],
    "a reserved key escaped": [b'{"\\u005fposition": 1}'],
    "two objects in one message": [b'{"a": 1}{"a": 2}', b'{"a": 3}'],
    "messages that only parse together": [b'{"a":', b'{"b": 1}}', b'{"c": 1}{"d": 2}'],
    "deeply nested": [b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b'{"a": 1}'],
    "many brackets, shallow": [b'{"a": [' + b"{}, " * 2000 + b"{}]}", b'{"a": []}'],
    "huge integer": [b'{"a": 1' + b"0" * 5000 + b"}"],
}


@pytest.mark.parametrize("name", list(FAST_BATCHES))
def test_fast_json_path_takes_the_batch_and_matches_the_exact_path(name: str) -> None:
    assert _fast_matches_exact(FAST_BATCHES[name])


@pytest.mark.parametrize("name", list(EXACT_BATCHES))
def test_what_the_fast_path_cannot_tell_goes_to_the_exact_path(name: str) -> None:
    _fast_matches_exact(EXACT_BATCHES[name])


def test_fast_json_path_matches_the_exact_path_on_random_batches() -> None:
    rng = random.Random(20240506)
    atoms = [
        *[b"1", b"-7", b"0", b"-0", b"2.5", b"1e3", b"-0.0", b"9223372036854775808"],
        *[b'"s"', b'"2021-02-03"', b'"2021-02-03 04:05:06"', b'"\\u00e9"', b'"\\ud800"'],
        *[b"true", b"false", b"null", b"[1]", b'{"q": 1}', b"[]", b"{}", b"NaN", b'"\xc3"'],
    ]
    keys = [b'"a"', b'"b"', b'"c"', b'"_error"', b'"d e"']
    junk = [b"", b" ", b"x", b"{", b"}", b",", b"\n", b'"', b"[", b"]", b":", b"\x00"]
    taken = 0
    for _ in range(400):
        # per batch, a few value kinds per key: from always consistent to freely mixed
        kinds = {key: rng.sample(atoms, rng.choice([1, 1, 2, 4])) for key in keys}
        values = []
        for _ in range(rng.randint(1, 30)):
            fields = rng.sample(keys, rng.randint(0, len(keys)))
            value = b"{" + b", ".join(k + b": " + rng.choice(kinds[k]) for k in fields) + b"}"
            if rng.random() < 0.05:
                cut = rng.randint(0, len(value))
                value = value[:cut] + rng.choice(junk) + value[cut:]
            values.append(value)
        taken += _fast_matches_exact(values)
    assert taken > 50  # the fast path took a good share of them


AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "paid", "type": "boolean"},
        {"name": "coupon", "type": ["null", "string"], "default": None},
        {"name": "items", "type": {"type": "array", "items": "string"}},
    ],
}


def _avro(record: Mapping[str, Any]) -> bytes:
    import fastavro

    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(AVRO_SCHEMA), dict(record))
    return buffer.getvalue()


def test_avro_values_decode_with_the_schema(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    first = {"id": 7, "customer": "ann", "amount": 9.5, "paid": True, "coupon": None, "items": []}
    second = {
        "id": 8,
        "customer": "bø",
        "amount": 1.0,
        "paid": False,
        "coupon": "X",
        "items": ["a"],
    }
    log.append(
        topic,
        [
            NewEvent(value=_avro(first)),
            NewEvent(value=_avro(first)[:3]),  # truncated
            NewEvent(value=_avro(second) + b"\x00trailing"),
            NewEvent(value=_avro(second)),
        ],
    )

    source = _source(log, topic, group, value_format="avro", avro_schema=AVRO_SCHEMA)
    table = _table(_read_all(source))

    assert table.column("id").to_pylist() == [7, None, None, 8]
    assert table.schema.field("id").type == pa.int64()
    assert table.column("customer").to_pylist() == ["ann", None, None, "bø"]
    assert table.column("amount").to_pylist() == [9.5, None, None, 1.0]
    assert table.column("paid").to_pylist() == [True, None, None, False]
    assert table.column("coupon").to_pylist() == [None, None, None, "X"]
    assert table.column("items").to_pylist() == ["[]", None, None, '["a"]']
    errors = table.column(ERROR).to_pylist()
    assert errors[0] is None
    assert errors[3] is None
    assert errors[1].startswith("not decodable Avro")
    assert errors[2] == "not decodable Avro: 9 bytes after the record"
    assert table.column(PAYLOAD).to_pylist()[2] is not None


def test_avro_needs_a_record_schema(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    with pytest.raises(Invalid, match="needs an Avro schema"):
        next(_source(log, topic, group, value_format="avro").read())
    with pytest.raises(Invalid, match="must be a record"):
        next(_source(log, topic, group, value_format="avro", avro_schema='"string"').read())


def test_acknowledge_commits_and_unacknowledged_batches_are_redelivered(
    open_log: OpenLog,
) -> None:
    writer = open_log()
    topic, group = _topic(writer)
    writer.append(topic, _json(*({"n": i} for i in range(10))))

    first_log = open_log()
    batches = _source(first_log, topic, group).read(max_batch_rows=4)
    acknowledged = next(batches)
    assert acknowledged.table is not None
    assert acknowledged.table.column("n").to_pylist() == [0, 1, 2, 3]
    acknowledged.acknowledge()
    assert first_log.committed(topic, group) == {0: 4}
    unacknowledged = next(batches)
    assert unacknowledged.table is not None
    assert unacknowledged.table.column("n").to_pylist() == [4, 5, 6, 7]
    assert unacknowledged.origin == f"{topic}:0@4-7"
    first_log.close()  # a crash before the second batch was stored

    table = _table(_read_all(_source(open_log(), topic, group)))

    assert table.column("n").to_pylist() == [4, 5, 6, 7, 8, 9]
    assert writer.committed(topic, group) == {0: 4}


def test_acknowledgements_never_move_offsets_back(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(6))))
    first, second = _source(log, topic, group).read(max_batch_rows=3)

    second.acknowledge()
    first.acknowledge()
    first.acknowledge()

    assert log.committed(topic, group) == {0: 6}


def test_follow_waits_for_new_messages_until_stopped(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json({"n": 0}))
    source = _source(log, topic, group)
    seen: list[int] = []

    def producer() -> None:
        open_log().append(topic, _json({"n": 1}, {"n": 2}))

    timer = threading.Timer(0.5, producer)
    timer.start()
    for batch in source.read(follow=True):
        assert batch.table is not None
        seen += batch.table.column("n").to_pylist()
        batch.acknowledge()
        if len(seen) >= 3:
            source.stop()
    timer.join()

    assert seen == [0, 1, 2]
    assert log.committed(topic, group) == {0: 3}


def test_batches_are_bounded_and_polled_only_on_demand(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(25))))
    polls: list[int] = []

    class CountingLog:
        """Delegates to the log, counting polls (to see when the source reads)."""

        def __init__(self, inner: EventLog) -> None:
            self.inner = inner
            self.url = inner.url
            self.capabilities = inner.capabilities

        def poll(self, topic: str, group: str, **options: Any) -> list[Event]:
            polls.append(options["max_records"])
            return self.inner.poll(topic, group, **options)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    counting = CountingLog(log)
    source = EventLogSource("test://counting", counting, topic, group, max_wait_s=0.3)
    batches = source.read(max_batch_rows=10)
    assert polls == []  # a generator: nothing is read before the consumer asks
    sizes = []
    for batch in batches:
        assert batch.table is not None
        sizes.append(batch.table.num_rows)
    assert sizes == [10, 10, 5]
    assert all(max_records <= 10 for max_records in polls)


class RecordingLog:
    """Delegates to a log, recording each poll as (timeout asked, messages handed), and
    raising ``fail`` from the poll numbered ``fail_at`` (to see what the source reads ahead,
    how long it waits, and where its errors go)."""

    def __init__(self, inner: EventLog, fail_at: int = -1, fail: Exception | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self.capabilities = inner.capabilities
        self.polls: list[tuple[float, int]] = []
        self.fail_at, self.fail = fail_at, fail

    def poll(self, topic: str, group: str, **options: Any) -> list[Event]:
        if len(self.polls) == self.fail_at and self.fail is not None:
            raise self.fail
        events = self.inner.poll(topic, group, **options)
        self.polls.append((options["timeout_s"], len(events)))
        return events

    def polled(self) -> int:
        return sum(count for _, count in self.polls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_next_batch_is_read_ahead_but_never_more(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(50))))
    recording = RecordingLog(log)
    source = EventLogSource("test://ahead", recording, topic, group, max_wait_s=0.3)
    batches = source.read(max_batch_rows=10)

    first = next(batches)

    _wait_for(lambda: recording.polled() >= 20)  # the second batch, read while we hold one
    time.sleep(0.3)
    assert recording.polled() == 20  # and no third
    assert first.table is not None
    assert first.table.column("n").to_pylist() == list(range(10))
    rest = [batch.table.column("n").to_pylist() for batch in batches if batch.table is not None]
    assert rest == [list(range(k, k + 10)) for k in range(10, 50, 10)]


def test_a_batch_read_ahead_is_dropped_at_stop_and_read_again(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(20))))
    recording = RecordingLog(log)
    source = EventLogSource("test://stop", recording, topic, group, max_wait_s=0.3)
    batches = source.read(follow=True, max_batch_rows=10)
    first = next(batches)
    first.acknowledge()
    _wait_for(lambda: recording.polled() >= 20)

    source.stop()

    assert list(batches) == []  # the batch read ahead is not handed out after stop
    source.close()
    assert not [t for t in threading.enumerate() if t.name == "decisionloop-read-ahead"]
    again = _table(_read_all(_source(open_log(), topic, group)))
    assert again.column("n").to_pylist() == list(range(10, 20))


def test_an_error_while_reading_ahead_reaches_the_consumer(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(30))))
    failing = RecordingLog(log, fail_at=2, fail=Unavailable("the broker is gone"))
    source = EventLogSource("test://fail", failing, topic, group, max_wait_s=0.3)
    batches = source.read(max_batch_rows=10)

    assert next(batches).table is not None
    assert next(batches).table is not None
    with pytest.raises(Unavailable, match="the broker is gone"):
        next(batches)


def test_closing_the_source_ends_the_reading_thread(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(30))))
    source = _source(log, topic, group)
    batches = source.read(follow=True, max_batch_rows=10)
    next(batches)

    source.close()  # while the helper reads the next batch, or waits for more

    assert not [t for t in threading.enumerate() if t.name == "decisionloop-read-ahead"]
    batches.close()


def test_a_drain_ends_once_polls_waited_max_wait_in_all(open_log: OpenLog) -> None:
    log = open_log()
    topic, group = _topic(log)
    log.append(topic, _json(*({"n": i} for i in range(25))))
    recording = RecordingLog(log)
    source = EventLogSource("test://quiet", recording, topic, group, max_wait_s=0.4)

    sizes = [batch.table.num_rows for batch in source.read() if batch.table is not None]

    assert sum(sizes) == 25
    # the polls after the last message: the one that ended the batch and the one that ended
    # the drain share max_wait_s (not max_wait_s each)
    last = max(i for i, (_, count) in enumerate(recording.polls) if count)
    trailing = recording.polls[last + 1 :]
    assert all(count == 0 for _, count in trailing)
    assert sum(timeout for timeout, _ in trailing) <= 0.4 + 0.05


def test_unknown_topic_raises_not_found(open_log: OpenLog) -> None:
    source = _source(open_log(), f"missing-{uuid.uuid4().hex[:8]}", "group")
    with pytest.raises(NotFound):
        next(source.read())


def test_from_url_opens_the_local_log(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = LocalEventLog(f"eventlog://{path}")
    log.create_topic("orders")
    log.append("orders", _json({"n": 1}))
    log.close()

    source = EventLogSource.from_url(f"eventlog://{path}?topic=orders&group=g1")
    table = _table(list(source.read()))
    batch_log = source.log
    source.close()

    assert table.column("n").to_pylist() == [1]
    assert source.group == "g1"
    assert isinstance(batch_log, LocalEventLog)
    assert batch_log.path == path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "kafka://127.0.0.1:9092/orders?group=g&format=json",
            StreamUrl("kafka://127.0.0.1:9092", "orders", {"group": "g", "format": "json"}),
        ),
        ("kafka://a:1,b:2/orders.v2", StreamUrl("kafka://a:1,b:2", "orders.v2", {})),
        (
            "eventlog:///data/events.db?topic=t&format=avro",
            StreamUrl("eventlog:///data/events.db", "t", {"format": "avro"}),
        ),
        (
            "eventlog://.decisionloop/events.db?topic=t",
            StreamUrl("eventlog://.decisionloop/events.db", "t", {}),
        ),
    ],
)
def test_parse_stream_url(url: str, expected: StreamUrl) -> None:
    assert parse_stream_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "kafka://127.0.0.1:9092",
        "eventlog:///data/events.db",
        "kafka://h:1/t?format=xml",
        "kafka://h:1/t?grp=g",
        "kafka://h:1/t?group=a&group=b",
        "kafka://h:1/bad topic",
        "http://h/t",
    ],
)
def test_parse_stream_url_refuses(url: str) -> None:
    with pytest.raises(Invalid):
        parse_stream_url(url)
