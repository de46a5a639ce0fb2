"""The metadata store on SQLAlchemy 2: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from decisionloop.backends.metadata import repositories as repos
from decisionloop.backends.metadata.feature_repository import SqlFeatures
from decisionloop.backends.metadata.ingestion_repository import SqlIngestion
from decisionloop.errors import Conflict, Invalid, Unavailable

#: the newest migration; checked without loading Alembic when the schema is current
HEAD_REVISION = "0005"
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 7_420_113_001


class SqlMetadataStore:
    """A :class:`~decisionloop.backends.metadata.base.MetadataStore` on SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    @property
    def datasets(self) -> repos.SqlDatasets:
        return repos.SqlDatasets(self)

    @property
    def runs(self) -> repos.SqlRuns:
        return repos.SqlRuns(self)

    @property
    def models(self) -> repos.SqlModels:
        return repos.SqlModels(self)

    @property
    def lifecycle(self) -> repos.SqlLifecycle:
        return repos.SqlLifecycle(self)

    @property
    def catalog(self) -> repos.SqlCatalog:
        return repos.SqlCatalog(self)

    @property
    def deployments(self) -> repos.SqlDeployments:
        return repos.SqlDeployments(self)

    @property
    def audit(self) -> repos.SqlAudit:
        return repos.SqlAudit(self)

    @property
    def ingestion(self) -> SqlIngestion:
        return SqlIngestion(self)

    @property
    def features(self) -> SqlFeatures:
        return SqlFeatures(self)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: serialized on SQLite (BEGIN IMMEDIATE), ordinary on PostgreSQL."""
        try:
            with self.engine.connect().execution_options(dl_write=True) as conn, conn.begin():
                yield conn
        except sa.exc.IntegrityError as exc:
            first = str(exc.orig or exc).splitlines()[0]
            raise Conflict(
                f"the metadata database refused the write: {first}",
                hint="a referenced run, snapshot or model version must exist",
            ) from exc
        except sa.exc.OperationalError as exc:
            raise _unavailable(self.url, exc) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except sa.exc.OperationalError as exc:
            raise _unavailable(self.url, exc) from exc

    def current_revision(self) -> str | None:
        with self.read() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        if self.current_revision() == HEAD_REVISION:
            return
        with self._migration_lock():
            if self.current_revision() == HEAD_REVISION:
                return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with self.write() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Only one process migrates at a time: a file lock for SQLite, an advisory lock for PG."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    conn.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def create_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql://...`` with our connection settings."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise Invalid(
            f"not a database URL: {url}",
            hint="use sqlite:///path/to/metadata.db or postgresql://user@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        try:
            return sa.create_engine(
                parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10}
            )
        except ModuleNotFoundError as exc:
            raise Unavailable(
                "the PostgreSQL driver is not installed",
                hint="pip install 'decisionloop[postgres]'",
            ) from exc
    raise Invalid(
        f"unsupported metadata database {parsed.get_backend_name()!r}",
        hint="use sqlite:///path or postgresql://...",
    )


#: ``?synchronous=`` values of a SQLite URL: when a commit waits for the disk (see storage.md)
SQLITE_SYNCHRONOUS = ("full", "normal")
#: each SQLite connection's page cache (negative: in KiB); SQLite's default of 2 MiB holds about
#: 500 model versions, so a search over more would read them from the file again each time
SQLITE_CACHE_KIB = -16_384


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    database = url.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    synchronous = _sqlite_synchronous(url)
    engine = sa.create_engine(
        url.difference_update_query(["synchronous"]), connect_args={"timeout": 60}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE can be issued below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _set_wal(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute(f"PRAGMA cache_size={SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two processes never deadlock on upgrade.
        mode = "IMMEDIATE" if conn.get_execution_options().get("dl_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _sqlite_synchronous(url: sa.engine.URL) -> str:
    """The URL's ``synchronous`` option: ``full`` (the default) waits for the disk on every
    commit, so a commit that returned survives a power loss; ``normal`` survives a killed
    process but may lose the last commits to a power loss, never consistency. Others are
    refused (``off`` can corrupt the file)."""
    value = url.query.get("synchronous", "full")
    text = (value if isinstance(value, str) else value[-1]).lower()
    if text not in SQLITE_SYNCHRONOUS:
        raise Invalid(
            f"unsupported SQLite synchronous mode {text!r}",
            hint="use ?synchronous=full (the default) or ?synchronous=normal",
        )
    return text.upper()


def _set_wal(cursor: Any) -> None:
    """Switch to WAL. Changing the journal mode needs a moment alone with the file, so several
    processes opening a new database at once retry instead of failing with 'locked'."""
    import sqlite3
    import time

    for attempt in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.025)


def _unavailable(url: str, exc: Exception) -> Unavailable:
    safe = sa.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else url
    first = str(exc.args[0] if exc.args else exc).splitlines()[0]
    return Unavailable(
        f"metadata database {safe} failed: {first}",
        hint="check that the database is running and the URL in storage.metadata_url is right",
    )
