"""Online store URLs, and the payload codec the stores share (no server needed)."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decisionloop.backends.online.base import (
    OnlineRow,
    decode_many,
    decode_values,
    encode_rows,
    encode_values,
)
from decisionloop.backends.online.redis import RedisOnlineStore, parse_redis_url
from decisionloop.backends.online.sqlite import MEMORY, SqliteOnlineStore, database_path
from decisionloop.errors import Invalid


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative/online.db", "relative/online.db"),
        ("sqlite:////abs/online.db", "/abs/online.db"),
        ("sqlite+pysqlite:////abs/online.db", "/abs/online.db"),
        ("sqlite:////abs/online.db?mode=rw", "/abs/online.db"),
        ("sqlite:///:memory:", MEMORY),
        ("sqlite://", MEMORY),
    ],
)
def test_sqlite_paths(url: str, path: str) -> None:
    assert database_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://host/online.db", "redis://x/0", "online.db"])
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(Invalid):
        database_path(url)


@pytest.mark.parametrize(
    ("url", "client_url", "prefix"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", "decisionloop"),
        ("redis://h:1/2?prefix=churn", "redis://h:1/2", "churn"),
        (
            "rediss://u:p@h:6380/3?socket_timeout=2&prefix=a:b-c.d_e",
            "rediss://u:p@h:6380/3?socket_timeout=2",
            "a:b-c.d_e",
        ),
        ("redis://h", "redis://h", "decisionloop"),
    ],
)
def test_redis_urls(url: str, client_url: str, prefix: str) -> None:
    assert parse_redis_url(url) == (client_url, prefix)


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:notaport/0",
        "redis://h:6379/zero",
        "redis:///0",
        "redis://h/0?prefix=",
        "redis://h/0?prefix=has space",
        "http://h/0",
    ],
)
def test_bad_redis_urls(url: str) -> None:
    with pytest.raises(Invalid):
        RedisOnlineStore(url)


def test_a_bad_redis_url_does_not_show_its_password() -> None:
    with pytest.raises(Invalid) as caught:
        RedisOnlineStore("redis://user:s3cret@h:6379/zero")
    assert "s3cret" not in str(caught.value)


# -- the payload ---------------------------------------------------------------------------


def test_payloads_are_compact_json_that_round_trips_non_finite_floats() -> None:
    payload = encode_values({"a": 1.5, "b": None, "c": "é", "d": math.nan, "e": -math.inf})
    assert payload == '{"a":1.5,"b":null,"c":"\\u00e9","d":NaN,"e":-Infinity}'
    decoded = decode_values(payload)
    assert math.isnan(decoded["d"])
    assert decoded["e"] == -math.inf
    assert decode_many([payload, "{}"])[1] == {}
    assert decode_many([]) == []


def test_numpy_scalars_and_subclasses_are_stored_as_plain_values() -> None:
    class Label(str):
        pass

    values: dict[str, Any] = {
        "f64": np.float64(0.1),
        "f32": np.float32(0.5),
        "i64": np.int64(-(2**63)),
        "u8": np.uint8(255),
        "flag": np.bool_(True),
        "label": Label("gold"),
    }
    ((key, event_ts, payload),) = encode_rows([OnlineRow(Label("k"), np.int64(5), values)])  # type: ignore[arg-type]
    decoded = decode_values(payload)

    assert (type(key), key, type(event_ts), event_ts) == (str, "k", int, 5)
    assert decoded == {
        "f64": 0.1,
        "f32": 0.5,
        "i64": -(2**63),
        "u8": 255,
        "flag": True,
        "label": "gold",
    }
    assert [type(value) for value in decoded.values()] == [float, float, int, int, bool, str]


def test_invalid_values_name_the_row_and_the_feature() -> None:
    rows = [
        OnlineRow("ok", 1, {"x": 1}),
        OnlineRow("bad", 2, {"when": np.datetime64("2024-01-01")}),
    ]
    with pytest.raises(Invalid, match="row 1: feature 'when' is a datetime64"):
        encode_rows(rows)
    with pytest.raises(Invalid, match="a sequence of OnlineRow"):
        encode_rows(OnlineRow("k", 1, {}))  # type: ignore[arg-type]


# -- a forked child opens connections of its own ---------------------------------------------


#: stores a forked child finds where its parent left them
_STORES: dict[str, SqliteOnlineStore] = {}


def _child_uses_the_parents_instance(url: str, parent_connection: int) -> None:
    store = _STORES[url]
    # the parent's connection is left alone; the child opens its own
    assert id(store._handle().connection) != parent_connection
    store.write_batch("v", [OnlineRow("child", 2, {"by": "child"})])
    rows = store.read("v", ["parent", "child"])
    assert [row.entity_key if row else None for row in rows] == ["parent", "child"]


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (POSIX)"
)
def test_a_forked_child_uses_an_inherited_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'online.db'}"
    store = _STORES[url] = SqliteOnlineStore(url)
    store.write_batch("v", [OnlineRow("parent", 1, {"by": "parent"})])
    try:
        child = multiprocessing.get_context("fork").Process(
            target=_child_uses_the_parents_instance, args=(url, id(store._handle().connection))
        )
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        rows = store.read("v", ["parent", "child"])
        assert [row.values["by"] if row else None for row in rows] == ["parent", "child"]
    finally:
        del _STORES[url]
        store.close()
