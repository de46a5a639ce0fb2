"""The online store Protocol: the latest feature row of each entity, per feature view.

An online store keeps, for each *view* (a feature view's name) and each *entity key* (the
entity's join-key value as text), one :class:`OnlineRow`: the event time of the row and its
feature values. Writes are upserts where the newer row wins, so materialization can run
incrementally, out of order and more than once; reads fetch many keys in one round trip.

Values are JSON scalars and round-trip exactly: ``None``, ``bool``, ``int`` (any size),
``float`` (bit for bit; NaN, ``inf`` and ``-inf`` too) and ``str`` (any unicode). Subclasses
of those and NumPy scalars are stored as the plain Python value. Event times are integers,
microseconds since the Unix epoch, within +-(2**53 - 1) (years 1685 to 2255), the range every
backend compares exactly (Redis compares them in Lua, whose numbers are doubles).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from decisionloop.errors import Invalid

__all__ = [
    "MAX_EVENT_TS",
    "MIN_EVENT_TS",
    "OnlineRow",
    "OnlineStore",
    "decode_many",
    "decode_values",
    "encode_rows",
    "encode_values",
    "validate_keys",
    "validate_min_event_ts",
    "validate_view",
]

#: the event-time range every backend compares exactly: integers a double holds exactly
MAX_EVENT_TS = 2**53 - 1
MIN_EVENT_TS = -MAX_EVENT_TS

_SCALARS = frozenset({type(None), bool, int, float, str})
_TEXT = frozenset({str})


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """The feature values of one entity in one view, as of ``event_ts``."""

    entity_key: str  # the entity's join-key value as text
    event_ts: int  # the feature row's event time, microseconds since the Unix epoch (UTC)
    values: Mapping[str, Any]  # feature name -> JSON scalar (None, bool, int, float, str)


@runtime_checkable
class OnlineStore(Protocol):
    """The latest feature row per entity and view, for serving (SQLite, Redis).

    Bad arguments raise :class:`~decisionloop.errors.Invalid` before anything is written; an
    unreachable or failing backend raises :class:`~decisionloop.errors.Unavailable`.
    """

    url: str

    def write_batch(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Upsert rows of one feature view atomically (all or none). A row replaces the stored
        row of its entity only when its event_ts >= the stored one's (an older row never
        overwrites a newer one, so incremental and out-of-order materialization are safe).
        Returns how many rows were stored."""
        ...

    def read(
        self, view: str, keys: Sequence[str], *, min_event_ts: int | None = None
    ) -> list[OnlineRow | None]:
        """The stored row of each key, in the order of ``keys`` (duplicates allowed), None for a
        key that has none, or whose event_ts < min_event_ts (the caller passes now - TTL: a
        value older than the view's TTL is missing, not stale). One round trip for many keys."""
        ...

    def delete_entities(self, view: str, keys: Sequence[str]) -> int:
        """Remove these keys' rows; returns how many existed."""
        ...

    def drop_view(self, view: str) -> None:
        """Remove every row of a view (e.g. a view was removed or redefined)."""
        ...

    def count(self, view: str) -> int:
        """How many entities the view holds."""
        ...

    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects)."""
        ...


# -- argument checks shared by the implementations ------------------------------------------


def validate_view(view: str) -> str:
    """``view`` itself, when it is non-empty text; else Invalid."""
    if type(view) is not str or not view:
        raise Invalid(f"invalid feature view name {view!r}", hint="a view name is non-empty text")
    return view


def validate_keys(keys: Sequence[str]) -> Sequence[str]:
    """``keys`` as a list or tuple of plain text (subclasses converted); else Invalid."""
    if isinstance(keys, str | bytes):
        raise Invalid(
            f"keys must be a sequence of entity keys, not one {type(keys).__name__}",
            hint="pass a list, e.g. read(view, [key])",
        )
    if type(keys) not in (list, tuple):  # e.g. a pandas Series, indexed by label
        try:
            keys = list(keys)
        except TypeError as exc:
            raise Invalid(
                f"keys must be a sequence of entity keys, not a {type(keys).__name__}",
                hint="pass a list, e.g. read(view, [key])",
            ) from exc
    if _TEXT.issuperset(map(type, keys)):
        return keys
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            raise Invalid(
                f"entity key {index} is a {type(key).__name__} ({key!r}), not text",
                hint="entity keys are the join-key values as text, e.g. str(customer_id)",
            )
    return [str.__str__(key) for key in keys]


def validate_min_event_ts(min_event_ts: int | None) -> None:
    """Invalid unless ``min_event_ts`` is None or an integer."""
    if min_event_ts is not None and (type(min_event_ts) is not int):
        raise Invalid(
            f"min_event_ts must be an int (microseconds since the epoch), got {min_event_ts!r}",
            hint="pass now - TTL in microseconds, or None",
        )


# -- the payload: feature values as compact JSON ------------------------------------------


def _make_encoder() -> Callable[[dict[str, Any]], str]:
    public = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    try:
        # the C encoder called directly skips JSONEncoder.encode's per-call setup (~20% of
        # the encoding time); used only when it gives exactly what the public encoder gives
        make: Any = getattr(json.encoder, "c_make_encoder", None)
        if make is None:
            return public
        ascii_text = json.encoder.encode_basestring_ascii
        raw = make(None, None, ascii_text, None, ":", ",", False, False, True)

        def fast(values: dict[str, Any]) -> str:
            return "".join(raw(values, 0))

        sample = {"a": 0.1, "b": None, "c": "é\n\"'", "d": True, "e": float("nan"), "f": 2**70}
        if fast(sample) == public(sample):
            return fast
    except (TypeError, ValueError):
        pass
    return public


_encode_stdlib = _make_encoder()
_raw_decode = json.JSONDecoder().raw_decode


def _make_fast_codec() -> tuple[Callable[[dict[str, Any]], str], Callable[[str], Any]] | None:
    """orjson, 2-4x faster, for the values it writes exactly like the standard library reads
    them: it writes NaN and infinities as null and refuses integers beyond 64 bits and lone
    surrogates, so those payloads take the standard library's path (checked per payload)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - a dependency; the standard library still works
        return None
    dumps, loads = orjson.dumps, orjson.loads

    def encode(values: dict[str, Any]) -> str:
        for value in values.values():
            if type(value) is float and (value != value or value in (_INF, -_INF)):
                return _encode_stdlib(values)
        try:
            text: str = dumps(values).decode()
        except (TypeError, orjson.JSONEncodeError):  # big ints, lone surrogates
            return _encode_stdlib(values)
        return text

    return encode, loads


