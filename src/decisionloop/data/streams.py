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
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

from decisionloop.backends.events import open_event_log
from decisionloop.backends.events.base import Event, EventLog, validate_group, validate_topic
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_GROUP",
    "MAX_PAYLOAD_BYTES",
    "EventLogSource",
    "StreamUrl",
    "ValueFormat",
    "parse_stream_url",
]

ValueFormat = Literal["json", "avro"]
DEFAULT_GROUP = "decisionloop-ingest"
#: the raw value kept in ``_payload`` for a message that did not decode
MAX_PAYLOAD_BYTES = 64 * 1024
#: a micro-batch stops growing past this many value bytes (bounded memory)
MAX_BATCH_BYTES = 64 * 1024 * 1024
_RESERVED = (POSITION, ERROR, PAYLOAD)
_FORMATS = ("json", "avro")
_OPTIONS = ("group", "format")
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}

#: decode one value: the row, or None and the reason it failed
Decoder = Callable[[bytes], tuple[dict[str, Any] | None, str | None]]


class StreamUrl(NamedTuple):
    """A parsed stream URL: the event log's URL, the topic, and ``group`` / ``format``."""

    log_url: str
    topic: str
    options: dict[str, str]


def parse_stream_url(url: str) -> StreamUrl:
    """Split ``kafka://host:port/topic?group=g&format=json`` or
    ``eventlog:///path/events.db?topic=t&group=g&format=json`` into its parts.

    Options are ``group`` (the consumer group; :data:`DEFAULT_GROUP` when absent) and
    ``format`` (``json``, the default, or ``avro``); anything else is refused.
    """
    parts = urlsplit(url)
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise Invalid(
            f"malformed query in stream URL {url}", hint="use ?group=g&format=json"
        ) from exc
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise Invalid(f"stream URL repeats {', '.join(repeated)}: {url}", hint="give each once")
    options = {name: values[0] for name, values in query.items()}
    if parts.scheme == "kafka":
        if not parts.netloc:
            raise Invalid(f"no broker in stream URL {url}", hint="use kafka://host:9092/topic")
        topic = parts.path.strip("/") or options.pop("topic", "")
        log_url = f"kafka://{parts.netloc}"
    elif parts.scheme == "eventlog":
        topic = options.pop("topic", "")
        log_url = f"eventlog://{parts.netloc}{parts.path}"
    else:
        raise Invalid(
            f"not a stream URL: {url}",
            hint="use kafka://host:9092/topic or eventlog:///path/events.db?topic=name",
        )
    if not topic:
        raise Invalid(
            f"stream URL names no topic: {url}",
            hint="kafka://host:9092/TOPIC, or eventlog:///path/events.db?topic=TOPIC",
        )
    validate_topic(topic)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise Invalid(
            f"unknown stream URL option(s) {', '.join(unknown)}: {url}",
            hint=f"known options: {', '.join(_OPTIONS)}",
        )
    if options.get("format", "json") not in _FORMATS:
        raise Invalid(
            f"unknown stream format {options['format']!r}: {url}",
            hint=f"use format={' or format='.join(_FORMATS)}",
        )
    if "group" in options:
        validate_group(options["group"])
    return StreamUrl(log_url, topic, options)


