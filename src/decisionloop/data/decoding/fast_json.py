"""The JSON fast path: a batch of JSON values parsed at once by Arrow's JSON reader (C++).

:func:`json_columns` gives exactly what decoding message by message gives
(:func:`~decisionloop.data.decoding.columns.decoded_columns` over
:func:`~decisionloop.data.decoding.messages.decode_json`), or None when only that exact path
can tell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from decisionloop.data.decoding.columns import Columns, arrow_column
from decisionloop.data.decoding.messages import (
    RESERVED,
    SURROGATE_ESCAPE,
    decode_json,
    payload_text,
)
from decisionloop.data.decoding.mixed import (
    merge_decoded,
    message_view,
    odd_messages,
    odd_pattern,
    skeleton,
    usual_kinds,
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
_MAX_PARSES = 8
_ERROR_ROW = re.compile(r" in row (\d+)")
#: Arrow's parse error for a column whose values change kind ("changed from number to string")
_CONFLICT = " changed from "
#: such an error about a top-level key: the key, and the kind it had so far
_CONFLICT_KEY = re.compile(r"Column\(/([^/]*)\) changed from (\w+) to ")
#: Arrow's names of JSON kinds, as :mod:`~decisionloop.data.decoding.mixed` names them
_ARROW_KINDS = {"number": "number", "string": "string", "boolean": "bool"}
_ARROW_KINDS |= {"object": "nested", "array": "nested"}
#: messages decoded to learn each key's usual kind, on a batch's first type conflict
_SAMPLE = 256
#: an integer minus zero, which Arrow reads as the float -0.0 in a float column (Python: 0)
_INTEGER_MINUS_ZERO = re.compile(rb"-0(?![0-9.eE])")
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
    extra) is decoded exactly and left out when poisoned, else decoded by Python (see
    :mod:`~decisionloop.data.decoding.mixed`), and the rest is parsed again. On the first
    type conflict (text in a numeric column, say), the messages that give a key a value of
    another kind than a sample of the batch does are found at once and decoded by Python too.
    As every value ends in ``}``, none can run into the next, so the row count matching proves
    one object per message. What Arrow reads differently from Python's json (mixed-type
    columns, duplicate keys, huge, non-finite or negative-zero numbers, ISO date strings it
    would make timestamps) is re-read, merged from Python's values or left to the exact path;
    nested objects and arrays become JSON text through Python, as on the exact path.
    """
    batch = _Batch(values)
    if not batch.joined or not batch.screen():
        return None
    return batch.parse()


