"""File sources: one data file, or a folder of them, on this machine or in an S3 bucket.

Each file becomes one :class:`~decisionloop.data.batches.RawBatch` holding a
:class:`~decisionloop.data.batches.FileRef` (the validation engine scans it with DuckDB). A
batch's ``origin`` is ``"<file URL>#sha256=<hex of the content>"``: re-reading an unchanged file
gives the same origin, which ``is_done`` recognizes so the file is skipped; a changed file is a
new origin. S3 objects are downloaded to a temporary folder first; a download is removed when
its batch is acknowledged, and all of them on ``close()``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from decisionloop.data.batches import FileFormat, FileRef, RawBatch
from decisionloop.data.sources._s3 import S3Reader, split_s3_url
from decisionloop.data.sources.table import FORMATS
from decisionloop.errors import Invalid, NotFound

if TYPE_CHECKING:
    from decisionloop.config import S3Settings

DEFAULT_PATTERN = "*.csv|*.parquet|*.json"


def never_done(origin: str) -> bool:
    """The default ``is_done``: nothing has been ingested yet."""
    return False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def format_of(name: str, url: str) -> FileFormat:
    """The file format named by a file's suffix; Invalid (as ``read_table`` says) otherwise."""
    suffix = PurePosixPath(name).suffix
    kind = FORMATS.get(suffix.lower())
    if kind is None:
        raise Invalid(
            f"unsupported data file type {suffix or '(none)'!r}: {url}",
            hint="use .csv, .parquet or .json (records)",
        )
    return kind


def _local(url: str, what: str) -> Path | None:
    """The local path of a bare path or ``file://`` URL; None for ``s3://``; else Invalid."""
    parts = urlsplit(url)
    if url.startswith("file://"):
        return Path(unquote(parts.path))
    if "://" not in url:
        return Path(url)
    if parts.scheme == "s3":
        return None
    raise Invalid(
        f"a {what} reads local paths, file:// or s3:// URLs, not {parts.scheme}://: {url}",
        hint="open the URL with decisionloop.data.sources.open_source",
    )