class EventLogSource:
    """A :class:`~decisionloop.data.batches.Source` over one topic of an :class:`EventLog`.

    ``read()`` is a generator of micro-batches: each holds up to ``max_batch_rows`` messages,
    collected for at most ``max_wait_s`` (bounded latency). Nothing is polled until the
    consumer asks for the next batch (back-pressure). Without ``follow`` it ends when a poll
    waits ``max_wait_s`` and finds nothing; with ``follow`` it waits for new messages until
    :meth:`stop`. Columns are the union of the decoded keys, with JSON scalars as their Arrow
    types (bool, int64, float64 for ints mixed with floats, string) and text where a column
    mixes types; nested objects and arrays become JSON text. Types are inferred per batch.

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
        decode = self._decoder()
        validate_topic(self.topic)
        validate_group(self.group)
        while not self._stopped.is_set():
            events = self._collect(max_batch_rows)
            if events:
                yield self._batch(events, decode)
            elif not follow:
                return

    def stop(self) -> None:
        """Make ``read()`` return after its current poll (at most ``max_wait_s``)."""
        self._stopped.set()

    def close(self) -> None:
        self.stop()
        if self.close_log:
            self.log.close()

    def __repr__(self) -> str:
        return f"EventLogSource({self.url!r}, topic={self.topic!r}, group={self.group!r})"

    # -- reading ---------------------------------------------------------------------------

    def _collect(self, max_rows: int) -> list[Event]:
        events: list[Event] = []
        size = 0
        deadline = time.monotonic() + self.max_wait_s
        while len(events) < max_rows and size < MAX_BATCH_BYTES and not self._stopped.is_set():
            remaining = max(deadline - time.monotonic(), 0.0)
            got = self.log.poll(
                self.topic, self.group, max_records=max_rows - len(events), timeout_s=remaining
            )
            if not got:
                break
            events += got
            size += sum(len(event.value) for event in got)
            if remaining <= 0:
                break
        return events

    def _batch(self, events: list[Event], decode: Decoder) -> RawBatch:
        rows: list[dict[str, Any] | None] = []
        errors: list[str | None] = []
        payloads: list[str | None] = []
        for event in events:
            row, error = decode(event.value)
            rows.append(row)
            errors.append(error)
            payloads.append(None if error is None else _payload_text(event.value))
        names = list(dict.fromkeys(name for row in rows if row is not None for name in row))
        import pyarrow as pa

        arrays = [_arrow_column([None if r is None else r.get(n) for r in rows]) for n in names]
        positions = [f"{e.topic}/{e.partition}@{e.offset}" for e in events]
        table = pa.table(
            [
                *arrays,
                pa.array(positions, pa.string()),
                pa.array(errors, pa.string()),
                pa.array(payloads, pa.string()),
            ],
            names=[*names, POSITION, ERROR, PAYLOAD],
        )
        ranges: dict[int, tuple[int, int]] = {}
        for event in events:
            low, high = ranges.get(event.partition, (event.offset, event.offset))
            ranges[event.partition] = (min(low, event.offset), max(high, event.offset))
        origin = f"{self.topic}:" + ",".join(
            f"{partition}@{low}-{high}" for partition, (low, high) in sorted(ranges.items())
        )
        offsets = {partition: high + 1 for partition, (_, high) in ranges.items()}
        return RawBatch(origin=origin, table=table, acknowledge=self._acknowledger(offsets))

    def _acknowledger(self, offsets: dict[int, int]) -> Callable[[], None]:
        def acknowledge() -> None:
            with self._ack_lock:
                forward = {p: o for p, o in offsets.items() if o > self._acknowledged.get(p, -1)}
                if forward:
                    self.log.commit(self.topic, self.group, forward)
                    self._acknowledged.update(forward)

        return acknowledge

    def _decoder(self) -> Decoder:
        if self.value_format == "json":
            return _decode_json
        if self.value_format != "avro":
            raise Invalid(
                f"unknown value format {self.value_format!r}", hint="use 'json' or 'avro'"
            )
        return _avro_decoder(self.avro_schema)


# -- decoding ------------------------------------------------------------------------------


def _payload_text(value: bytes) -> str:
    return value[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")


def _too_long(value: bytes) -> str:
    if len(value) <= MAX_PAYLOAD_BYTES:
        return ""
    return f" (payload cut to {MAX_PAYLOAD_BYTES} of {len(value)} bytes)"


def _checked_row(row: object, value: bytes, what: str) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(row, dict):
        kind = _JSON_TYPES.get(type(row), "null" if row is None else type(row).__name__)
        return None, f"{what} {kind}, not an object{_too_long(value)}"
    reserved = [name for name in _RESERVED if name in row]
    if reserved:
        return None, f"uses the reserved key {reserved[0]!r}{_too_long(value)}"
    return row, None


def _decode_json(value: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start}){_too_long(value)}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}" + (
            _too_long(value)
        )
    except RecursionError:
        return None, f"JSON nested too deeply{_too_long(value)}"
    except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit conversion limit
        return None, f"not valid JSON: {str(exc)[:200]}{_too_long(value)}"
    return _checked_row(row, value, "a JSON")


def _avro_decoder(schema: Mapping[str, Any] | str | None) -> Decoder:
    try:
        import fastavro
    except ImportError as exc:
        from decisionloop.errors import Unavailable

        raise Unavailable(
            "fastavro is not installed", hint="pip install 'decisionloop[kafka]'"
        ) from exc
    if schema is None:
        raise Invalid("format avro needs an Avro schema", hint="pass avro_schema={...}")
    try:
        loaded = json.loads(schema) if isinstance(schema, str) else dict(schema)
        parsed = fastavro.parse_schema(loaded)
    except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
        raise Invalid(f"invalid Avro schema: {exc}", hint="give a JSON Avro schema") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise Invalid("the Avro schema must be a record", hint='{"type": "record", ...}')

    def decode(value: bytes) -> tuple[dict[str, Any] | None, str | None]:
        buffer = io.BytesIO(value)
        try:
            row = fastavro.schemaless_reader(buffer, parsed, None)
        except Exception as exc:  # noqa: BLE001 - a poisoned message must never stop the stream
            reason = f"{type(exc).__name__}: {exc}"[:200]
            return None, f"not decodable Avro: {reason}{_too_long(value)}"
        left = len(value) - buffer.tell()
        if left:
            return None, f"not decodable Avro: {left} bytes after the record{_too_long(value)}"
        return _checked_row(row, value, "an Avro")

    return decode


# -- Arrow columns -------------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict | list | tuple):
        return "nested"
    return type(value).__name__


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    text = _json_default(value)
    return text if isinstance(text, str) else str(text)


def _arrow_column(values: list[object]) -> pa.Array:
    """Natural Arrow type for a consistent column, text for a mixed (or nested) one."""
    import pyarrow as pa

    kinds = {_kind(value) for value in values if value is not None}
    target: pa.DataType | None = None
    if kinds == {"bool"}:
        target = pa.bool_()
    elif kinds == {"int"}:
        target = pa.int64()
    elif kinds and kinds <= {"int", "float"}:
        target = pa.float64()
    elif len(kinds) == 1 and not kinds & {"string", "nested"}:
        try:
            return pa.array(values)  # bytes, dates, decimals: what Arrow knows natively
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
    if target is not None:
        try:
            return pa.array(values, target)
        except (pa.ArrowException, OverflowError):
            pass  # e.g. an integer beyond int64: keep it exactly, as text
    return pa.array([_as_text(value) for value in values], pa.string())
