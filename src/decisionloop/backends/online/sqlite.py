"""The online store in one SQLite file (``sqlite:///path/online.db``).

URLs follow SQLAlchemy: ``sqlite:///relative/online.db``, ``sqlite:////absolute/online.db``
(Settings makes relative paths absolute against the project folder), and ``sqlite://`` or
``sqlite:///:memory:`` for a private in-memory store that lives until :meth:`close`.

One table, ``online_features``, keyed by (view, entity_key), WAL mode with
``synchronous=NORMAL``: readers never wait for a writer, a committed batch survives a crash
of the process (a power cut may lose the last batches, which materialization writes again).
Each thread gets its own connection (an ASGI server reads from its worker threads), several
processes may write at once (``BEGIN IMMEDIATE`` and a 30 s busy timeout), and a forked child
opens connections of its own.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from decisionloop.backends.online.base import (
    OnlineRow,
    decode_many,
    decode_values,
    encode_rows,
    validate_keys,
    validate_min_event_ts,
    validate_view,
)
from decisionloop.errors import Invalid, Unavailable

__all__ = ["MEMORY", "SCHEME", "SqliteOnlineStore", "database_path"]

SCHEME = "sqlite"
#: what :func:`database_path` returns for an in-memory store
MEMORY = ":memory:"
_BUSY_TIMEOUT_S = 30.0
_SCHEMA_VERSION = 1
# keys per SELECT ... IN (...), below the oldest SQLite variable limit (999); an IN list is
# padded to a power of two so a few cached statements serve every size
_CHUNK = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    event_ts INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (view, entity_key)
) WITHOUT ROWID
"""
_UPSERT = (
    "INSERT INTO online_features (view, entity_key, event_ts, payload) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (view, entity_key) DO UPDATE SET"
    " event_ts = excluded.event_ts, payload = excluded.payload"
    " WHERE excluded.event_ts >= online_features.event_ts"
)
_SELECT_ONE = "SELECT event_ts, payload FROM online_features WHERE view = ? AND entity_key = ?"


def _select_in(size: int) -> str:
    marks = ", ".join("?" * size)  # only placeholders are formatted in; every value is bound
    columns = "entity_key, event_ts, payload"
    return f"SELECT {columns} FROM online_features WHERE view = ? AND entity_key IN ({marks})"  # noqa: S608


_SELECT_IN = {1 << power: _select_in(1 << power) for power in range(_CHUNK.bit_length())}
_DELETE_ONE = "DELETE FROM online_features WHERE view = ? AND entity_key = ?"
_DELETE_VIEW = "DELETE FROM online_features WHERE view = ?"
_COUNT = "SELECT COUNT(*) FROM online_features WHERE view = ?"


