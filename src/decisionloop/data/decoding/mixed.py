"""Mixed-type columns on the JSON fast path: the few messages that would make Arrow's reader
refuse a column (text in a numeric column, say) are decoded by Python instead, and their
values merged into Arrow's columns with the types and text the per-message path gives.

A message decoded by Python stands in Arrow's input as a *skeleton*: an object with its keys in
its order and every value null, so Arrow still sees every key where it first appears (the
column order of the exact path) and one row per message.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from decisionloop.data.decoding.columns import as_text, value_kind

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = [
    "merge_decoded",
    "message_view",
    "odd_messages",
    "odd_pattern",
    "skeleton",
    "usual_kinds",
]

#: JSON whitespace between a key, its colon and its value
_SPACE = "[ \\t\\n\\r]*"
#: the first character of a JSON value of each kind (Python's json also reads NaN, Infinity)
_FIRST = {"number": "-0-9NI", "string": '"', "bool": "tf", "nested": "\\[{"}
_KIND_OF = {"int": "number", "float": "number", "string": "string", "bool": "bool"}
#: the Arrow type the exact path gives a column whose values are all of these kinds
_TARGETS = {
    frozenset({"bool"}): "bool",
    frozenset({"int"}): "int64",
    frozenset({"float"}): "float64",
    frozenset({"int", "float"}): "float64",
    frozenset({"string"}): "string",
}
#: a float at least this small (or written with an exponent) is formatted by Python
_PLAIN_FLOAT_MIN = 1e-4

#: a decoded message by its row in Arrow's table, or None when Python refuses it
RowAt = Callable[[int], "dict[str, Any] | None"]


def skeleton(row: dict[str, Any]) -> bytes:
    """The stand-in of a message decoded by Python: its keys in order, every value null."""
    return ("{" + ",".join(json.dumps(key) + ":null" for key in row) + "}").encode()


def _regex_literal(text: str) -> str:
    """ASCII text as a literal in an RE2 pattern."""
    return "".join(c if c.isalnum() or c == "_" else f"\\x{ord(c):02x}" for c in text)


def usual_kinds(sample: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The kind (number, string, bool or nested) each key mostly has in ``sample`` (decoded
    rows), null values aside."""
    kinds: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in sample:
        for key, value in row.items():
            if value is not None:
                kinds[key][_KIND_OF.get(value_kind(value), "nested")] += 1
    return {key: counts.most_common(1)[0][0] for key, counts in kinds.items()}


def odd_pattern(usual: dict[str, str]) -> str | None:
    """An RE2 pattern finding a message that gives a key a value of another kind than its
    ``usual`` one (see :func:`usual_kinds`), or None when it has nothing to look for. Only plain
    ASCII keys, as written without escapes: a message it misses is found by Arrow's error."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for key, kind in usual.items():
        if key.isascii() and key.isprintable() and kind in _FIRST:
            odd = "".join(first for other, first in _FIRST.items() if other != kind)
            groups[odd].append(_regex_literal(json.dumps(key)[1:-1]))
    alternatives = [
        f'"(?:{"|".join(keys)})"{_SPACE}:{_SPACE}[{odd}]' for odd, keys in groups.items()
    ]
    return "|".join(alternatives) or None


def message_view(text: bytes, starts: npt.NDArray[np.int64]) -> pa.Array:
    """The messages of ``text`` (each starting at ``starts``, one newline between) as a
    binary array over the same memory (each but the last with its newline)."""
    import numpy as np
    import pyarrow as pa

    offsets = np.append(starts, len(text))
    return pa.Array.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )


def odd_messages(messages: pa.Array, pattern: str) -> list[int]:
    """The messages that ``pattern`` finds (RE2, in C++)."""
    import numpy as np
    import pyarrow.compute as pc

    found = pc.match_substring_regex(messages, pattern).to_numpy(zero_copy_only=False)
    indexes: list[int] = np.flatnonzero(found).tolist()
    return indexes


def merge_decoded(
    table: pa.Table,
    messages: pa.Array,
    slots: Sequence[int],
    rows: Sequence[dict[str, Any]],
    row_at: RowAt,
) -> pa.Table | None:
    """Arrow's ``table`` (read from ``messages``, one row each) with the rows at ``slots``
    (skeletons) filled from ``rows`` (decoded by Python), each column of the type the exact
    path gives all its values; or None where only the exact path can tell. Nested (struct or
    list) columns are left as they are."""
    import numpy as np
    import pyarrow as pa

    mask = np.zeros(table.num_rows, np.bool_)
    mask[list(slots)] = True
    slot_mask = pa.array(mask)
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_struct(kind) or pa.types.is_list(kind):
            columns.append(column)
            continue
        merged = _merge_column(
            name, column.combine_chunks(), slot_mask, rows, _Source(messages, row_at)
        )
        if merged is None:
            return None
        columns.append(merged)
    return pa.table(columns, names=table.column_names)


def _arrow_kinds(kind: pa.DataType) -> set[str] | None:
    import pyarrow as pa

    for check, kinds in (
        (pa.types.is_null, set()),
        (pa.types.is_boolean, {"bool"}),
        (pa.types.is_int64, {"int"}),
        (pa.types.is_float64, {"float"}),
        (pa.types.is_string, {"string"}),
    ):
        if check(kind):
            return kinds
    return None


class _Source(NamedTuple):
    """Where Arrow's rows came from: the message text, and the message decoded by Python."""

    messages: pa.Array
    row_at: RowAt


