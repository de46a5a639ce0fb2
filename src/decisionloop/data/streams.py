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
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, cast
from urllib.parse import parse_qs, urlsplit

from decisionloop.backends.events import open_event_log
from decisionloop.backends.events.base import EventLog, validate_group, validate_topic
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
    "ValuePolling",
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
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

#: decode one value: the row, or None and the reason it failed
Decoder = Callable[[bytes], tuple[dict[str, Any] | None, str | None]]
#: one message as a stream source needs it: (partition, offset, value)
ValueRow = tuple[int, int, bytes]
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)


class ValuePolling(Protocol):
    """An event log that can also hand polled messages in bulk, as ``(partition, offset,
    value)`` tuples without building :class:`Event` objects (same positions and semantics as
    ``poll``). Both built-in logs do; a source uses it when the log's class defines it."""

    def poll_values(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[ValueRow]: ...


class _Columns(NamedTuple):
    """A decoded batch: its data columns, then the ``_error`` and ``_payload`` columns."""

    names: list[str]
    arrays: list[pa.Array | pa.ChunkedArray]
    errors: pa.Array
    payloads: pa.Array


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

    JSON batches are parsed at once by Arrow's JSON reader where that gives exactly what
    decoding message by message gives (see :func:`_json_columns`), else message by message;
    logs offering :class:`ValuePolling` hand the messages in bulk.

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
            partitions, offsets, values = self._collect(max_batch_rows)
            if values:
                yield self._batch(partitions, offsets, values, decode)
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

    def _poll(self, max_records: int, timeout_s: float) -> list[ValueRow]:
        """``(partition, offset, value)`` of the next messages: in bulk where the log's class
        offers ``poll_values`` (no Event objects), else from ``poll``."""
        if callable(getattr(type(self.log), "poll_values", None)):
            bulk = cast(ValuePolling, self.log)
            return bulk.poll_values(
                self.topic, self.group, max_records=max_records, timeout_s=timeout_s
            )
        events = self.log.poll(self.topic, self.group, max_records=max_records, timeout_s=timeout_s)
        return [(event.partition, event.offset, event.value) for event in events]

    def _collect(self, max_rows: int) -> tuple[list[int], list[int], list[bytes]]:
        partitions: list[int] = []
        offsets: list[int] = []
        values: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.max_wait_s
        while len(values) < max_rows and size < MAX_BATCH_BYTES and not self._stopped.is_set():
            remaining = max(deadline - time.monotonic(), 0.0)
            got = self._poll(max_rows - len(values), remaining)
            if not got:
                break
            start = len(values)
            partitions += map(_FIRST, got)
            offsets += map(_SECOND, got)
            values += map(_THIRD, got)
            size += sum(map(len, values[start:]))
            if remaining <= 0:
                break
        return partitions, offsets, values

    def _batch(
        self, partitions: list[int], offsets: list[int], values: list[bytes], decode: Decoder
    ) -> RawBatch:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        columns = _json_columns(values) if decode is _decode_json else None
        if columns is None:
            columns = _decoded_columns(values, decode)
        names, arrays, errors, payloads = columns
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
    if b"\\u" in value and _SURROGATE_ESCAPE.search(value):
        # json accepts an unpaired surrogate escape ("\ud800"), which no UTF-8 text can hold
        try:
            json.dumps(row, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(exc.object[exc.start])
            return None, f"not valid JSON: unpaired surrogate \\u{code:04x}{_too_long(value)}"
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

_KINDS: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "string",
    dict: "nested",
    list: "nested",
    tuple: "nested",
}


def _kind_of(kind: type) -> str:
    for base in (bool, int, float, str):
        if issubclass(kind, base):
            return _KINDS[base]
    if issubclass(kind, dict | list | tuple):
        return "nested"
    return kind.__name__


def _kind(value: object) -> str:
    return _KINDS.get(type(value)) or _kind_of(type(value))


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

    types = set(map(type, values))
    types.discard(type(None))
    kinds = {_KINDS.get(kind) or _kind_of(kind) for kind in types}
    target: pa.DataType | None = None
    if kinds == {"bool"}:
        target = pa.bool_()
    elif kinds == {"int"}:
        target = pa.int64()
    elif kinds and kinds <= {"int", "float"}:
        target = pa.float64()
    elif kinds == {"string"}:
        return pa.array(values, pa.string())
    elif len(kinds) == 1 and "nested" not in kinds:
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


def _decoded_columns(values: Sequence[bytes], decode: Decoder) -> _Columns:
    """The exact path: each value decoded on its own, columns built from Python values."""
    import pyarrow as pa

    rows: list[dict[str, Any]] = []
    errors: list[str | None] = []
    payloads: list[str | None] = []
    empty: dict[str, Any] = {}
    for value in values:
        row, error = decode(value)
        rows.append(empty if row is None else row)
        errors.append(error)
        payloads.append(None if error is None else _payload_text(value))
    names = list(dict.fromkeys(name for row in rows for name in row))
    arrays = [_arrow_column([row.get(name) for row in rows]) for name in names]
    return _Columns(names, arrays, pa.array(errors, pa.string()), pa.array(payloads, pa.string()))


# -- the JSON fast path --------------------------------------------------------------------

_JSON_SPACE = b" \t\n\r"
#: bytes no JSON text holds raw (in strings they must be escaped; outside, they are no space)
_CONTROL_BYTES = bytes(byte for byte in range(32) if byte not in _JSON_SPACE)
#: Arrow's JSON parser recurses per nesting level, and a message nested deeply enough (some
#: 10,000 levels) overflows its stack: messages with more brackets than this are decoded by
#: Python first, and Arrow reads none nested deeper
_MAX_DEPTH = 1000
#: Arrow parses per batch before the exact path takes the batch over
_MAX_PARSES = 4
_ERROR_ROW = re.compile(r" in row (\d+)")
#: a float64 magnitude from which a value may have been an integer that the exact path keeps
#: as text (beyond int64) or refuses to widen (not exactly representable)
_EXACT_FLOAT_LIMIT = 2.0**53


def _reject(values: Sequence[bytes], index: int, errors: dict[int, str]) -> bool:
    """Decode one message exactly; record and return True when it is poisoned."""
    _, error = _decode_json(values[index])
    if error is None:
        return False
    errors[index] = error
    return True


def _json_columns(values: Sequence[bytes]) -> _Columns | None:
    """A batch of JSON values parsed at once by Arrow's JSON reader (C++), with the same rows,
    columns, types and errors as :func:`_decoded_columns` over :func:`_decode_json`; or None
    when only that exact per-message path can tell, and it takes the whole batch.

    The values are joined into one newline-delimited text. Before Arrow sees it, messages
    that do not look like one object (first byte ``{``, last ``}``, after JSON whitespace),
    hold invalid UTF-8 or a reserved key, or might nest deeply enough to overflow Arrow's
    recursive parser are decoded exactly: the poisoned ones stay out and become error rows
    (and a batch with a deeper message that Python reads goes to the exact path). A
    parse error names a row; that message (or the one before, when it ended in something
    extra) is decoded exactly and left out when poisoned, and the rest is parsed again. As
    every value ends in ``}``, none can run into the next, so the row count matching proves one
    object per message. What Arrow reads differently from Python's json (mixed-type columns,
    duplicate keys, huge, non-finite or negative-zero numbers, ISO date strings it would make
    timestamps) is re-read or left to the exact path; nested objects and arrays become JSON
    text through Python, as on the exact path.
    """
    import numpy as np
    import pyarrow as pa

    count = len(values)
    joined = b"\n".join(values)
    if not joined:
        return None
    lengths = np.fromiter(map(len, values), np.int64, count)
    starts = np.zeros(count, np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    data = np.frombuffer(joined, np.uint8)
    end = len(joined) - 1
    odd = (
        (lengths == 0)
        | (data[np.minimum(starts, end)] != ord("{"))
        | (data[np.clip(starts + lengths - 1, 0, end)] != ord("}"))
    )
    errors: dict[int, str] = {}
    stripped: dict[int, bytes] = {}
    for index in np.flatnonzero(odd).tolist():
        value = values[index].strip(_JSON_SPACE)
        if value[:1] == b"{" and value[-1:] == b"}":
            stripped[index] = value
        elif not _reject(values, index, errors):
            return None
    position = 0
    while not joined.isascii() and position < len(joined):
        try:
            joined[position:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            index = int(np.searchsorted(starts, position + exc.start, side="right")) - 1
            if not _reject(values, index, errors):
                return None
            position = int(starts[index] + lengths[index]) + 1
    if b'"_' in joined:
        for name in _RESERVED:
            needle = f'"{name}"'.encode()
            if needle in joined:
                for index, value in enumerate(values):
                    if needle in value and index not in errors:
                        _reject(values, index, errors)  # as a string value it decodes fine
    for index in np.flatnonzero(lengths > _MAX_DEPTH).tolist():
        value = values[index]
        if index in errors or value.count(b"{") + value.count(b"[") <= _MAX_DEPTH:
            continue
        decoded, error = _decode_json(value)
        if error is not None:
            errors[index] = error
        elif _depth(decoded) > _MAX_DEPTH:
            return None  # Python reads it (its recursion limit may have been raised)
    scanned = False
    for _ in range(_MAX_PARSES):
        good: Sequence[int] = range(count)
        body = joined
        if errors or stripped:
            good = [index for index in range(count) if index not in errors]
            body = b"\n".join([stripped.get(index, values[index]) for index in good])
        if not good:
            return _Columns([], [], *_error_columns(values, errors))
        try:
            table = _read_ndjson(body)
            break
        except (pa.ArrowException, UnicodeError) as exc:
            found = False
            if not scanned:
                # each would cost a parse: find them all at once
                scanned = True
                found = _reject_scanned(values, joined, errors)
            match = _ERROR_ROW.search(str(exc))
            if match is not None:
                # the row the parser was in, or the one before when it ended in something extra
                row = int(match.group(1))
                for near in (row, row - 1):
                    if 0 <= near < len(good) and _reject(values, good[near], errors):
                        found = True
            if not found:
                return None  # a message Python reads: types differ, or Arrow is stricter
    else:
        return None
    if table.num_rows != len(good):
        return None
    exact = _exact_types(table, body, values, good)
    if exact is None:
        return None
    arrays: list[pa.Array | pa.ChunkedArray] = exact.columns
    if errors:
        # the good rows in order, and a null row for each poisoned message
        take = np.full(count, -1, np.int64)
        take[list(good)] = np.arange(len(good))
        indices = pa.array(take, mask=take < 0)
        arrays = [column.take(indices) for column in arrays]
    return _Columns(exact.column_names, arrays, *_error_columns(values, errors))


def _depth(value: object) -> int:
    """How deeply a decoded JSON value nests (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack += [(child, level + 1) for child in item]
    return deepest


def _reject_scanned(values: Sequence[bytes], joined: bytes, errors: dict[int, str]) -> bool:
    """Reject the messages with raw control bytes or an unpaired-surrogate escape (both found
    by a scan of the whole text first); True when any was poisoned."""
    found = False
    if len(joined.translate(None, _CONTROL_BYTES)) < len(joined):
        for index, value in enumerate(values):
            if index not in errors and len(value.translate(None, _CONTROL_BYTES)) < len(value):
                found = _reject(values, index, errors) or found
    if b"\\u" in joined and _SURROGATE_ESCAPE.search(joined):
        for index, value in enumerate(values):
            if index not in errors and _SURROGATE_ESCAPE.search(value):
                found = _reject(values, index, errors) or found
    return found


def _error_columns(values: Sequence[bytes], errors: dict[int, str]) -> tuple[pa.Array, pa.Array]:
    """``_error`` and ``_payload`` for the poisoned messages, null elsewhere."""
    import pyarrow as pa

    if not errors:
        nulls = pa.nulls(len(values), pa.string())
        return nulls, nulls
    indexes = range(len(values))
    return (
        pa.array([errors.get(index) for index in indexes], pa.string()),
        pa.array(
            [_payload_text(values[index]) if index in errors else None for index in indexes],
            pa.string(),
        ),
    )


def _read_ndjson(body: bytes, schema: pa.Schema | None = None) -> pa.Table:
    """One block on one thread: columns in the order their keys first appear (as on the exact
    path), error rows counted from the start of the body. ``newlines_in_values`` lets a
    pretty-printed object span lines (each message's own end is checked by the caller)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    return pa_json.read_json(
        pa.BufferReader(body),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, newlines_in_values=True, unexpected_field_behavior="infer"
        ),
    )


def _exact_types(
    table: pa.Table, body: bytes, values: Sequence[bytes], good: Sequence[int]
) -> pa.Table | None:
    """Arrow's inferred columns with the exact path's types, or None where they may differ."""
    import numpy as np
    import pyarrow as pa

    if set(table.column_names) & set(_RESERVED):
        return None  # a reserved key spelled with escapes
    as_text = [
        field.name
        for field in table.schema
        if not (
            pa.types.is_null(field.type)
            or pa.types.is_boolean(field.type)
            or pa.types.is_int64(field.type)
            or pa.types.is_float64(field.type)
            or pa.types.is_string(field.type)
            or pa.types.is_struct(field.type)
            or pa.types.is_list(field.type)
        )
    ]
    if as_text:
        # e.g. ISO date strings read as timestamps: read those columns again as the text
        names = table.column_names
        schema = pa.schema([(name, pa.string()) for name in as_text])
        try:
            table = _read_ndjson(body, schema).select(names)
        except (pa.ArrowException, KeyError):
            return None
        if any(table.schema.field(name).type != pa.string() for name in as_text):
            return None
    nested: list[str] = []
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_null(field.type):
            column = column.cast(pa.string())  # a key that is always null: text, as exactly
        elif pa.types.is_float64(field.type) and column.null_count < len(column):
            numbers = column.fill_null(0.0).to_numpy()
            if (
                not np.isfinite(numbers).all()  # NaN, Infinity: Arrow also takes -NaN, Inf
                or np.abs(numbers).max() >= _EXACT_FLOAT_LIMIT
                or np.signbit(numbers[numbers == 0]).any()  # "-0" is the integer 0 exactly
            ):
                return None
        elif pa.types.is_struct(field.type) or pa.types.is_list(field.type):
            nested.append(field.name)
        columns.append(column)
    if nested:
        # JSON text exactly as the exact path writes it: decode these messages in Python
        rows = []
        for index in good:
            row, error = _decode_json(values[index])
            if row is None or error is not None:
                return None
            rows.append(row)
        for name in nested:
            index = table.column_names.index(name)
            columns[index] = _arrow_column([row.get(name) for row in rows])
    return pa.table(columns, names=table.column_names)
