"""File and folder sources on local files, and the URL -> source registry."""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionloop.config import Settings
from decisionloop.data.batches import RawBatch, Source
from decisionloop.data.sources import (
    SOURCE_GROUP,
    FileSource,
    FolderSource,
    PostgresSource,
    open_source,
    source_factories,
)
from decisionloop.data.sources import registry as source_registry
from decisionloop.data.sources.postgres import redact
from decisionloop.errors import Invalid, NotFound

REPO = Path(__file__).resolve().parents[2]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, text: str, *, age: float = 60.0) -> Path:
    """Write a file whose mtime lies ``age`` seconds back (settled for the folder source)."""
    path.write_text(text)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def names(batches: list[RawBatch]) -> list[str]:
    return [batch.file.display for batch in batches if batch.file is not None]


# --- FileSource ------------------------------------------------------------------------------


def test_file_source_yields_one_file_batch_named_by_content(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n1,2\n")

    source = FileSource(str(path))
    batches = list(source.read())

    assert len(batches) == 1
    batch = batches[0]
    assert batch.origin == f"{path}#sha256={sha(path.read_bytes())}"
    assert batch.table is None
    assert batch.file is not None
    assert batch.file.local_path == str(path)
    assert batch.file.format == "csv"
    assert batch.file.display == "data.csv"
    assert isinstance(source, Source)


def test_file_source_origin_follows_the_content(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a\n1\n")
    first = next(FileSource(str(path)).read()).origin
    again = next(FileSource(str(path)).read()).origin

    write(path, "a\n2\n")
    changed = next(FileSource(str(path)).read()).origin

    assert first == again
    assert changed != first
    assert changed.endswith(sha(b"a\n2\n"))


def test_file_source_skips_a_file_that_is_done(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a\n1\n")
    done = {f"{path}#sha256={sha(path.read_bytes())}"}
    asked: list[str] = []

    def is_done(origin: str) -> bool:
        asked.append(origin)
        return origin in done

    assert list(FileSource(str(path), is_done=is_done).read()) == []
    assert asked == sorted(done)
    write(path, "a\n1\n2\n")
    assert len(list(FileSource(str(path), is_done=is_done).read())) == 1


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [("d.parquet", b"PAR1", "parquet"), ("d.PQ", b"PAR1", "parquet"), ("d.json", b"[]", "json")],
)
def test_file_source_format_comes_from_the_suffix(
    tmp_path: Path, name: str, content: bytes, kind: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    batch = next(FileSource(path.as_uri()).read())

    assert batch.file is not None
    assert batch.file.format == kind
    assert batch.origin == f"{path.as_uri()}#sha256={sha(content)}"
    assert batch.file.local_path == str(path)


def test_file_source_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="data file not found"):
        list(FileSource(str(tmp_path / "missing.csv")).read())
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(Invalid, match="data file is empty"):
        list(FileSource(str(tmp_path / "empty.csv")).read())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(Invalid, match=r"unsupported data file type '\.txt'"):
        list(FileSource(str(tmp_path / "notes.txt")).read())
    with pytest.raises(Invalid, match="is a folder"):
        list(FileSource(str(tmp_path)).read())
    with pytest.raises(Invalid, match="not ftp://"):
        FileSource("ftp://host/data.csv")


def test_stopped_file_source_reads_nothing(tmp_path: Path) -> None:
    source = FileSource(str(write(tmp_path / "d.csv", "a\n1\n")))
    source.stop()

    assert list(source.read()) == []


# --- FolderSource ----------------------------------------------------------------------------


def test_folder_source_yields_data_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b.csv", "a\n2\n")
    write(tmp_path / "a.csv", "a\n1\n")
    write(tmp_path / "c.JSON", "[]")
    write(tmp_path / ".hidden.csv", "a\n3\n")
    write(tmp_path / "_SUCCESS", "")
    write(tmp_path / "_part.csv", "a\n4\n")
    write(tmp_path / "notes.txt", "hello")
    write(tmp_path / "empty.csv", "")
    (tmp_path / "sub.csv").mkdir()
    write(tmp_path / "sub.csv" / "deep.csv", "a\n5\n")

    batches = list(FolderSource(str(tmp_path)).read())

    assert names(batches) == ["a.csv", "b.csv", "c.JSON"]
    assert batches[0].origin == f"{tmp_path}/a.csv#sha256={sha((tmp_path / 'a.csv').read_bytes())}"
    assert batches[2].file is not None
    assert batches[2].file.format == "json"


def test_folder_source_skips_done_files_and_rereads_changed_ones(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "a\n1\n")
    write(tmp_path / "b.csv", "a\n2\n")
    done: set[str] = set()

    first = list(FolderSource(str(tmp_path), is_done=done.__contains__).read())
    done.update(batch.origin for batch in first)
    write(tmp_path / "b.csv", "a\n2\n3\n")
    second = list(FolderSource(str(tmp_path), is_done=done.__contains__).read())

    assert names(first) == ["a.csv", "b.csv"]
    assert names(second) == ["b.csv"]
    assert second[0].origin.endswith(sha(b"a\n2\n3\n"))


def test_folder_source_pattern_and_file_url(tmp_path: Path) -> None:
    write(tmp_path / "orders 1.csv", "a\n1\n")
    write(tmp_path / "orders.parquet", "PAR1")
    write(tmp_path / "customers.csv", "a\n1\n")

    source = FolderSource(tmp_path.as_uri() + "/", pattern="ORDERS*.csv|orders*.parquet")
    batches = list(source.read())

    assert names(batches) == ["orders 1.csv", "orders.parquet"]
    assert batches[0].origin.startswith(f"{tmp_path.as_uri()}/orders%201.csv#sha256=")


def test_folder_source_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="data folder not found"):
        list(FolderSource(str(tmp_path / "nope")).read())
    file = write(tmp_path / "a.csv", "a\n1\n")
    with pytest.raises(Invalid, match="is a file, not a folder"):
        list(FolderSource(str(file)).read())
    write(tmp_path / "notes.txt", "x")
    with pytest.raises(Invalid, match=r"unsupported data file type '\.txt'"):
        list(FolderSource(str(tmp_path), pattern="*").read())
    with pytest.raises(Invalid, match="empty file pattern"):
        FolderSource(str(tmp_path), pattern=" | ")


def test_one_off_read_takes_a_second_look_at_a_fresh_file(tmp_path: Path) -> None:
    write(tmp_path / "fresh.csv", "a\n1\n", age=0.0)

    started = time.monotonic()
    batches = list(FolderSource(str(tmp_path), settle_seconds=0.3).read())

    assert names(batches) == ["fresh.csv"]
    assert time.monotonic() - started >= 0.3


class Follower:
    """Runs ``source.read(follow=True)`` in a thread and hands the batches over a queue."""

    def __init__(self, source: FolderSource) -> None:
        self.source = source
        self.batches: queue.Queue[RawBatch] = queue.Queue()
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for batch in self.source.read(follow=True):
                self.batches.put(batch)
        except BaseException as exc:
            self.error.append(exc)

    def next(self, timeout: float = 10.0) -> RawBatch:
        return self.batches.get(timeout=timeout)

    def stop(self) -> None:
        self.source.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "stop() did not end the read"
        assert self.error == []


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Follower]:
    source = FolderSource(str(tmp_path), poll_interval=0.05, settle_seconds=60)
    follower = Follower(source)
    try:
        yield follower
    finally:
        follower.stop()
        source.close()


