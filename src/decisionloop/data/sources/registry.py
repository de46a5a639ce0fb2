"""Open a :class:`~decisionloop.data.batches.Source` by URL.

The URL's scheme picks a factory from the ``decisionloop.sources`` entry-point group; the
built-in schemes are listed here too, so they work before the package metadata is installed.
A plug-in (the stream sources, a third-party package) adds a scheme by declaring an entry point
to a callable with the signature of :class:`SourceFactory`, e.g. in ``pyproject.toml``::

    [project.entry-points."decisionloop.sources"]
    kafka = "decisionloop.data.streams:kafka_source"

A bare path (no ``scheme://``) is a ``file`` URL, relative to the project folder.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Protocol

from decisionloop.data.sources.files import FileSource, FolderSource, never_done
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    from decisionloop.config import Settings
    from decisionloop.data.batches import Source

SOURCE_GROUP = "decisionloop.sources"


class SourceFactory(Protocol):
    """Builds a source for one URL. ``query`` is for database sources (others refuse one);
    ``is_done(origin)`` tells sources with content-addressed origins what to skip."""

    def __call__(
        self,
        url: str,
        settings: Settings,
        *,
        query: str | None,
        is_done: Callable[[str], bool],
    ) -> Source: ...


def _no_query(url: str, query: str | None) -> None:
    if query is not None:
        raise Invalid(
            f"a query applies to database sources, not to {url}",
            hint="drop the query, or name a postgresql:// URL",
        )


def file_source(
    url: str, settings: Settings, *, query: str | None, is_done: Callable[[str], bool]
) -> Source:
    """A local path or ``file://`` URL: a folder source for a folder, else a file source."""
    from decisionloop.config import resolve_url
    from decisionloop.data.sources.table import local_path

    _no_query(url, query)
    url = resolve_url(url, settings.project_dir)
    if local_path(url).is_dir():
        return FolderSource(url, is_done=is_done)
    return FileSource(url, is_done=is_done)


def s3_source(
    url: str, settings: Settings, *, query: str | None, is_done: Callable[[str], bool]
) -> Source:
    """``s3://bucket/key.csv`` (a key with a suffix) is a file; ``s3://bucket/prefix/`` a folder."""
    _no_query(url, query)
    key = url.split("://", 1)[1].partition("/")[2]
    if key and not key.endswith("/") and PurePosixPath(key).suffix:
        return FileSource(url, is_done=is_done, s3=settings.s3)
    return FolderSource(url, is_done=is_done, s3=settings.s3)


def postgres_source(
    url: str, settings: Settings, *, query: str | None, is_done: Callable[[str], bool]
) -> Source:
    """``postgresql://user@host:port/db`` with a SQL query (required)."""
    from decisionloop.data.sources.postgres import PostgresSource, redact

    if query is None or not query.strip():
        raise Invalid(
            f"a PostgreSQL source needs a SQL query: {redact(url)}",
            hint="give the query to read, e.g. query: SELECT * FROM customers",
        )
    return PostgresSource(url, query)


def stream_source(
    url: str, settings: Settings, *, query: str | None, is_done: Callable[[str], bool]
) -> Source:
    """``kafka://host:port/topic?group=g&format=json|avro`` or
    ``eventlog://path/events.db?topic=t&group=g`` (a relative path is in the project folder)."""
    from decisionloop.data.streams import EventLogSource

    _no_query(url, query)
    if url.startswith("eventlog://"):
        path, _, options = url[len("eventlog://") :].partition("?")
        if path and not path.startswith("/"):
            url = f"eventlog://{(settings.project_dir / path).resolve()}" + (
                f"?{options}" if options else ""
            )
    return EventLogSource.from_url(url)


def kinesis_source(
    url: str, settings: Settings, *, query: str | None, is_done: Callable[[str], bool]
) -> Source:
    """``kinesis://stream?group=g&format=json``: every shard, resuming at the checkpoints kept
    in the project's metadata store (endpoint and region in ``kinesis.*``)."""
    from decisionloop.backends.registry import open_metadata_store
    from decisionloop.data.kinesis import KinesisSource, parse_kinesis_url

    _no_query(url, query)
    parse_kinesis_url(url)  # a malformed URL fails before the store is opened
    store = open_metadata_store(settings.metadata_url, settings)
    try:
        store.migrate()
        return KinesisSource(
            url,
            checkpoints=store.ingestion,
            endpoint_url=settings.kinesis.endpoint_url,
            region=settings.kinesis.region,
            on_close=store.close,
        )
    except BaseException:
        store.close()
        raise


_BUILTIN: dict[str, SourceFactory] = {
    "kafka": stream_source,
    "kinesis": kinesis_source,
    "eventlog": stream_source,
    "file": file_source,
    "s3": s3_source,
    "postgresql": postgres_source,
    "postgres": postgres_source,
}


@cache
def source_factories() -> dict[str, SourceFactory]:
    """Scheme -> factory: the built-in ones, then the ``decisionloop.sources`` entry points."""
    found = dict(_BUILTIN)
    for entry in entry_points(group=SOURCE_GROUP):
        found[entry.name] = entry.load()
    return found


def source_scheme(url: str) -> str:
    """``"file"`` for bare paths; else the scheme, lower-cased, without a ``+driver`` suffix."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def open_source(
    url: str,
    settings: Settings,
    *,
    query: str | None = None,
    is_done: Callable[[str], bool] = never_done,
) -> Source:
    """The source for ``url``, chosen by its scheme; Invalid (listing the schemes) if unknown."""
    factories = source_factories()
    scheme = source_scheme(url)
    factory = factories.get(scheme)
    if factory is None:
        supported = ", ".join(sorted(f"{name}://" for name in factories))
        raise Invalid(
            f"no data source for URL scheme {scheme!r}: {url}",
            hint=f"use a local path or one of: {supported}",
        )
    return factory(url, settings, query=query, is_done=is_done)