def _merge_column(
    name: str,
    column: pa.Array,
    slot_mask: pa.Array,
    rows: Sequence[dict[str, Any]],
    source: _Source,
) -> pa.Array | None:
    """One column with the Python-decoded values at the masked rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = [row.get(name) for row in rows]
    kinds = {value_kind(value) for value in values if value is not None}
    arrow_kinds = _arrow_kinds(column.type)
    if not kinds or arrow_kinds is None:
        return column if not kinds else None
    target = _TARGETS.get(frozenset(kinds | arrow_kinds))
    if target is None:
        texts = _arrow_text(name, column, source)
        decoded = pa.array([as_text(value) for value in values], pa.string())
        return None if texts is None else pc.replace_with_mask(texts, slot_mask, decoded)
    kind = pa.type_for_alias(target)
    if pa.types.is_int64(column.type) and target == "float64" and _beyond_floats(column):
        return None  # the exact path keeps such integers as text
    try:
        decoded = pa.array(values, kind)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None  # e.g. an integer beyond int64: the exact path makes the column text
    return pc.replace_with_mask(column.cast(kind), slot_mask, decoded)


def _beyond_floats(column: pa.Array) -> bool:
    import pyarrow.compute as pc

    largest = pc.max(pc.abs(column)).as_py()
    return largest is not None and largest >= 2**53


def _arrow_text(name: str, column: pa.Array, source: _Source) -> pa.Array | None:
    """Arrow's values as the exact path's text: strings as they are, JSON for the rest."""
    import pyarrow as pa

    if pa.types.is_float64(column.type):
        return _float_text(name, column, source)
    return column.cast(pa.string())  # null, "true"/"false", integers in decimal, or text


def _float_text(name: str, column: pa.Array, source: _Source) -> pa.Array | None:
    """Floats as Python writes them (``repr``). Arrow's own text is the same digits but not
    always the same notation: it is kept for plain decimals with a fraction, at least 1e-4; the
    rest is written as Python does, an integral value after a look at its token (``10`` and
    ``10.0`` read the same, but the exact path writes an integer without a fraction)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    numbers = column.fill_null(0.0).to_numpy()
    if not np.isfinite(numbers).all():
        return None
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    texts = column.cast(pa.string())
    exponent = pc.fill_null(pc.match_substring(texts, "e"), False).to_numpy(zero_copy_only=False)
    fraction = numbers != np.floor(numbers)
    plain = fraction & (np.abs(numbers) >= _PLAIN_FLOAT_MIN) & ~exponent
    redo = np.flatnonzero(valid & ~plain)
    if not len(redo):
        return texts
    written: list[str | None] = [None] * len(redo)
    integral = []
    for position, index in enumerate(redo.tolist()):
        if fraction[index]:
            written[position] = float.__repr__(float(numbers[index]))
        else:
            integral.append(position)
    rows = redo[integral]
    for position, text in zip(
        integral, _integral_texts(name, numbers[rows], source, rows), strict=True
    ):
        if text is None:
            return None
        written[position] = text
    mask = np.zeros(len(numbers), np.bool_)
    mask[redo] = True
    return pc.replace_with_mask(texts, pa.array(mask), pa.array(written, pa.string()))


def _integral_texts(
    name: str, numbers: npt.NDArray[np.float64], source: _Source, rows: npt.NDArray[np.int64]
) -> list[str | None]:
    """The exact path's text of integral float values: of an integer token its digits, of a
    float token (``10.0``, ``1e1``) Python's ``repr``. The token is read from the message by
    RE2 where the key appears once there and the message has no escapes (so the key is where
    the pattern finds it); else from the message decoded by Python (None when it is not a
    number there, which the exact path would not have read the same way)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tokens: list[dict[str, bytes] | None] = [None] * len(rows)
    if name.isascii() and name.isprintable() and len(rows):
        subset = source.messages.take(pa.array(rows))
        key = f'[{{,]{_SPACE}"{_regex_literal(json.dumps(name)[1:-1])}"{_SPACE}:'
        once = pc.equal(pc.count_substring_regex(subset, key), 1)
        plain = pc.invert(pc.match_substring(subset, "\\"))
        found = pc.extract_regex(subset, key + _SPACE + "(?P<digits>-?[0-9]+)(?P<more>[.eE]?)")
        trusted = pc.and_(once, plain).to_pylist()
        tokens = [t if ok else None for t, ok in zip(found.to_pylist(), trusted, strict=True)]
    texts: list[str | None] = []
    for number, row, token in zip(numbers.tolist(), rows.tolist(), tokens, strict=True):
        if token is not None:
            integer = not token["more"]
            texts.append(str(int(token["digits"])) if integer else float.__repr__(number))
            continue
        decoded = source.row_at(row)
        value = None if decoded is None else decoded.get(name)
        number_kind = isinstance(value, int | float) and not isinstance(value, bool)
        texts.append(as_text(value) if number_kind else None)
    return texts
