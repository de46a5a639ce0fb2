"""Stream URLs: which event log topic or Kinesis stream a stream source reads, and how.

::

    kafka://host:9092/orders?group=ingest&format=json
    eventlog:///abs/path/events.db?topic=orders&group=ingest&format=avro
    eventlog://.decisionloop/events.db?topic=orders          (relative to the project folder)
    kinesis://orders?group=ingest&format=json

``group`` is the consumer group (whose committed offsets, or checkpoints, say where to resume;
:data:`DEFAULT_GROUP` when absent) and ``format`` how each value is decoded (``json``, the
default, or ``avro``; Kinesis reads ``json`` only).
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from decisionloop.backends.events.base import validate_group, validate_topic
from decisionloop.errors import Invalid

__all__ = ["DEFAULT_GROUP", "KinesisUrl", "StreamUrl", "parse_kinesis_url", "parse_stream_url"]

DEFAULT_GROUP = "decisionloop-ingest"
_FORMATS = ("json", "avro")
_OPTIONS = ("group", "format")
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


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


class KinesisUrl(NamedTuple):
    """A parsed ``kinesis://stream?group=g&format=json`` URL."""

    stream: str
    group: str
    value_format: str


def parse_kinesis_url(url: str) -> KinesisUrl:
    """Split a Kinesis URL into the stream, the consumer group (whose checkpoints say where to
    resume; :data:`DEFAULT_GROUP` when absent) and the format (``json``, the only one).
    Anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme != "kinesis":
        raise Invalid(f"not a Kinesis URL: {url}", hint="use kinesis://stream-name")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise Invalid(
            f"malformed query in Kinesis URL {url}", hint="use ?group=g&format=json"
        ) from exc
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise Invalid(f"Kinesis URL repeats {', '.join(repeated)}: {url}", hint="give each once")
    options = {name: values[0] for name, values in query.items()}
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise Invalid(
            f"unknown Kinesis URL option(s) {', '.join(unknown)}: {url}",
            hint=f"known options: {', '.join(_OPTIONS)}",
        )
    stream = parts.netloc
    if parts.path.strip("/") or parts.fragment or not _STREAM_NAME.match(stream):
        raise Invalid(
            f"not a Kinesis stream URL: {url}",
            hint="kinesis://NAME, a stream name of 1-128 letters, digits, '_', '.', '-'",
        )
    value_format = options.get("format", "json")
    if value_format != "json":
        raise Invalid(f"unknown Kinesis record format {value_format!r}: {url}", hint="format=json")
    group = validate_group(options.get("group", DEFAULT_GROUP))
    return KinesisUrl(stream, group, value_format)