class _Batch:
    """One batch on its way through Arrow: the joined text, the poisoned messages, and the
    messages Arrow reads in another form (stripped of surrounding whitespace, or the skeleton
    of a message Python decoded)."""

    def __init__(self, values: Sequence[bytes]) -> None:
        import numpy as np

        self.values = values
        self.count = len(values)
        self.joined = b"\n".join(values)
        self.lengths = np.fromiter(map(len, values), np.int64, self.count)
        self.starts = np.zeros(self.count, np.int64)
        np.cumsum(self.lengths[:-1] + 1, out=self.starts[1:])
        self.errors: dict[int, str] = {}
        #: what Arrow reads instead of a message
        self.replaced: dict[int, bytes] = {}
        #: the messages Python decoded for Arrow (a skeleton stands in for each)
        self.decoded: dict[int, dict[str, Any]] = {}
        #: each key's usual kind, where known: the others' messages are Python's
        self.usual: dict[str, str] = {}
        self.scanned = False
        self.predicted = False

    # -- before Arrow ----------------------------------------------------------------------

    def screen(self) -> bool:
        """Decode exactly what Arrow must not see; False when the exact path takes the batch."""
        if not (self._screen_shapes() and self._screen_utf8()):
            return False
        self._screen_reserved()
        return self._screen_depth()

    def _screen_shapes(self) -> bool:
        import numpy as np

        data = np.frombuffer(self.joined, np.uint8)
        end = len(self.joined) - 1
        starts, lengths = self.starts, self.lengths
        odd = (
            (lengths == 0)
            | (data[np.minimum(starts, end)] != ord("{"))
            | (data[np.clip(starts + lengths - 1, 0, end)] != ord("}"))
        )
        for index in np.flatnonzero(odd).tolist():
            value = self.values[index].strip(_JSON_SPACE)
            if value[:1] == b"{" and value[-1:] == b"}":
                self.replaced[index] = value
            elif not _reject(self.values, index, self.errors):
                return False
        return True

    def _screen_utf8(self) -> bool:
        import numpy as np

        joined, position = self.joined, 0
        while not joined.isascii() and position < len(joined):
            try:
                joined[position:].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                index = int(np.searchsorted(self.starts, position + exc.start, side="right")) - 1
                if not _reject(self.values, index, self.errors):
                    return False
                position = int(self.starts[index] + self.lengths[index]) + 1
        return True

    def _screen_reserved(self) -> None:
        if b'"_' not in self.joined:
            return
        for name in RESERVED:
            needle = f'"{name}"'.encode()
            if needle in self.joined:
                for index, value in enumerate(self.values):
                    if needle in value and index not in self.errors:
                        _reject(self.values, index, self.errors)  # a string value decodes fine

    def _screen_depth(self) -> bool:
        import numpy as np

        for index in np.flatnonzero(self.lengths > _MAX_DEPTH).tolist():
            value = self.values[index]
            if index in self.errors or value.count(b"{") + value.count(b"[") <= _MAX_DEPTH:
                continue
            decoded, error = decode_json(value)
            if error is not None:
                self.errors[index] = error
            elif _depth(decoded) > _MAX_DEPTH:
                return False  # Python reads it (its recursion limit may have been raised)
        return True

    # -- Arrow -----------------------------------------------------------------------------

    def parse(self) -> Columns | None:
        """Parse what is left, again after each error that left out or took over a message."""
        import pyarrow as pa

        for _ in range(_MAX_PARSES):
            good, body = self._body()
            if not good:
                return Columns([], [], *_error_columns(self.values, self.errors))
            try:
                table = _read_ndjson(body)
            except (pa.ArrowException, UnicodeError) as exc:
                if not self._recover(str(exc), good):
                    return None  # a message Python reads the same way: Arrow is stricter
                continue
            return self._columns(table, body, good)
        return None

    def _body(self) -> tuple[Sequence[int], bytes]:
        """The messages Arrow reads (all but the poisoned ones), and its text."""
        if not (self.errors or self.replaced):
            return range(self.count), self.joined
        replaced, values = self.replaced, self.values
        good = [index for index in range(self.count) if index not in self.errors]
        return good, b"\n".join([replaced.get(index, values[index]) for index in good])

    def messages(self, body: bytes, good: Sequence[int]) -> pa.Array:
        """What Arrow read of each message in ``good`` (see :meth:`_body`), as an array."""
        import numpy as np

        if body is self.joined:
            return message_view(body, self.starts)
        lengths = self.lengths[np.asarray(good, np.int64)]
        replaced = [index for index in self.replaced if index not in self.errors]
        if replaced:
            rows = np.searchsorted(good, replaced)
            lengths[rows] = [len(self.replaced[index]) for index in replaced]
        starts = np.zeros(len(good), np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        return message_view(body, starts)

    def _recover(self, message: str, good: Sequence[int]) -> bool:
        """After a parse error: leave out the poisoned messages it points to, else decode the
        message it names by Python; True when anything changed."""
        found = False
        if _CONFLICT in message:
            found = self._predict(message)
        elif not self.scanned:
            # each would cost a parse: find them all at once
            self.scanned = True
            found = _reject_scanned(self.values, self.joined, self.errors)
        match = _ERROR_ROW.search(message)
        if match is None:
            return found
        # the row the parser was in, or the one before when it ended in something extra
        row = int(match.group(1))
        rejected = [
            near
            for near in (row, row - 1)
            if 0 <= near < len(good) and _reject(self.values, good[near], self.errors)
        ]
        if not rejected and 0 <= row < len(good):
            found = self._take(good[row]) or found
        return found or bool(rejected)

    def _predict(self, message: str) -> bool:
        """On a type conflict: decode by Python the messages that give a key a value of another
        kind than the key usually has (found at once by a regular expression). The first
        conflict learns the usual kinds from a sample of the batch; a later one about a key
        the sample did not hold takes the kind Arrow saw first for it."""
        usual: dict[str, str] = {}
        if not self.predicted:
            self.predicted = True
            usual = usual_kinds(self._sample())
        conflict = _CONFLICT_KEY.search(message)
        if conflict is not None and conflict.group(1) not in self.usual | usual:
            kind = _ARROW_KINDS.get(conflict.group(2))
            if kind is not None:
                usual[conflict.group(1)] = kind
        self.usual |= usual
        pattern = odd_pattern(usual)
        if pattern is None:
            return False
        found = False
        for index in odd_messages(message_view(self.joined, self.starts), pattern):
            found = self._take(index) or found
        return found

    def _sample(self) -> list[dict[str, Any]]:
        """The first :data:`_SAMPLE` messages that decode, decoded."""
        sample: list[dict[str, Any]] = []
        for index in range(self.count):
            if len(sample) >= _SAMPLE:
                break
            if index not in self.errors:
                row, _ = decode_json(self.values[index])
                if row is not None:
                    sample.append(row)
        return sample

    def _take(self, index: int) -> bool:
        """Decode one message by Python (a skeleton stands in for it), or leave it out when
        it is poisoned; False when that was done already."""
        if index in self.decoded or index in self.errors:
            return False
        row, error = decode_json(self.values[index])
        if row is None:
            self.errors[index] = error or "not decodable"
            return True
        self.decoded[index] = row
        self.replaced[index] = skeleton(row)
        return True

    def _columns(self, table: pa.Table, body: bytes, good: Sequence[int]) -> Columns | None:
        import numpy as np
        import pyarrow as pa

        if table.num_rows != len(good):
            return None
        exact = _exact_types(table, body, good, self)
        if exact is None:
            return None
        arrays: list[pa.Array | pa.ChunkedArray] = exact.columns
        if self.errors:
            # the good rows in order, and a null row for each poisoned message
            take = np.full(self.count, -1, np.int64)
            take[list(good)] = np.arange(len(good))
            indices = pa.array(take, mask=take < 0)
            arrays = [column.take(indices) for column in arrays]
        return Columns(exact.column_names, arrays, *_error_columns(self.values, self.errors))


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
    table: pa.Table, body: bytes, good: Sequence[int], batch: _Batch
) -> pa.Table | None:
    """Arrow's inferred columns with the exact path's types, and the values of the messages
    Python decoded for it merged in; or None where they may differ."""
    import pyarrow as pa

    values, decoded = batch.values, batch.decoded
    if set(table.column_names) & set(RESERVED):
        return None  # a reserved key spelled with escapes
    table = _dates_as_text(table, body)
    if table is None:
        return None
    if decoded:
        slots = [slot for slot, index in enumerate(good) if index in decoded]
        merged = merge_decoded(
            table,
            batch.messages(body, good),
            slots,
            [decoded[good[slot]] for slot in slots],
            _row_reader(values, good),
        )
        if merged is None:
            return None
        table = merged
    nested: list[str] = []
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_null(field.type):
            column = column.cast(pa.string())  # a key that is always null: text, as exactly
        elif pa.types.is_float64(field.type) and not _exact_floats(column, body):
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


