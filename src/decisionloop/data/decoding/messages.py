"""Decoding one message value into one row: a JSON object, or an Avro record with a schema.

A decoder never raises for a bad value: it returns ``(row, None)``, or ``(None, reason)`` with
a short reason (the ``_error`` of the row that ingestion quarantines). A row may not use a
reserved column name (``_position``, ``_error``, ``_payload``) as a key.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from decisionloop.data.batches import ERROR, PAYLOAD, POSITION
from decisionloop.errors import Invalid

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "RESERVED",
    "SURROGATE_ESCAPE",
    "Decoder",
    "ValueFormat",
    "avro_decoder",
    "decode_json",
    "payload_text",
    "value_decoder",
]

ValueFormat = Literal["json", "avro"]
#: the raw value kept in ``_payload`` for a message that did not decode
MAX_PAYLOAD_BYTES = 64 * 1024
#: the columns every stream batch adds: no decoded row may use them as keys
RESERVED = (POSITION, ERROR, PAYLOAD)
#: an escaped UTF-16 surrogate (``\ud800``-``\udfff``) in JSON text
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}

#: decode one value: the row, or None and the reason it failed
Decoder = Callable[[bytes], tuple[dict[str, Any] | None, str | None]]


def value_decoder(
    value_format: ValueFormat, avro_schema: Mapping[str, Any] | str | None = None
) -> Decoder:
    """The decoder for a value format: :func:`decode_json`, or :func:`avro_decoder` over
    ``avro_schema``. An unknown format, or a missing or invalid schema, raises
    :class:`~decisionloop.errors.Invalid`."""
    if value_format == "json":
        return decode_json
    if value_format != "avro":
        raise Invalid(f"unknown value format {value_format!r}", hint="use 'json' or 'avro'")
    return avro_decoder(avro_schema)


def payload_text(value: bytes) -> str:
    """The ``_payload`` of a value that did not decode: UTF-8 text (invalid bytes replaced),
    cut at :data:`MAX_PAYLOAD_BYTES`."""
    return value[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")


def _too_long(value: bytes) -> str:
    if len(value) <= MAX_PAYLOAD_BYTES:
        return ""
    return f" (payload cut to {MAX_PAYLOAD_BYTES} of {len(value)} bytes)"


def _checked_row(row: object, value: bytes, what: str) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(row, dict):
        kind = _JSON_TYPES.get(type(row), "null" if row is None else type(row).__name__)
        return None, f"{what} {kind}, not an object{_too_long(value)}"
    reserved = [name for name in RESERVED if name in row]
    if reserved:
        return None, f"uses the reserved key {reserved[0]!r}{_too_long(value)}"
    return row, None


def decode_json(value: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Decode one JSON object (a :data:`Decoder`): not UTF-8, not JSON (an unpaired surrogate
    escape included), nested too deeply for Python, not an object or using a reserved key is
    the reason it failed."""
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
    if b"\\u" in value and SURROGATE_ESCAPE.search(value):
        # json accepts an unpaired surrogate escape ("\ud800"), which no UTF-8 text can hold
        try:
            json.dumps(row, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(exc.object[exc.start])
            return None, f"not valid JSON: unpaired surrogate \\u{code:04x}{_too_long(value)}"
    return _checked_row(row, value, "a JSON")


def avro_decoder(schema: Mapping[str, Any] | str | None) -> Decoder:
    """A :data:`Decoder` of Avro records (binary encoding, no header) with a record schema (a
    dict or JSON text); fastavro missing raises :class:`~decisionloop.errors.Unavailable`, a
    missing or invalid schema :class:`~decisionloop.errors.Invalid`."""
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
