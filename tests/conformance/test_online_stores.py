"""Every online store passes the same conformance suite (decisionloop.testing)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from decisionloop.backends.online.base import OnlineRow, OnlineStore
from decisionloop.backends.online.redis import RedisOnlineStore
from decisionloop.backends.online.sqlite import SqliteOnlineStore
from decisionloop.backends.registry import ONLINE_GROUP, open_online_store
from decisionloop.config import Settings
from decisionloop.errors import Conflict, Invalid, Unavailable
from decisionloop.testing.online_store_conformance import (
    ONLINE_STORE_CHECKS,
    T0,
    OnlineStoreCheck,
    OnlineStoreFactory,
)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"dltest-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def open_online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStoreFactory]:
    """A factory of new online-store instances over one store (a SQLite file, or a Redis
    database under a prefix of the test's own); all closed afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'online' / 'online.db'}"
    else:
        base: str = request.getfixturevalue("redis_url")
        url = f"{base}?prefix={request.getfixturevalue('redis_prefix')}"
    settings = Settings(project_dir=tmp_path)
    opened: list[OnlineStore] = []

    def factory() -> OnlineStore:
        opened.append(open_online_store(url, settings))
        return opened[-1]

    yield factory
    for store in opened:
        store.close()


@pytest.mark.parametrize("check", ONLINE_STORE_CHECKS, ids=lambda check: check.__name__)
def test_online_store_conformance(check: OnlineStoreCheck, open_online: OnlineStoreFactory) -> None:
    check(open_online)


# -- choosing a store by URL -------------------------------------------------------------------


def test_open_online_store_chooses_by_scheme(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    default = open_online_store(settings.online_url, settings)
    sqlite = open_online_store(f"sqlite:///{tmp_path / 'x.db'}", settings)
    plain = open_online_store("redis://127.0.0.1:6379/0", settings)
    tls = open_online_store("rediss://cache.example:6380/2?prefix=churn", settings)

    assert isinstance(default, SqliteOnlineStore)
    assert Path(default.path) == tmp_path / ".decisionloop" / "online.db"
    assert isinstance(sqlite, SqliteOnlineStore)
    assert sqlite.path == str(tmp_path / "x.db")
    assert isinstance(plain, RedisOnlineStore)
    assert plain.prefix == "decisionloop"
    assert isinstance(tls, RedisOnlineStore)
    assert tls.prefix == "churn"
    # the default store works where Settings puts it
    assert default.write_batch("v", [OnlineRow("k", T0, {"x": 1.5})]) == 1
    assert (tmp_path / ".decisionloop" / "online.db").is_file()
    default.close()


@pytest.mark.parametrize("url", ["mongodb://host/db", "memcached://x", "online.db", "SQL://x"])
def test_open_online_store_refuses_unknown_schemes(tmp_path: Path, url: str) -> None:
    with pytest.raises(Invalid) as caught:
        open_online_store(url, Settings(project_dir=tmp_path))
    assert "redis://" in caught.value.hint or "URL" in caught.value.hint


def test_the_online_store_entry_points_are_declared() -> None:
    declared = {entry.name: entry.value for entry in entry_points(group=ONLINE_GROUP)}
    assert declared == {
        "sqlite": "decisionloop.backends.registry:sqlite_online",
        "redis": "decisionloop.backends.registry:redis_online",
        "rediss": "decisionloop.backends.registry:redis_online",
    }


# -- SQLite's own promises: memory stores, threads, several processes -------------------------


def test_memory_stores_are_private_and_shared_between_threads() -> None:
    first, second = SqliteOnlineStore("sqlite:///:memory:"), SqliteOnlineStore("sqlite://")
    first.write_batch("v", [OnlineRow("k", T0, {"x": 1})])
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.extend(first.read("v", ["k"])))
    thread.start()
    thread.join()

    assert [row.values if row else None for row in seen] == [{"x": 1}]
    assert second.read("v", ["k"]) == [None]
    first.close()
    assert first.count("v") == 0  # a closed memory store starts empty
    second.close()


def test_each_thread_has_its_own_connection_closed_when_the_thread_ends(tmp_path: Path) -> None:
    store = SqliteOnlineStore(f"sqlite:///{tmp_path / 'online.db'}")
    store.write_batch("v", [OnlineRow("k", T0, {"x": 1})])
    connections: list[Any] = []

    def read() -> None:
        assert store.read("v", ["k"])[0] is not None
        connections.append(store._handle().connection)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(connection) for connection in connections}) == 3
    assert store._handle().connection not in connections
    time.sleep(0.05)
    assert len(store._handles) == 1  # the ended threads' handles are gone
    store.close()


