"""A small, bounded reader of UBJSON (Universal Binary JSON), the format XGBoost saves models in.

It reads what ``Booster.save_raw("ubj")`` writes: objects, arrays, strings, numbers, booleans
and null, with the optimized (typed and counted) containers. A typed numeric array comes back as
a :class:`TypedArray` (where its bytes are; ``to_numpy()`` or :func:`concatenate` make numpy
arrays of it, so many small arrays cost one numpy call), everything else as Python values.

Only our own hash-verified model bytes are read, but the reader still refuses what a damaged or
hostile input could use to exhaust memory or the stack: counts and lengths larger than the bytes
left, nesting deeper than ``max_depth``, and any marker it does not know.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: a typed array's element marker -> its big-endian numpy dtype
_NUMERIC: dict[int, np.dtype[Any]] = {
    ord(marker): np.dtype(dtype)
    for marker, dtype in {
        "i": ">i1",
        "U": ">u1",
        "I": ">i2",
        "l": ">i4",
        "L": ">i8",
        "d": ">f4",
        "D": ">f8",
    }.items()
}
#: a scalar's marker -> its size and big-endian struct format
_SCALARS: dict[int, tuple[int, str]] = {
    ord(marker): (struct.calcsize(fmt), fmt)
    for marker, fmt in {
        "i": ">b",
        "U": ">B",
        "I": ">h",
        "l": ">i",
        "L": ">q",
        "d": ">f",
        "D": ">d",
    }.items()
}
_INTEGERS = frozenset(ord(marker) for marker in "iUIlL")
_CONSTANTS = {ord("Z"): None, ord("T"): True, ord("F"): False}
_NOOP, _TYPED, _COUNTED = ord("N"), ord("$"), ord("#")
_ARRAY, _END_ARRAY, _OBJECT, _END_OBJECT = ord("["), ord("]"), ord("{"), ord("}")
_STRING, _CHAR, _HIGH_PRECISION = ord("S"), ord("C"), ord("H")
_INT64, _UINT8 = ord("L"), ord("U")
_unpack_int64 = struct.Struct(">q").unpack_from


class UBJSONError(ValueError):
    """The bytes are not UBJSON this reader accepts."""


@dataclass(slots=True, eq=False)  # made once per array read: no frozen-init cost
class TypedArray:
    """A typed numeric array: ``length`` big-endian items of ``dtype`` at ``offset`` in
    ``data``."""

    data: bytes = field(repr=False)
    offset: int
    length: int
    dtype: np.dtype[Any]

    def __len__(self) -> int:
        return self.length

    def raw(self) -> bytes:
        return self.data[self.offset : self.offset + self.length * self.dtype.itemsize]

    def to_numpy(self) -> np.ndarray:
        """The items as a native-endian numpy array."""
        return concatenate([self])


def concatenate(arrays: Sequence[TypedArray]) -> np.ndarray:
    """The items of several typed arrays of one dtype, one after another, as one native-endian
    numpy array."""
    dtypes = {array.dtype for array in arrays}
    if len(dtypes) != 1:
        raise UBJSONError(f"arrays of different types cannot be joined: {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    joined = np.frombuffer(b"".join([array.raw() for array in arrays]), dtype=dtype)
    return joined.astype(dtype.newbyteorder("="))


def decode_ubjson(data: bytes, *, max_depth: int = 32) -> Any:
    """The value the UBJSON ``data`` holds; trailing bytes are refused."""
    reader = _Reader(bytes(data), max_depth)
    try:
        value, end = reader.value(reader.skip_noop(0), 0)
    except (IndexError, struct.error) as exc:
        raise UBJSONError("unexpected end of data") from exc
    if end != len(data):
        raise UBJSONError(f"{len(data) - end} trailing bytes after the value")
    return value


class _Reader:
    """Reads one value at a time: each method takes a position and returns what it read with
    the position after it (an IndexError or struct.error means the data ended early)."""

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def skip_noop(self, pos: int) -> int:
        data = self.data
        while data[pos] == _NOOP:
            pos += 1
        return pos

    def integer(self, pos: int) -> tuple[int, int]:
        """A length or count: an integer marker and its value, at most the bytes left."""
        data = self.data
        marker = data[pos]
        if marker == _INT64:  # what XGBoost writes
            value, pos = _unpack_int64(data, pos + 1)[0], pos + 9
        elif marker in _INTEGERS:
            size, fmt = _SCALARS[marker]
            value, pos = struct.unpack_from(fmt, data, pos + 1)[0], pos + 1 + size
        else:
            raise UBJSONError(f"a length must be an integer, not {chr(marker)!r}")
        if value < 0 or value > len(data) - pos:
            raise UBJSONError(f"length {value} at offset {pos} exceeds the bytes left")
        return value, pos

    def string(self, pos: int) -> tuple[str, int]:
        size, pos = self.integer(pos)
        try:
            return self.data[pos : pos + size].decode("utf-8"), pos + size
        except UnicodeDecodeError as exc:
            raise UBJSONError("a string is not valid UTF-8") from exc

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        """The value whose marker is at ``pos``."""
        return self.marked(self.data[pos], pos + 1, depth)

    def marked(self, marker: int, pos: int, depth: int) -> tuple[Any, int]:
        """The value of type ``marker`` whose payload starts at ``pos``."""
        data = self.data
        if marker in (_ARRAY, _OBJECT):
            if depth >= self.max_depth:
                raise UBJSONError(f"nested deeper than {self.max_depth} levels")
            element, count = None, None
            if data[pos] == _TYPED:
                element = data[pos + 1]
                pos += 2
                if data[pos] != _COUNTED:
                    raise UBJSONError("a typed container must give its count")
            if data[pos] == _COUNTED:
                count, pos = self.integer(pos + 1)
            if marker == _OBJECT:
                return self.object(pos, depth + 1, element, count)
            if element in _NUMERIC and count is not None:
                dtype = _NUMERIC[element]
                end = pos + count * dtype.itemsize
                if end > len(data):
                    raise UBJSONError(f"length {count} at offset {pos} exceeds the bytes left")
                return TypedArray(data, pos, count, dtype), end
            return self.array(pos, depth + 1, element, count)
        if marker in _SCALARS:
            size, fmt = _SCALARS[marker]
            return struct.unpack_from(fmt, data, pos)[0], pos + size
        if marker == _STRING:
            return self.string(pos)
        if marker in _CONSTANTS:
            return _CONSTANTS[marker], pos
        if marker == _CHAR:
            return chr(data[pos]), pos + 1
        if marker == _HIGH_PRECISION:
            text, pos = self.string(pos)
            try:
                return float(text), pos
            except ValueError as exc:
                raise UBJSONError(f"bad high-precision number {text!r}") from exc
        raise UBJSONError(f"unknown marker {chr(marker)!r} at offset {pos - 1}")

    def typed(self, pos: int, depth: int, element: int) -> tuple[Any, int]:
        """One element of a typed container: its marker is ``element``, not in the data."""
        if element in _SCALARS:
            size, fmt = _SCALARS[element]
            return struct.unpack_from(fmt, self.data, pos)[0], pos + size
        if element in _CONSTANTS:
            return _CONSTANTS[element], pos
        return self.marked(element, pos, depth)  # strings and containers

    def array(
        self, pos: int, depth: int, element: int | None, count: int | None
    ) -> tuple[list[Any], int]:
        items = []
        if element is not None and count is not None:
            for _ in range(count):
                item, pos = self.typed(pos, depth, element)
                items.append(item)
            return items, pos
        if count is not None:
            for _ in range(count):
                item, pos = self.value(self.skip_noop(pos), depth)
                items.append(item)
            return items, pos
        while True:
            pos = self.skip_noop(pos)
            if self.data[pos] == _END_ARRAY:
                return items, pos + 1
            item, pos = self.value(pos, depth)
            items.append(item)

    def object(
        self, pos: int, depth: int, element: int | None, count: int | None
    ) -> tuple[dict[str, Any], int]:
        # the hot loop (an XGBoost model is mostly objects of typed arrays), so the common
        # encodings (int64 lengths, typed numeric arrays) are read inline
        data = self.data
        result: dict[str, Any] = {}
        while True:
            marker = data[pos]
            if count is None:
                while marker == _NOOP:
                    pos += 1
                    marker = data[pos]
                if marker == _END_OBJECT:
                    return result, pos + 1
            elif len(result) == count:
                return result, pos
            if marker == _INT64:
                size, pos = _unpack_int64(data, pos + 1)[0], pos + 9
                if size < 0 or size > len(data) - pos:
                    raise UBJSONError(f"length {size} at offset {pos} exceeds the bytes left")
            else:
                size, pos = self.integer(pos)
            try:
                key = data[pos : pos + size].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UBJSONError("a key is not valid UTF-8") from exc
            pos += size
            if element is not None:
                result[key], pos = self.typed(pos, depth, element)
                continue
            marker = data[pos]
            while marker == _NOOP:
                pos += 1
                marker = data[pos]
            if (
                marker == _ARRAY
                and data[pos + 1] == _TYPED
                and data[pos + 2] in _NUMERIC
                and data[pos + 3] == _COUNTED
                and data[pos + 4] == _INT64
                and depth < self.max_depth
            ):
                dtype = _NUMERIC[data[pos + 2]]
                length, pos = _unpack_int64(data, pos + 5)[0], pos + 13
                end = pos + length * dtype.itemsize
                if length < 0 or end > len(data):
                    raise UBJSONError(f"length {length} at offset {pos} exceeds the bytes left")
                result[key] = TypedArray(data, pos, length, dtype)
                pos = end
            elif marker == _STRING and data[pos + 1] == _INT64:
                size, pos = _unpack_int64(data, pos + 2)[0], pos + 10
                if size < 0 or size > len(data) - pos:
                    raise UBJSONError(f"length {size} at offset {pos} exceeds the bytes left")
                try:
                    result[key] = data[pos : pos + size].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise UBJSONError("a string is not valid UTF-8") from exc
                pos += size
            else:
                result[key], pos = self.marked(marker, pos + 1, depth)
