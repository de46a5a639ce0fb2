"""The embedded event log: append-only topics in one SQLite file (``eventlog://``).

WAL mode with ``synchronous=FULL``: an ``append`` that returned is on disk and survives
``kill -9`` (and a power cut). Several processes may append at once (``BEGIN IMMEDIATE``
serializes them and hands out gap-free offsets); each consumer group should be polled by one
process at a time, since groups do not balance partitions between consumers here.
"""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from decisionloop.backends.events.base import (
    Capabilities,
    Event,
    EventPosition,
    NewEvent,
    choose_partition,
    validate_group,
    validate_poll,
    validate_positions,
    validate_records,
    validate_topic,
)
from decisionloop.errors import Conflict, Invalid, NotFound, Unavailable

__all__ = ["DEFAULT_URL", "SCHEME", "LocalEventLog", "database_path"]

SCHEME = "eventlog"
#: relative to the project folder
DEFAULT_URL = f"{SCHEME}://.decisionloop/events.db"
DEFAULT_FILE = "events.db"
MAX_EVENT_BYTES = 16 * 1024 * 1024
MAX_PARTITIONS = 1024
_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000
# how often an empty poll looks again: short at first for latency, then backing off
_POLL_INTERVALS_S = (0.01, 0.02, 0.05, 0.1)
# what a poll reads of one partition, (partition, offset, ...): whole events, or only values
_AFTER = (
    " FROM events WHERE topic = ? AND partition_id = ? AND event_offset >= ?"
    " ORDER BY event_offset LIMIT ?"
)
_SELECT_EVENTS = "SELECT ?, event_offset, event_key, event_value, headers, timestamp_ms" + _AFTER
_SELECT_VALUES = "SELECT ?, event_offset, event_value" + _AFTER

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    event_offset INTEGER NOT NULL,
    event_key BLOB,
    event_value BLOB NOT NULL,
    headers TEXT,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_id, event_offset)
);
CREATE TABLE IF NOT EXISTS group_offsets (
    topic TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, consumer_group, partition_id)
) WITHOUT ROWID;
"""


def database_path(url: str) -> Path:
    """The SQLite file named by ``eventlog:///abs/path`` or ``eventlog://relative/path``.

    A path ending in ``.db``, ``.sqlite`` or ``.sqlite3`` is the database file; any other path
    is a folder holding ``events.db``. Relative paths are relative to the working directory
    (Settings resolves them against the project folder first).
    """
    prefix = f"{SCHEME}://"
    if not url.startswith(prefix):
        raise Invalid(
            f"not an event log URL: {url}",
            hint=f"use {SCHEME}:///absolute/path/events.db or {DEFAULT_URL}",
        )
    rest = unquote(url[len(prefix) :].split("?", 1)[0].split("#", 1)[0])
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if rest in ("", "/"):
        raise Invalid(f"event log URL without a path: {url}", hint=f"use {DEFAULT_URL}")
    path = Path(rest)
    if path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return path
    return path / DEFAULT_FILE


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _encode_headers(headers: tuple[tuple[str, bytes], ...]) -> str | None:
    if not headers:
        return None
    return json.dumps([[name, base64.b64encode(value).decode()] for name, value in headers])


def _decode_headers(text: str | None) -> tuple[tuple[str, bytes], ...]:
    if not text:
        return ()
    return tuple((str(name), base64.b64decode(value)) for name, value in json.loads(text))


class LocalEventLog:
    """An :class:`~decisionloop.backends.events.EventLog` in a SQLite file.

    ``LocalEventLog("eventlog:///abs/events.db")``; the file and its folder are created on
    first use. Safe to share between threads (calls are serialized).
    """

    capabilities = Capabilities(
        max_event_bytes=MAX_EVENT_BYTES, shared_across_hosts=False, persistent=True
    )

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.path = database_path(url)
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._partitions: dict[str, int] = {}
        # (topic, group) -> next offset per partition: this instance's consumer positions
        self._positions: dict[tuple[str, str], dict[int, int]] = {}
        self._round_robin: dict[str, int] = {}
        self._next_partition: dict[tuple[str, str], int] = {}

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(
                f"cannot open the event log {self.path}: {exc}",
                hint="check that the folder exists and is writable",
            ) from exc
        try:
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            if connection.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                # statement by statement: executescript() would commit BEGIN IMMEDIATE early
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise Unavailable(
                f"cannot use the event log {self.path}: {exc}",
                hint="the file is not an event log database, or it is corrupt",
            ) from exc
        self._connection = connection
        return connection

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; ``write`` wraps the block in BEGIN IMMEDIATE."""
        with self._lock:
            connection = self._connect()
            try:
                if write:
                    connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
                if connection.in_transaction:
                    connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise Unavailable(
                    f"event log {self.path}: {exc}",
                    hint="another process may hold the database locked, or the disk is full",
                ) from exc

    def _partition_count(self, connection: sqlite3.Connection, topic: str) -> int:
        validate_topic(topic)
        known = self._partitions.get(topic)
        if known is not None:
            return known
        row = connection.execute(
            "SELECT partitions FROM topics WHERE topic = ?", (topic,)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"no topic {topic!r} in the event log {self.path}",
                hint="create it first with create_topic(topic, partitions)",
            )
        self._partitions[topic] = int(row[0])
        return int(row[0])

    # -- the Protocol ----------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        validate_topic(topic)
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise Invalid(
                f"partitions must be 1..{MAX_PARTITIONS}, got {partitions}",
                hint="one partition keeps total order; more allow parallel consumers",
            )
        with self._session(write=True) as connection:
            row = connection.execute(
                "SELECT partitions FROM topics WHERE topic = ?", (topic,)
            ).fetchone()
            if row is not None:
                if int(row[0]) != partitions:
                    raise Conflict(
                        f"topic {topic!r} exists with {row[0]} partitions, not {partitions}",
                        hint="use the existing partition count, or a new topic name",
                    )
                return
            connection.execute(
                "INSERT INTO topics (topic, partitions, created_ms) VALUES (?, ?, ?)",
                (topic, partitions, _now_ms()),
            )
            connection.executemany(
                "INSERT INTO partitions (topic, partition_id, next_offset) VALUES (?, ?, 0)",
                [(topic, partition) for partition in range(partitions)],
            )
        self._partitions[topic] = partitions

    def append(self, topic: str, records: Sequence[NewEvent]) -> list[EventPosition]:
        validate_topic(topic)
        validate_records(records, MAX_EVENT_BYTES)
        if not records:
            with self._session() as connection:
                self._partition_count(connection, topic)
            return []
        with self._session(write=True) as connection:
            count = self._partition_count(connection, topic)
            next_offsets = dict(
                connection.execute(
                    "SELECT partition_id, next_offset FROM partitions WHERE topic = ?", (topic,)
                ).fetchall()
            )
            counter = self._round_robin.get(topic, random.randrange(count))
            timestamp = _now_ms()
            positions: list[EventPosition] = []
            rows = []
            for record in records:
                partition = choose_partition(record.key, count, counter)
                if record.key is None:
                    counter += 1
                offset = next_offsets[partition]
                next_offsets[partition] = offset + 1
                positions.append(EventPosition(topic, partition, offset))
                rows.append(
                    (
                        topic,
                        partition,
                        offset,
                        record.key,
                        record.value,
                        _encode_headers(record.headers),
                        timestamp,
                    )
                )
            connection.executemany(
                "INSERT INTO events (topic, partition_id, event_offset, event_key, event_value,"
                " headers, timestamp_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.executemany(
                "UPDATE partitions SET next_offset = ? WHERE topic = ? AND partition_id = ?",
                [(offset, topic, partition) for partition, offset in next_offsets.items()],
            )
        self._round_robin[topic] = counter
        return positions

    def poll(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[Event]:
        rows = self._poll_rows(topic, group, max_records, timeout_s, _SELECT_EVENTS)
        timestamps: dict[int, datetime] = {}  # an append stores one timestamp for its events
        events = []
        for partition, offset, key, value, headers, timestamp_ms in rows:
            timestamp = timestamps.get(timestamp_ms)
            if timestamp is None:
                timestamp = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
                timestamps[timestamp_ms] = timestamp
            events.append(
                Event(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=None if key is None else bytes(key),
                    value=bytes(value),
                    timestamp=timestamp,
                    headers=_decode_headers(headers),
                )
            )
        return events

    def poll_values(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> list[tuple[int, int, bytes]]:
        """``poll`` as ``(partition, offset, value)`` rows straight from SQLite, without
        building Event objects (for stream sources; same positions and semantics)."""
        return self._poll_rows(topic, group, max_records, timeout_s, _SELECT_VALUES)

    def poll_columns(
        self, topic: str, group: str, *, max_records: int = 1000, timeout_s: float = 1.0
    ) -> tuple[list[int], list[int], list[bytes]]:
        """``poll_values`` as three lists: partitions, offsets, values."""
        rows = self._poll_rows(topic, group, max_records, timeout_s, _SELECT_VALUES)
        return (
            [row[0] for row in rows],
            [row[1] for row in rows],
            [bytes(row[2]) for row in rows],
        )

    def _poll_rows(
        self, topic: str, group: str, max_records: int, timeout_s: float, query: str
    ) -> list[Any]:
        validate_topic(topic)
        validate_group(group)
        validate_poll(max_records, timeout_s)
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            rows = self._read_available(topic, group, max_records, query)
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return rows
            pause = _POLL_INTERVALS_S[min(attempt, len(_POLL_INTERVALS_S) - 1)]
            time.sleep(min(pause, remaining))
            attempt += 1

    def _read_available(self, topic: str, group: str, max_records: int, query: str) -> list[Any]:
        """``query``'s rows, ``(partition, offset, ...)``, after the group's position, which
        advances past them."""
        with self._session() as connection:
            count = self._partition_count(connection, topic)
            positions = self._positions.get((topic, group))
            if positions is None:
                positions = dict.fromkeys(range(count), 0)
                positions.update(self._committed(connection, topic, group))
                self._positions[(topic, group)] = positions
            # start at a rotating partition so a busy one cannot starve the others
            first = self._next_partition.get((topic, group), 0)
            self._next_partition[(topic, group)] = (first + 1) % count
            found: list[Any] = []
            for step in range(count):
                if len(found) >= max_records:
                    break
                partition = (first + step) % count
                rows = connection.execute(
                    query,
                    (partition, topic, partition, positions[partition], max_records - len(found)),
                ).fetchall()
                if rows:
                    found += rows
                    positions[partition] = int(rows[-1][1]) + 1
            return found

    def commit(self, topic: str, group: str, positions: Mapping[int, int]) -> None:
        validate_topic(topic)
        validate_group(group)
        with self._session(write=True) as connection:
            checked = validate_positions(positions, self._partition_count(connection, topic))
            now = _now_ms()
            connection.executemany(
                "INSERT INTO group_offsets (topic, consumer_group, partition_id, next_offset,"
                " updated_ms) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (topic, consumer_group, partition_id)"
                " DO UPDATE SET next_offset = excluded.next_offset,"
                " updated_ms = excluded.updated_ms",
                [(topic, group, partition, offset, now) for partition, offset in checked.items()],
            )

    def committed(self, topic: str, group: str) -> dict[int, int]:
        validate_topic(topic)
        validate_group(group)
        with self._session() as connection:
            self._partition_count(connection, topic)
            return self._committed(connection, topic, group)

    @staticmethod
    def _committed(connection: sqlite3.Connection, topic: str, group: str) -> dict[int, int]:
        rows = connection.execute(
            "SELECT partition_id, next_offset FROM group_offsets"
            " WHERE topic = ? AND consumer_group = ? ORDER BY partition_id",
            (topic, group),
        ).fetchall()
        return {int(partition): int(offset) for partition, offset in rows}

    def close(self) -> None:
        """Close the connection; a later call reconnects as a new consumer (from the
        committed offsets)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._positions.clear()
            self._next_partition.clear()

    def __repr__(self) -> str:
        return f"LocalEventLog({self.url!r})"
