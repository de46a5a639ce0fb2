"""Arrow columns from decoded rows: the exact, message-by-message way to build a batch.

A column takes the natural Arrow type of its values where they agree (bool, int64, float64 for
ints mixed with floats, string, or what Arrow knows natively), else text; nested objects and
arrays become JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from decisionloop.data.decoding.messages import Decoder, payload_text

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Columns", "arrow_column", "as_text", "decoded_columns", "value_kind"]


class Columns(NamedTuple):
    """A decoded batch: its data columns, then the ``_error`` and ``_payload`` columns."""

    names: list[str]
    arrays: list[pa.Array | pa.ChunkedArray]
    errors: pa.Array
    payloads: pa.Array


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


def value_kind(value: object) -> str:
    """A decoded value's kind: bool, int, float, string, nested, or its type's name."""
    return _KINDS.get(type(value)) or _kind_of(type(value))


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def as_text(value: object) -> str | None:
    """A value in a text column: strings as they are, JSON for the rest (null stays null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    text = _json_default(value)
    return text if isinstance(text, str) else str(text)


def arrow_column(values: list[object]) -> pa.Array:
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
    return pa.array([as_text(value) for value in values], pa.string())


def decoded_columns(values: Sequence[bytes], decode: Decoder) -> Columns:
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
        payloads.append(None if error is None else payload_text(value))
    names = list(dict.fromkeys(name for row in rows for name in row))
    arrays = [arrow_column([row.get(name) for row in rows]) for name in names]
    return Columns(names, arrays, pa.array(errors, pa.string()), pa.array(payloads, pa.string()))