def _dates_as_text(table: pa.Table, body: bytes) -> pa.Table | None:
    """The columns Arrow read as other than JSON's kinds (e.g. ISO date strings as
    timestamps) read again as the text they are, or None when that fails."""
    import pyarrow as pa

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
    if not as_text:
        return table
    names = table.column_names
    schema = pa.schema([(name, pa.string()) for name in as_text])
    try:
        table = _read_ndjson(body, schema).select(names)
    except (pa.ArrowException, KeyError):
        return None
    if any(table.schema.field(name).type != pa.string() for name in as_text):
        return None
    return table


def _exact_floats(column: pa.ChunkedArray | pa.Array, body: bytes) -> bool:
    """Whether a float column holds what the exact path reads: no NaN or infinity (Arrow also
    takes -NaN, Inf), nothing that may have been an integer beyond floats, and no -0.0 that
    was the integer ``-0`` (0 exactly)."""
    import numpy as np

    if column.null_count == len(column):
        return True
    numbers = column.fill_null(0.0).to_numpy()
    if not np.isfinite(numbers).all() or np.abs(numbers).max() >= _EXACT_FLOAT_LIMIT:
        return False
    return not (np.signbit(numbers[numbers == 0]).any() and _INTEGER_MINUS_ZERO.search(body))


def _row_reader(values: Sequence[bytes], good: Sequence[int]) -> Callable[[int], Any]:
    """The decoded message at a row of Arrow's table (None when poisoned), decoded once."""
    cache: dict[int, dict[str, Any] | None] = {}

    def row_at(slot: int) -> dict[str, Any] | None:
        if slot not in cache:
            cache[slot] = decode_json(values[good[slot]])[0]
        return cache[slot]

    return row_at
