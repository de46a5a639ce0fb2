"""A PostgreSQL query as a batch source, streamed through a server-side cursor (psycopg 3).

The query runs inside a READ ONLY transaction, so a statement that would write is refused by
the server. Rows become Arrow tables with the server's column types and a ``_position`` of
``"query:<row number>"`` (from 1). psycopg and pyarrow are imported on first use
(``pip install 'decisionloop[postgres]'``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch
from decisionloop.errors import Invalid, Unavailable

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

_SCHEMES = ("postgresql", "postgres")
_RESERVED = (POSITION, ERROR, PAYLOAD)
#: SQLSTATE classes of errors in reaching or keeping the server, rather than in the query
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def redact(url: str) -> str:
    """The URL without password and options (they may hold secrets), for messages and origins."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _conninfo(url: str) -> str:
    """libpq accepts postgresql:// and postgres://; SQLAlchemy's +driver suffix is dropped."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


class PostgresSource:
    """The rows of one SQL query on PostgreSQL (``postgresql://user@host:port/db``).

    ``read`` yields Arrow-table batches of at most ``min(batch_rows, max_batch_rows)`` rows,
    fetched from a server-side cursor so a large result never sits in memory whole. Every batch's
    ``origin`` is ``"<url without password>?query_sha256=<hex>#rows=<first>-<last>"``. A query
    has no new rows to wait for: ``follow`` ends with the result. Connection failures are
    Unavailable; SQL errors, and statements that would write, are Invalid with the server's
    message.
    """

    def __init__(self, url: str, query: str, *, batch_rows: int = 100_000) -> None:
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise Invalid(
                f"not a PostgreSQL URL: {redact(url) if scheme else url}",
                hint="use postgresql://user@host:5432/database",
            )
        if not query.strip():
            raise Invalid("the SQL query is empty", hint="pass a SELECT statement")
        if batch_rows < 1:
            raise Invalid(f"batch_rows must be positive, got {batch_rows}", hint="use e.g. 10000")
        self.url = url
        self.query = query
        self.batch_rows = batch_rows
        query_hash = hashlib.sha256(query.encode("utf-8")).hexdigest()
        self.origin = f"{redact(url)}?query_sha256={query_hash}"
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None

    def read(self, *, follow: bool = False, max_batch_rows: int = 100_000) -> Iterator[RawBatch]:
        import psycopg

        size = max(1, min(self.batch_rows, max_batch_rows))
        where = redact(self.url)
        if self._stopped.is_set():
            return
        try:
            connection = psycopg.connect(_conninfo(self.url), connect_timeout=10)
        except psycopg.Error as exc:
            raise Unavailable(
                f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}",
                hint="check the host, port, database, user and password in the URL and that "
                "the server is running",
            ) from exc
        with self._lock:
            self._connection = connection
        try:
            connection.read_only = True
            with connection.cursor(name="decisionloop_source") as cursor:
                # the user's query runs as written, inside a READ ONLY transaction
                yield from self._batches(cursor, size, where)
        except psycopg.Error as exc:
            raise _translated(exc, where) from exc
        finally:
            with self._lock:
                self._connection = None
            connection.close()

    def _batches(
        self, cursor: psycopg.ServerCursor[Any], size: int, where: str
    ) -> Iterator[RawBatch]:
        cursor.execute(self.query)
        description = cursor.description
        if description is None:
            raise Invalid("the query returns no rows", hint="use a SELECT statement")
        names = [column.name for column in description]
        _check_names(names)
        types = [_arrow_type(cursor.connection, column) for column in description]
        first = 1
        while not self._stopped.is_set():
            rows = cursor.fetchmany(size)
            if not rows:
                return
            last = first + len(rows) - 1
            table = _to_table(names, types, rows, first)
            yield RawBatch(origin=f"{self.origin}#rows={first}-{last}", table=table)
            first = last + 1

    def stop(self) -> None:
        """End a running ``read`` after its current batch (not restarted after stop)."""
        self._stopped.set()

    def close(self) -> None:
        """Stop and close the connection of a read that was left unfinished."""
        self.stop()
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _translated(exc: psycopg.Error, where: str) -> Exception:
    sqlstate = exc.sqlstate or ""
    diag = exc.diag.message_primary if exc.sqlstate else None
    message = diag or _first_line(exc)
    if sqlstate == "25006":  # read_only_sql_transaction
        return Invalid(
            f"the query tried to write, which a source may not: {message}",
            hint="a source query only reads; use SELECT",
        )
    if not sqlstate or sqlstate[:2] in _UNAVAILABLE_CLASSES:
        return Unavailable(
            f"PostgreSQL at {where} failed during the query: {message}",
            hint="check that the server is running and reachable, then read again",
        )
    return Invalid(
        f"the query failed on {where}: {message} (SQLSTATE {sqlstate})",
        hint="fix the SQL; it runs as written on the server",
    )


def _check_names(names: Sequence[str]) -> None:
    reserved = sorted(set(names) & set(_RESERVED))
    if reserved:
        raise Invalid(
            f"the query returns reserved column name(s): {', '.join(reserved)}",
            hint="rename them with AS in the query",
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise Invalid(
            f"the query returns duplicate column name(s): {', '.join(duplicates)}",
            hint="give each column its own name with AS",
        )


@cache
def _simple_types() -> dict[str, Any]:
    """PostgreSQL type name -> Arrow type, for the types whose Python values Arrow takes as is."""
    import pyarrow as pa

    return {
        "bool": pa.bool_(),
        "int2": pa.int16(),
        "int4": pa.int32(),
        "int8": pa.int64(),
        "oid": pa.int64(),
        "float4": pa.float32(),
        "float8": pa.float64(),
        "text": pa.string(),
        "varchar": pa.string(),
        "bpchar": pa.string(),
        "name": pa.string(),
        "date": pa.date32(),
        "time": pa.time64("us"),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "interval": pa.duration("us"),
        "bytea": pa.binary(),
    }


def _arrow_type(connection: psycopg.Connection[Any], column: psycopg.Column) -> pa.DataType | None:
    """The Arrow type for a result column; None means "as text" (uuid, json, arrays, ...)."""
    import pyarrow as pa

    info = connection.adapters.types.get(column.type_code)
    # the registry answers an array's oid with its element type: arrays go as text
    name = info.name if info is not None and info.oid == column.type_code else ""
    if name == "numeric":
        precision, scale = column.precision, column.scale
        if precision is not None and scale is not None and precision <= 38:
            return pa.decimal128(precision, scale)
        return pa.float64()  # unconstrained numeric: no fixed Arrow decimal holds every value
    arrow_type: pa.DataType | None = _simple_types().get(name)
    return arrow_type


def _to_table(
    names: Sequence[str],
    types: Sequence[pa.DataType | None],
    rows: Sequence[Sequence[Any]],
    first: int,
) -> pa.Table:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values, arrow_type in zip(columns, types, strict=True):
        if arrow_type is None:
            arrays.append(pa.array([_as_text(value) for value in values], type=pa.string()))
        elif pa.types.is_floating(arrow_type):
            arrays.append(
                pa.array([None if v is None else float(v) for v in values], type=arrow_type)
            )
        else:
            arrays.append(pa.array(values, type=arrow_type))
    positions = pa.array([f"query:{first + index}" for index in range(len(rows))])
    return pa.Table.from_arrays([*arrays, positions], names=[*names, POSITION])


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)
