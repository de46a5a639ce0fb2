"""The JSON fast path: a batch of JSON values parsed at once by Arrow's JSON reader (C++).

:func:`json_columns` gives exactly what decoding message by message gives
(:func:`~decisionloop.data.decoding.columns.decoded_columns` over
:func:`~decisionloop.data.decoding.messages.decode_json`), or None when only that exact path
can tell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from decisionloop.data.decoding.columns import Columns, arrow_column
from decisionloop.data.decoding.messages import (
    RESERVED,
    SURROGATE_ESCAPE,
    decode_json,
    payload_text,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["json_columns"]

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
    _, error = decode_json(values[index])
    if error is None:
        return False
    errors[index] = error
    return True


def json_columns(values: Sequence[bytes]) -> Columns | None:
    """A batch of JSON values parsed at once by Arrow's JSON reader (C++), with the same rows,
    columns, types and errors as :func:`~decisionloop.data.decoding.columns.decoded_columns`
    over :func:`~decisionloop.data.decoding.messages.decode_json`; or None when only that
    exact per-message path can tell, and it takes the whole batch.

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
        for name in RESERVED:
            needle = f'"{name}"'.encode()
            if needle in joined:
                for index, value in enumerate(values):
                    if needle in value and index not in errors:
                        _reject(values, index, errors)  # as a string value it decodes fine
    for index in np.flatnonzero(lengths > _MAX_DEPTH).tolist():
        value = values[index]
        if index in errors or value.count(b"{") + value.count(b"[") <= _MAX_DEPTH:
            continue
        decoded, error = decode_json(value)
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
            return Columns([], [], *_error_columns(values, errors))
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
    return Columns(exact.column_names, arrays, *_error_columns(values, errors))


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
    if b"\\u" in joined and SURROGATE_ESCAPE.search(joined):
        for index, value in enumerate(values):
            if index not in errors and SURROGATE_ESCAPE.search(value):
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
            [payload_text(values[index]) if index in errors else None for index in indexes],
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

    if set(table.column_names) & set(RESERVED):
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
            row, error = decode_json(values[index])
            if row is None or error is not None:
                return None
            rows.append(row)
        for name in nested:
            index = table.column_names.index(name)
            columns[index] = arrow_column([row.get(name) for row in rows])
    return pa.table(columns, names=table.column_names)