def database_path(url: str) -> str:
    """The file named by a ``sqlite://`` URL, or :data:`MEMORY` for an in-memory store."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0].lower() != SCHEME:
        raise Invalid(
            f"not a SQLite URL: {url!r}",
            hint="use sqlite:///relative/online.db or sqlite:////absolute/online.db",
        )
    rest = rest.split("?", 1)[0]
    if rest in ("", "/", f"/{MEMORY}"):
        return MEMORY
    if not rest.startswith("/"):
        raise Invalid(
            f"a SQLite URL names a file, not a host: {url!r}",
            hint="use three slashes, e.g. sqlite:///.decisionloop/online.db",
        )
    return rest[1:]


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL mode once; the switch takes a lock for which SQLite does not wait
    (when several processes open a new file at once), so wait here."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF
            if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005 + random.random() * 0.02)


class _Handle:
    """A connection and the lock that guards it: one per thread (one in all for memory)."""

    __slots__ = ("__weakref__", "connection", "lock")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.lock = threading.Lock()


class SqliteOnlineStore:
    """An :class:`~decisionloop.backends.online.OnlineStore` in a SQLite file.

    ``SqliteOnlineStore("sqlite:////abs/online.db")``; the file and its folders are created on
    first use. Safe to share between threads and processes.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = database_path(url)
        self._memory = self.path == MEMORY
        self._lock = threading.Lock()
        self._local = threading.local()
        # a thread's handle lives in its thread-local slot: when the thread ends, the
        # handle and its connection go; close() reaches the live ones through this set
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._shared: _Handle | None = None
        self._schema_ready = False
        _OPEN_STORES.add(self)

    # -- connections -----------------------------------------------------------------------

    def _handle(self) -> _Handle:
        try:
            handle: _Handle = self._local.handle
        except AttributeError:
            return self._new_handle()
        return handle

    def _new_handle(self) -> _Handle:
        with self._lock:
            if not self._memory:
                handle = _Handle(self._connect())
                self._handles.add(handle)
            elif self._shared is None:
                handle = self._shared = _Handle(self._connect())
            else:
                handle = self._shared
            self._local.handle = handle
        return handle

    def _connect(self) -> sqlite3.Connection:
        try:
            if not self._memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(
                f"cannot open the online store {self.path}: {exc}",
                hint="check that the folder exists and is writable",
            ) from exc
        try:
            if not self._memory:
                _use_wal(connection)
            connection.execute("PRAGMA synchronous = NORMAL")
            if not self._schema_ready:
                self._create_schema(connection)
                self._schema_ready = True
        except sqlite3.Error as exc:
            connection.close()
            raise Unavailable(
                f"cannot use the online store {self.path}: {exc}",
                hint="the file is not a SQLite database, or it is corrupt or read-only",
            ) from exc
        return connection

    @staticmethod
    def _create_schema(connection: sqlite3.Connection) -> None:
        if connection.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _failed(self, exc: Exception) -> Exception:
        if isinstance(exc, UnicodeEncodeError):
            return Invalid(
                f"text that is not valid unicode: {exc}",
                hint="view names and entity keys must not hold lone surrogates",
            )
        return Unavailable(
            f"online store {self.path}: {exc}",
            hint="another process may hold the database locked, or the disk is full",
        )

    # -- the Protocol ----------------------------------------------------------------------

    def write_batch(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Upsert ``rows`` in one transaction, newer-or-equal event time wins."""
        validate_view(view)
        encoded = encode_rows(rows)
        if not encoded:
            return 0
        params = [(view, key, event_ts, payload) for key, event_ts, payload in encoded]
        handle = self._handle()
        try:
            with handle.lock:
                connection = handle.connection
                connection.execute("BEGIN IMMEDIATE")
                try:
                    before = connection.total_changes
                    connection.executemany(_UPSERT, params)
                    stored = connection.total_changes - before
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._failed(exc) from exc
        return stored

    def read(
        self, view: str, keys: Sequence[str], *, min_event_ts: int | None = None
    ) -> list[OnlineRow | None]:
        """The stored row of each key (None if missing or older than ``min_event_ts``)."""
        validate_view(view)
        keys = validate_keys(keys)
        validate_min_event_ts(min_event_ts)
        if not keys:
            return []
        handle = self._handle()
        try:
            with handle.lock:
                if len(keys) == 1:  # the serving path: one primary-key lookup
                    key = keys[0]
                    one = handle.connection.execute(_SELECT_ONE, (view, key)).fetchone()
                    if one is None or (min_event_ts is not None and one[0] < min_event_ts):
                        return [None]
                    return [OnlineRow(key, one[0], decode_values(one[1]))]
                stored = self._select(handle.connection, view, keys)
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._failed(exc) from exc
        if min_event_ts is not None:
            stored = [row for row in stored if row[1] >= min_event_ts]
        decoded = decode_many([payload for _, _, payload in stored])
        found = {
            key: OnlineRow(key, event_ts, values)
            for (key, event_ts, _), values in zip(stored, decoded, strict=True)
        }
        return [found.get(key) for key in keys]

    @staticmethod
    def _select(connection: sqlite3.Connection, view: str, keys: Sequence[str]) -> list[Any]:
        unique = list(dict.fromkeys(keys))
        several = len(unique) > _CHUNK
        if several:  # one snapshot for all chunks
            connection.execute("BEGIN")
        try:
            stored: list[Any] = []
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                size = 1 << (len(chunk) - 1).bit_length()
                chunk += chunk[-1:] * (size - len(chunk))
                stored += connection.execute(_SELECT_IN[size], (view, *chunk)).fetchall()
        finally:
            if several and connection.in_transaction:
                connection.execute("COMMIT")
        return stored

    def delete_entities(self, view: str, keys: Sequence[str]) -> int:
        """Remove these keys' rows in one transaction; returns how many existed."""
        validate_view(view)
        unique = list(dict.fromkeys(validate_keys(keys)))
        if not unique:
            return 0
        handle = self._handle()
        try:
            with handle.lock:
                connection = handle.connection
                connection.execute("BEGIN IMMEDIATE")
                try:
                    before = connection.total_changes
                    connection.executemany(_DELETE_ONE, [(view, key) for key in unique])
                    removed = connection.total_changes - before
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._failed(exc) from exc
        return removed

    def drop_view(self, view: str) -> None:
        """Remove every row of ``view``."""
        validate_view(view)
        handle = self._handle()
        try:
            with handle.lock:
                handle.connection.execute(_DELETE_VIEW, (view,))
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._failed(exc) from exc

    def count(self, view: str) -> int:
        """How many entities ``view`` holds."""
        validate_view(view)
        handle = self._handle()
        try:
            with handle.lock:
                (total,) = handle.connection.execute(_COUNT, (view,)).fetchone()
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._failed(exc) from exc
        return int(total)

    def close(self) -> None:
        """Close every connection; later calls open new ones (a memory store starts empty)."""
        with self._lock:
            handles = list(self._handles)
            if self._shared is not None:
                handles.append(self._shared)
                self._schema_ready = False
            self._handles = weakref.WeakSet()
            self._shared = None
            self._local = threading.local()
        for handle in handles:
            with handle.lock:
                handle.connection.close()

    def _forget_connections(self) -> None:
        """In a forked child: leave the parent's connections alone (closing or using them
        would disturb the parent's locks) and open new ones on first use."""
        _INHERITED.extend(self._handles)
        self._handles = weakref.WeakSet()
        self._local = threading.local()
        self._lock = threading.Lock()
        if self._shared is not None:  # a memory store's copy belongs to the child alone
            self._shared.lock = threading.Lock()


_OPEN_STORES: weakref.WeakSet[SqliteOnlineStore] = weakref.WeakSet()
#: connections a forked child inherited: kept referenced so they are never closed there
_INHERITED: list[_Handle] = []


def _after_fork_in_child() -> None:
    for store in list(_OPEN_STORES):
        store._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