_INF = float("inf")
_FAST = _make_fast_codec()
_encode = _FAST[0] if _FAST is not None else _encode_stdlib
_fast_loads = _FAST[1] if _FAST is not None else None


def encode_values(values: Mapping[str, Any]) -> str:
    """Feature values as compact JSON text (ASCII, NaN and infinities as ``NaN``/``Infinity``)."""
    return _encode(_plain_values(values, -1))


def decode_values(payload: str) -> dict[str, Any]:
    """The feature values of a payload written by :func:`encode_values`."""
    if _fast_loads is not None:
        try:
            fast: dict[str, Any] = _fast_loads(payload)
            return fast
        except ValueError:  # NaN/Infinity tokens: the standard library reads them
            pass
    values: dict[str, Any] = _raw_decode(payload)[0]
    return values


def decode_many(payloads: Sequence[str]) -> list[dict[str, Any]]:
    """The feature values of several payloads, decoded in one call (faster than one by one)."""
    if not payloads:
        return []
    text = f"[{','.join(payloads)}]"
    if _fast_loads is not None:
        try:
            fast: list[dict[str, Any]] = _fast_loads(text)
            return fast
        except ValueError:  # NaN/Infinity tokens somewhere: the standard library reads them
            pass
    decoded: list[dict[str, Any]] = _raw_decode(text)[0]
    return decoded