_WRITER = """
import sys
from decisionloop.backends.online.base import OnlineRow
from decisionloop.backends.online.sqlite import SqliteOnlineStore

url, number = sys.argv[1], int(sys.argv[2])
store = SqliteOnlineStore(url)
for round_ in range(30):
    rows = [OnlineRow(f"k{i}", 1000 * round_ + number, {"by": number}) for i in range(50)]
    store.write_batch("shared", rows)
store.close()
"""


def test_sqlite_takes_writes_from_several_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'online.db'}"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, str(number)]) for number in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0

    store = SqliteOnlineStore(url)
    rows = store.read("shared", [f"k{i}" for i in range(50)])
    store.close()

    assert [row.event_ts if row else None for row in rows] == [29 * 1000 + 3] * 50
    assert {row.values["by"] if row else None for row in rows} == {3}


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "online.db"
    path.write_bytes(b"this is not a SQLite database, just bytes" * 100)
    store = SqliteOnlineStore(f"sqlite:///{path}")
    with pytest.raises(Unavailable, match="online store"):
        store.read("v", ["k"])


# -- Redis's own promises: the key layout, prefixes, errors ------------------------------------


def test_redis_layout_is_one_hash_per_view(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = RedisOnlineStore(f"{redis_url}?prefix={redis_prefix}")
    store.write_batch("churn features", [OnlineRow("c|1", T0, {"tenure": 12, "plan": "pro"})])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = client.hgetall(f"{redis_prefix}:online:churn features")
    finally:
        client.close()
    store.close()

    assert stored == {"c|1": f'{T0}|{{"tenure":12,"plan":"pro"}}'}


def test_redis_prefixes_keep_stores_apart(redis_url: str, redis_prefix: str) -> None:
    first = RedisOnlineStore(f"{redis_url}?prefix={redis_prefix}")
    second = RedisOnlineStore(f"{redis_url}?prefix={redis_prefix}:other")
    first.write_batch("v", [OnlineRow("k", T0, {"x": 1})])

    assert second.read("v", ["k"]) == [None]
    assert second.count("v") == 0
    assert first.count("v") == 1
    second.drop_view("v")
    assert first.count("v") == 1
    first.close()
    second.close()


def test_redis_key_of_another_type_is_a_conflict(redis_url: str, redis_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set(f"{redis_prefix}:online:taken", "a string, not a hash")
    client.close()
    store = RedisOnlineStore(f"{redis_url}?prefix={redis_prefix}")
    with pytest.raises(Conflict, match="not a hash"):
        store.write_batch("taken", [OnlineRow("k", T0, {})])
    with pytest.raises(Conflict):
        store.read("taken", ["k"])
    store.close()


def test_an_unreachable_redis_is_unavailable() -> None:
    store = RedisOnlineStore("redis://127.0.0.1:1/0", timeout_s=2)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        store.read("v", ["k"])
    assert time.monotonic() - started < 10
    assert "127.0.0.1:1" in caught.value.message
    assert "running" in caught.value.hint


def test_a_redis_password_never_shows_in_errors() -> None:
    store = RedisOnlineStore("redis://user:s3cret@127.0.0.1:1/0", timeout_s=1)
    with pytest.raises(Unavailable) as caught:
        store.count("v")
    assert "s3cret" not in str(caught.value)
    assert "user:***@127.0.0.1:1" in str(caught.value)
