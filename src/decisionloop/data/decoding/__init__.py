"""Decoding stream messages into Arrow columns: what every stream source does with a batch.

Each message value becomes one row: a JSON object, or an Avro record with a given schema. A
value that does not decode is never dropped and never raises: its row's data columns are null,
``_error`` holds a short reason and ``_payload`` the raw value as text, cut at
:data:`MAX_PAYLOAD_BYTES`. Columns are the union of the decoded keys, with the natural Arrow
type of a consistent column and text for a mixed or nested one; types are inferred per batch.

A source builds its decoder once and decodes each batch with it::

    decode = value_decoder("json")            # or value_decoder("avro", schema)
    names, arrays, errors, payloads = decode_batch(values, decode)

JSON batches are parsed at once by Arrow's JSON reader where that gives exactly what decoding
message by message gives (:func:`json_columns`), else message by message
(:func:`decoded_columns`).
"""

from __future__ import annotations

from collections.abc import Sequence

from decisionloop.data.decoding.columns import Columns, decoded_columns
from decisionloop.data.decoding.fast_json import json_columns
from decisionloop.data.decoding.messages import (
    MAX_PAYLOAD_BYTES,
    Decoder,
    ValueFormat,
    avro_decoder,
    decode_json,
    value_decoder,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Columns",
    "Decoder",
    "ValueFormat",
    "avro_decoder",
    "decode_batch",
    "decode_json",
    "decoded_columns",
    "json_columns",
    "value_decoder",
]


def decode_batch(values: Sequence[bytes], decode: Decoder = decode_json) -> Columns:
    """Decode a batch of message values into its data columns and its ``_error`` and
    ``_payload`` columns (one row per value, in order).

    With :func:`decode_json` the JSON fast path (:func:`json_columns`) is tried first; any other
    decoder, or a batch the fast path leaves to it, is decoded message by message
    (:func:`decoded_columns`). Both give the same rows, columns, types and errors.
    """
    columns = json_columns(values) if decode is decode_json else None
    if columns is None:
        columns = decoded_columns(values, decode)
    return columns