class _Downloads:
    """A private temporary folder for S3 downloads, created on first use."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def new_file(self, suffix: str) -> Path:
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="decisionloop-source-"))
            handle, name = tempfile.mkstemp(dir=self._folder, suffix=suffix)
        os.close(handle)
        return Path(name)

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None


class _DownloadEmpty(Exception):
    """An S3 object had no bytes."""


def _download(reader: S3Reader, downloads: _Downloads, url: str) -> tuple[Path, str]:
    """Download ``url`` into the temporary folder: (local path, sha256 hex)."""
    bucket, key = split_s3_url(url)
    target = downloads.new_file(PurePosixPath(key).suffix)
    try:
        digest = reader.download(bucket, key, target)
        if target.stat().st_size == 0:
            raise _DownloadEmpty(url)
    except BaseException:
        downloads.remove(target)
        raise
    return target, digest


class FileSource:
    """One CSV, Parquet or JSON-records file: a local path, ``file://`` URL or ``s3://bucket/key``.

    ``read`` yields the file as one batch, or nothing when ``is_done(origin)`` says it was
    ingested already. A file is one batch whatever ``max_batch_rows`` says (the validation
    engine scans it in chunks), and there is nothing to follow: ``follow`` is accepted for the
    :class:`~decisionloop.data.batches.Source` protocol and ends after the file. A missing file is
    NotFound; a folder, an empty file or an unknown suffix is Invalid.
    """

    def __init__(
        self,
        url: str,
        *,
        is_done: Callable[[str], bool] = never_done,
        s3: S3Settings | None = None,
    ) -> None:
        self.url = url
        self.is_done = is_done
        self.s3 = s3
        self._path = _local(url, "FileSource")
        if self._path is None:
            split_s3_url(url)
        self._reader = S3Reader(s3)
        self._downloads = _Downloads()
        self._stopped = threading.Event()

    def read(self, *, follow: bool = False, max_batch_rows: int = 100_000) -> Iterator[RawBatch]:
        if self._stopped.is_set():
            return
        batch = self._local_batch(self._path) if self._path else self._s3_batch()
        if batch is not None:
            yield batch

    def _local_batch(self, path: Path) -> RawBatch | None:
        if not path.exists():
            raise NotFound(
                f"data file not found: {path}",
                hint="check the path (relative to the project folder)",
            )
        if path.is_dir():
            raise Invalid(
                f"{path} is a folder, not a data file",
                hint="name a .csv, .parquet or .json file, or read the folder as a folder source",
            )
        kind = format_of(path.name, str(path))
        if path.stat().st_size == 0:
            raise Invalid(f"data file is empty: {path}", hint="the file needs a header and rows")
        origin = f"{self.url}#sha256={sha256_of(path)}"
        if self.is_done(origin):
            return None
        return RawBatch(origin=origin, file=FileRef(str(path.absolute()), kind, path.name))

    def _s3_batch(self) -> RawBatch | None:
        _, key = split_s3_url(self.url)
        name = PurePosixPath(key).name
        if not name or key.endswith("/"):
            raise Invalid(
                f"{self.url} names a folder, not a data file",
                hint="name an object such as s3://bucket/data.csv, or read the prefix as a folder",
            )
        kind = format_of(name, self.url)
        try:
            path, digest = _download(self._reader, self._downloads, self.url)
        except _DownloadEmpty:
            raise Invalid(
                f"data file is empty: {self.url}", hint="the file needs a header and rows"
            ) from None
        origin = f"{self.url}#sha256={digest}"
        if self.is_done(origin):
            self._downloads.remove(path)
            return None
        return RawBatch(
            origin=origin,
            file=FileRef(str(path), kind, name),
            acknowledge=lambda: self._downloads.remove(path),
        )

    def stop(self) -> None:
        """End any running or later ``read`` (a source is not restarted after stop)."""
        self._stopped.set()

    def close(self) -> None:
        """Stop, remove downloaded files and release the S3 client."""
        self.stop()
        self._downloads.close()
        self._reader.close()


@dataclass(frozen=True)
class _Entry:
    """One file seen in a folder listing."""

    name: str
    url: str
    mtime: float
    #: changes whenever the content may have changed (size and mtime, or size and ETag)
    stamp: tuple[object, ...]
    #: S3 objects appear whole, so they never need a second look
    complete: bool


class _StillWriting(Exception):
    """The file changed while it was being hashed."""


class FolderSource:
    """Every data file directly in a folder: a local path, ``file://`` URL or
    ``s3://bucket/prefix``.

    ``read`` yields one batch per file (see :class:`FileSource`) in order of name, then
    modification time, skipping files whose origin ``is_done``. Only names matching ``pattern``
    (``|``-separated globs, case-insensitive) count; names starting with ``.`` or ``_`` (temporary
    and marker files such as ``_SUCCESS``) and empty files are ignored; a matching name with an
    unknown suffix is Invalid.

    A local file is read once two looks agree on its size and mtime, or once it has not been
    modified for ``settle_seconds``: a file still being written is picked up later (a one-off
    read takes a second look after ``settle_seconds``). With ``follow=True`` the folder is
    listed again every ``poll_interval`` seconds until :meth:`stop`; a file whose content
    changes is read again (its origin is new).
    """

    def __init__(
        self,
        url: str,
        *,
        is_done: Callable[[str], bool] = never_done,
        pattern: str = DEFAULT_PATTERN,
        s3: S3Settings | None = None,
        poll_interval: float = 5.0,
        settle_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.is_done = is_done
        self.pattern = pattern
        self.s3 = s3
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds
        self._path = _local(url, "FolderSource")
        if self._path is None:
            bucket, prefix = split_s3_url(url)
            self._bucket = bucket
            self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._globs = [part.strip().lower() for part in pattern.split("|") if part.strip()]
        if not self._globs:
            raise Invalid(f"empty file pattern {pattern!r}", hint="use e.g. '*.csv|*.parquet'")
        self._reader = S3Reader(s3)
        self._downloads = _Downloads()
        self._stopped = threading.Event()
        #: (name, stamp) -> origin, so an unchanged file is not hashed or downloaded again
        self._origins: dict[tuple[str, tuple[object, ...]], str] = {}
        self._done: set[str] = set()

    # -- the Source protocol -------------------------------------------------------------------

    def read(self, *, follow: bool = False, max_batch_rows: int = 100_000) -> Iterator[RawBatch]:
        previous: dict[str, tuple[object, ...]] = {}
        emitted: set[str] = set()
        second_look = False
        while not self._stopped.is_set():
            entries = self._list()
            now = time.time()
            waiting = False
            for entry in sorted(entries, key=lambda item: (item.name, item.mtime)):
                if self._stopped.is_set():
                    return
                settled = (
                    entry.complete
                    or previous.get(entry.name) == entry.stamp
                    or now - entry.mtime >= self.settle_seconds
                )
                try:
                    batch = self._batch(entry, emitted) if settled else None
                except _StillWriting:
                    settled = False
                    batch = None
                waiting = waiting or not settled
                if batch is not None:
                    emitted.add(batch.origin)
                    yield batch
            previous = {entry.name: entry.stamp for entry in entries}
            if not follow:
                if not waiting or second_look:
                    return
                second_look = True
                self._stopped.wait(self.settle_seconds)
            else:
                self._stopped.wait(self.poll_interval)

    def stop(self) -> None:
        """End a following ``read`` at its next look (a source is not restarted after stop)."""
        self._stopped.set()

    def close(self) -> None:
        """Stop, remove downloaded files and release the S3 client."""
        self.stop()
        self._downloads.close()
        self._reader.close()

    # -- listing -------------------------------------------------------------------------------

    def _wanted(self, name: str) -> bool:
        if not name or name[0] in "._":
            return False
        lowered = name.lower()
        return any(fnmatch.fnmatchcase(lowered, glob) for glob in self._globs)

    def _list(self) -> list[_Entry]:
        return self._list_local(self._path) if self._path else self._list_s3()

    def _file_url(self, name: str) -> str:
        if self.url.startswith("file://"):
            name = quote(name)
        return self.url + name if self.url.endswith("/") else f"{self.url}/{name}"

    def _list_local(self, folder: Path) -> list[_Entry]:
        if not folder.exists():
            raise NotFound(
                f"data folder not found: {folder}",
                hint="check the path (relative to the project folder)",
            )
        if not folder.is_dir():
            raise Invalid(f"{folder} is a file, not a folder", hint="read it as a file source")
        entries = []
        for path in folder.iterdir():
            if not self._wanted(path.name):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # removed since the listing
                continue
            if not path.is_file() or info.st_size == 0:
                continue
            entries.append(
                _Entry(
                    name=path.name,
                    url=self._file_url(path.name),
                    mtime=info.st_mtime,
                    stamp=(info.st_size, info.st_mtime_ns),
                    complete=False,
                )
            )
        return entries

    def _list_s3(self) -> list[_Entry]:
        entries = []
        for item in self._reader.list(self._bucket, self._prefix):
            name = item.key[len(self._prefix) :]
            if "/" in name or item.size == 0 or not self._wanted(name):
                continue
            entries.append(
                _Entry(
                    name=name,
                    url=f"s3://{self._bucket}/{item.key}",
                    mtime=item.mtime,
                    stamp=(item.size, item.etag),
                    complete=True,
                )
            )
        return entries

    # -- batches -------------------------------------------------------------------------------

    def _skip(self, origin: str, emitted: set[str]) -> bool:
        if origin in emitted or origin in self._done:
            return True
        if self.is_done(origin):
            self._done.add(origin)
            return True
        return False

    def _batch(self, entry: _Entry, emitted: set[str]) -> RawBatch | None:
        """The entry's batch, or None when it was ingested or yielded already."""
        kind = format_of(entry.name, entry.url)
        known = self._origins.get((entry.name, entry.stamp))
        if known is not None and self._skip(known, emitted):
            return None
        if self._path is not None:
            return self._local_batch(self._path / entry.name, entry, kind, emitted)
        return self._s3_batch(entry, kind, emitted)

    def _local_batch(
        self, path: Path, entry: _Entry, kind: FileFormat, emitted: set[str]
    ) -> RawBatch | None:
        try:
            digest = sha256_of(path)
            info = path.stat()
        except FileNotFoundError:  # removed since the listing
            return None
        if (info.st_size, info.st_mtime_ns) != entry.stamp:
            raise _StillWriting(entry.url)
        origin = f"{entry.url}#sha256={digest}"
        self._origins[(entry.name, entry.stamp)] = origin
        if self._skip(origin, emitted):
            return None
        return RawBatch(origin=origin, file=FileRef(str(path.absolute()), kind, entry.name))

    def _s3_batch(self, entry: _Entry, kind: FileFormat, emitted: set[str]) -> RawBatch | None:
        try:
            path, digest = _download(self._reader, self._downloads, entry.url)
        except (_DownloadEmpty, NotFound):  # emptied or deleted since the listing
            return None
        origin = f"{entry.url}#sha256={digest}"
        self._origins[(entry.name, entry.stamp)] = origin
        if self._skip(origin, emitted):
            self._downloads.remove(path)
            return None
        return RawBatch(
            origin=origin,
            file=FileRef(str(path), kind, entry.name),
            acknowledge=lambda: self._downloads.remove(path),
        )