def test_follow_picks_up_a_file_added_later_until_stopped(tmp_path: Path, follow: Follower) -> None:
    write(tmp_path / "a.csv", "a\n1\n")
    assert names([follow.next()]) == ["a.csv"]
    assert follow.batches.empty()

    write(tmp_path / "b.csv", "a\n2\n", age=0.0)
    write(tmp_path / ".b.csv.tmp", "a\n3\n")
    assert names([follow.next()]) == ["b.csv"]

    write(tmp_path / "a.csv", "a\n1\n2\n")
    changed = follow.next()
    assert names([changed]) == ["a.csv"]
    assert changed.origin.endswith(sha(b"a\n1\n2\n"))

    started = time.monotonic()
    follow.stop()
    assert time.monotonic() - started < 2
    assert follow.batches.empty()


def test_follow_waits_for_a_file_being_written(tmp_path: Path) -> None:
    source = FolderSource(str(tmp_path), poll_interval=0.2, settle_seconds=60)
    path = tmp_path / "growing.csv"
    path.write_text("a\n")
    follower = Follower(source)
    try:
        with path.open("a") as handle:
            for number in range(40):  # about 0.8 s of writes, ten per poll
                handle.write(f"{number}\n")
                handle.flush()
                time.sleep(0.02)
                assert follower.batches.empty(), "a file still being written was read"
        batch = follower.next(timeout=5)
    finally:
        follower.stop()
        source.close()

    expected = ("a\n" + "".join(f"{number}\n" for number in range(40))).encode()
    assert batch.origin.endswith(sha(expected))
    assert follower.batches.empty()


def test_stop_before_read_ends_follow_at_once(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "a\n1\n")
    source = FolderSource(str(tmp_path), poll_interval=60)
    source.stop()

    assert list(source.read(follow=True)) == []