def encode_rows(rows: Sequence[OnlineRow]) -> list[tuple[str, int, str]]:
    """``(entity_key, event_ts, payload)`` per row, after checking every row (Invalid names the
    first bad one), so a backend can write all of them or none."""
    if isinstance(rows, OnlineRow) or not isinstance(rows, Sequence):
        raise Invalid(
            f"rows must be a sequence of OnlineRow, not a {type(rows).__name__}",
            hint="pass a list, e.g. write_batch(view, [row])",
        )
    encode = _encode
    scalars, text = _SCALARS, _TEXT
    encoded: list[tuple[str, int, str]] = []
    append = encoded.append
    for index, row in enumerate(rows):
        if type(row) is not OnlineRow:
            row = _checked_row(index, row)
        key, event_ts, values = row.entity_key, row.event_ts, row.values
        # the common case in a few C-speed checks; anything else takes the careful path
        if not (
            type(key) is str
            and type(event_ts) is int
            and MIN_EVENT_TS <= event_ts <= MAX_EVENT_TS
            and type(values) is dict
            and scalars.issuperset(map(type, values.values()))
            and text.issuperset(map(type, values))
        ):
            key, event_ts, values = _checked_fields(index, key, event_ts, values)
        append((key, event_ts, encode(values)))
    return encoded


def _checked_row(index: int, row: Any) -> OnlineRow:
    if isinstance(row, OnlineRow):
        return row
    raise Invalid(
        f"row {index} is a {type(row).__name__}, not an OnlineRow",
        hint="write OnlineRow(entity_key=..., event_ts=..., values={...})",
    )


def _checked_fields(
    index: int, key: Any, event_ts: Any, values: Any
) -> tuple[str, int, dict[str, Any]]:
    if not isinstance(key, str):
        raise Invalid(
            f"row {index}: entity_key is a {type(key).__name__} ({key!r}), not text",
            hint="entity keys are the join-key values as text, e.g. str(customer_id)",
        )
    if isinstance(event_ts, bool) or not hasattr(event_ts, "__index__"):
        raise Invalid(
            f"row {index}: event_ts {event_ts!r} is not an integer",
            hint="event_ts is microseconds since the Unix epoch, e.g. int(ts.timestamp() * 1e6)",
        )
    event_ts = event_ts.__index__()
    if not MIN_EVENT_TS <= event_ts <= MAX_EVENT_TS:
        raise Invalid(
            f"row {index}: event_ts {event_ts} is outside +-(2**53 - 1) microseconds",
            hint="event_ts is microseconds (not nanoseconds) since the Unix epoch",
        )
    return str.__str__(key), event_ts, _plain_values(values, index)


def _plain_values(values: Any, index: int) -> dict[str, Any]:
    """``values`` as a plain dict of plain scalars, or Invalid naming the offending feature."""
    where = f"row {index}: " if index >= 0 else ""
    if not isinstance(values, Mapping):
        raise Invalid(
            f"{where}values is a {type(values).__name__}, not a mapping",
            hint="values maps feature names to JSON scalars, e.g. {'tenure': 12}",
        )
    plain: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise Invalid(
                f"{where}feature name {name!r} is a {type(name).__name__}, not text",
                hint="feature names are text",
            )
        plain[str.__str__(name)] = _plain_scalar(value, f"{where}feature {name!r}")
    return plain


def _plain_scalar(value: Any, what: str) -> Any:
    if value is None or type(value) in _SCALARS:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    item = getattr(value, "item", None)  # NumPy scalars: np.float32, np.int64, np.bool_, ...
    if callable(item) and getattr(value, "shape", None) == ():
        plain = item()
        if plain is None or type(plain) in _SCALARS:
            return plain
    raise Invalid(
        f"{what} is a {type(value).__name__} ({value!r}), not a JSON scalar",
        hint="feature values are None, bool, int, float or str; convert dates to text or "
        "numbers first",
    )