# --- open_source -----------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path)


def test_open_source_picks_file_or_folder_for_paths(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path / "data.csv", "a\n1\n")
    (tmp_path / "incoming").mkdir()

    relative = open_source("data.csv", settings)
    folder = open_source("incoming", settings)
    as_url = open_source((tmp_path / "incoming").as_uri(), settings)
    missing = open_source("missing.csv", settings)

    assert isinstance(relative, FileSource)
    assert relative.url == str(tmp_path / "data.csv")
    assert isinstance(folder, FolderSource)
    assert folder.url == str(tmp_path / "incoming")
    assert isinstance(as_url, FolderSource)
    assert isinstance(missing, FileSource)
    with pytest.raises(NotFound):
        list(missing.read())


def test_open_source_passes_is_done(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path / "data.csv", "a\n1\n")

    source = open_source("data.csv", settings, is_done=lambda origin: True)

    assert list(source.read()) == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("s3://bucket/data.csv", FileSource),
        ("s3://bucket/in/2024.parquet", FileSource),
        ("s3://bucket/in/", FolderSource),
        ("s3://bucket/in", FolderSource),
        ("s3://bucket", FolderSource),
    ],
)
def test_open_source_picks_file_or_folder_for_s3(
    url: str, kind: type[object], settings: Settings
) -> None:
    source = open_source(url, settings)

    assert type(source) is kind
    assert source.url == url


def test_open_source_postgres_needs_a_query(settings: Settings) -> None:
    url = "postgresql://reader:s3cret@db.example:5432/shop"
    with pytest.raises(Invalid, match="needs a SQL query") as info:
        open_source(url, settings)
    assert "s3cret" not in str(info.value)
    assert "query:" in info.value.hint

    source = open_source(url, settings, query="SELECT 1")

    assert isinstance(source, PostgresSource)
    assert source.origin.startswith("postgresql://reader@db.example:5432/shop?query_sha256=")
    assert source.origin.endswith(sha(b"SELECT 1"))


def test_open_source_refuses_a_query_for_files(settings: Settings) -> None:
    with pytest.raises(Invalid, match="a query applies to database sources"):
        open_source("data.csv", settings, query="SELECT 1")


def test_unknown_scheme_lists_the_supported_ones(settings: Settings) -> None:
    with pytest.raises(Invalid, match="no data source for URL scheme 'ftp'") as info:
        open_source("ftp://host/data.csv", settings)

    assert "eventlog://, file://, kafka://, kinesis://, postgres://, postgresql://, s3://" in (
        info.value.hint
    )


def test_unknown_scheme_is_looked_up_in_the_entry_points(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    class PluginEntry:
        name = "memory"

        def load(self) -> object:
            def factory(
                url: str, settings: Settings, *, query: str | None, is_done: object
            ) -> FileSource:
                return FileSource(str(tmp_path / "plugin.csv"))

            return factory

    def fake_entry_points(*, group: str) -> list[PluginEntry]:
        assert group == SOURCE_GROUP
        return [PluginEntry()]

    monkeypatch.setattr(source_registry, "entry_points", fake_entry_points)
    source_factories.cache_clear()
    try:
        source = open_source("memory://events", settings)
        assert isinstance(source, FileSource)
        assert source.url == str(tmp_path / "plugin.csv")
    finally:
        source_factories.cache_clear()


def test_entry_points_in_pyproject_are_the_builtin_factories() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = project["project"]["entry-points"][SOURCE_GROUP]

    builtin = source_registry._BUILTIN
    assert sorted(declared) == sorted(builtin)
    for scheme, target in declared.items():
        module, _, name = target.partition(":")
        __import__(module)
        assert getattr(sys.modules[module], name) is builtin[scheme]


# --- PostgresSource without a server ---------------------------------------------------------


def test_postgres_source_checks_its_arguments() -> None:
    with pytest.raises(Invalid, match="not a PostgreSQL URL"):
        PostgresSource("mysql://u:pw@h/db", "SELECT 1")
    with pytest.raises(Invalid, match="query is empty"):
        PostgresSource("postgresql://u@h/db", "  ")
    with pytest.raises(Invalid, match="batch_rows must be positive"):
        PostgresSource("postgresql://u@h/db", "SELECT 1", batch_rows=0)


def test_redact_drops_password_and_options() -> None:
    assert redact("postgresql+psycopg://u:pw@h:5433/db?sslpassword=x") == (
        "postgresql+psycopg://u@h:5433/db"
    )
    assert redact("postgresql://[::1]/db") == "postgresql://[::1]/db"
