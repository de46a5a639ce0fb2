"""A conformance suite for :class:`~decisionloop.backends.online.OnlineStore` implementations.

In the style of scikit-learn's ``check_estimator``: every check is a plain function raising
:class:`AssertionError` when the store does not behave like the Protocol says. A check takes a
*factory* ``open_store()`` returning a new instance over the same storage (the same SQLite
file, the same Redis server and prefix), because durability is about a *new* instance::

    import pytest
    from decisionloop.testing.online_store_conformance import ONLINE_STORE_CHECKS

    @pytest.mark.parametrize("check", ONLINE_STORE_CHECKS, ids=lambda c: c.__name__)
    def test_my_store(check, tmp_path):
        check(lambda: MyOnlineStore(...))

or all at once with :func:`check_online_store`. Each check uses fresh view names and closes
the instances it opens, so checks can share one store, in any order. Values are compared by
type and, for floats, bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import random
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from decisionloop.backends.online.base import MAX_EVENT_TS, OnlineRow, OnlineStore
from decisionloop.errors import Invalid
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises

__all__ = [
    "ONLINE_STORE_CHECKS",
    "T0",
    "OnlineStoreCheck",
    "OnlineStoreFactory",
    "check_bad_arguments_are_invalid_and_write_nothing",
    "check_concurrent_writers_keep_the_newest_rows",
    "check_delete_entities_counts_what_existed",
    "check_drop_view_drops_only_that_view",
    "check_empty_arguments",
    "check_implements_protocol",
    "check_large_batch",
    "check_many_keys_in_one_read",
    "check_min_event_ts_hides_old_rows",
    "check_newer_rows_win",
    "check_odd_names",
    "check_online_store",
    "check_read_keeps_order_and_duplicates",
    "check_reopened_store_sees_the_data",
    "check_rows_are_replaced_whole",
    "check_scalars_round_trip_exactly",
    "check_unknown_keys_and_views",
    "check_views_are_isolated",
]

#: ``open_store()``: a new OnlineStore instance over the same storage
OnlineStoreFactory = Callable[[], OnlineStore]
OnlineStoreCheck = Callable[[OnlineStoreFactory], None]

#: 2024-01-01T00:00:00Z in microseconds: a realistic event time to start from
T0 = 1_704_067_200_000_000


def _view(label: str = "view") -> str:
    """A fresh view name, so checks never see each other's rows."""
    return f"conformance-{label}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def _opened(open_store: OnlineStoreFactory) -> Iterator[OnlineStore]:
    store = open_store()
    try:
        yield store
    finally:
        store.close()


def _same_value(actual: Any, expected: Any) -> bool:
    """Equal in type and value; floats bit for bit (so -0.0 and NaN count)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, float):
        return struct.pack("<d", actual) == struct.pack("<d", expected) or (
            math.isnan(actual) and math.isnan(expected)
        )
    return bool(actual == expected)


def _expect_values(actual: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    _expect_equal(sorted(actual), sorted(expected), f"{what}: feature names")
    for name, value in expected.items():
        _expect(
            _same_value(actual[name], value),
            f"{what}: feature {name!r} came back as {actual[name]!r} "
            f"({type(actual[name]).__name__}), expected {value!r} ({type(value).__name__})",
        )


def _expect_row(row: OnlineRow | None, expected: OnlineRow, what: str) -> None:
    _expect(row is not None, f"{what}: no row for key {expected.entity_key!r}")
    assert row is not None
    _expect(isinstance(row, OnlineRow), f"{what}: got a {type(row).__name__}, not an OnlineRow")
    _expect_equal(row.entity_key, expected.entity_key, f"{what}: entity_key")
    _expect_equal(row.event_ts, expected.event_ts, f"{what}: event_ts")
    _expect_values(row.values, expected.values, what)


def _event_times(rows: Sequence[OnlineRow | None]) -> list[int | None]:
    return [None if row is None else row.event_ts for row in rows]


# -- the checks ----------------------------------------------------------------------------


def check_implements_protocol(open_store: OnlineStoreFactory) -> None:
    """The instance is an OnlineStore with a URL."""
    with _opened(open_store) as store:
        _expect(isinstance(store, OnlineStore), f"{type(store).__name__} is not an OnlineStore")
        _expect(
            isinstance(store.url, str) and "://" in store.url, f"url {store.url!r} is not a URL"
        )


def check_scalars_round_trip_exactly(open_store: OnlineStoreFactory) -> None:
    """None, bools, ints up to 2**63, floats bit for bit (NaN, +-inf, -0.0) and unicode."""
    view = _view("scalars")
    values: dict[str, Any] = {
        "none": None,
        "true": True,
        "false": False,
        "zero": 0,
        "negative": -17,
        "int64_max": 2**63 - 1,
        "int64_min": -(2**63),
        "two_to_63": 2**63,
        "beyond_int64": 2**70 + 1,
        "float_whole": 1.0,
        "tenth": 0.1,
        "third": 1 / 3,
        "huge": 1.7976931348623157e308,
        "tiny": 5e-324,
        "negative_zero": -0.0,
        "nan": math.nan,
        "inf": math.inf,
        "minus_inf": -math.inf,
        "empty": "",
        "accents": "héllo wörld",
        "cjk": "日本語のテキスト",
        "emoji": "🙂 👍🏽",
        "controls": "tab\tnew\nline\rnul\x00end",
        "quotes": "\"double\" 'single' \\back\\ {json} [list] a|b c:d",
        "numeric_text": "12.50",
        "lone_surrogate": "a\ud800b",
        "unicode name é": 1,
    }
    rng = random.Random(7)
    randoms = {
        f"random_{i}": rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30) for i in range(20)
    }
    rows = [
        OnlineRow("all-types", T0, values),
        OnlineRow("random-floats", T0 + 1, randoms),
        OnlineRow("no-features", T0 + 2, {}),
    ]
    with _opened(open_store) as store:
        _expect_equal(store.write_batch(view, rows), 3, "rows stored")
        found = store.read(view, [row.entity_key for row in rows])
        for row, expected in zip(found, rows, strict=True):
            _expect_row(row, expected, f"read back {expected.entity_key}")


def check_read_keeps_order_and_duplicates(open_store: OnlineStoreFactory) -> None:
    """read answers in the order of the keys, repeated keys included, None for missing ones."""
    view = _view("order")
    rows = [OnlineRow(f"k{i}", T0 + i, {"i": i}) for i in range(5)]
    keys = ["k3", "k0", "missing", "k3", "k4", "k0", "k0", "k1"]
    with _opened(open_store) as store:
        store.write_batch(view, rows)
        found = store.read(view, keys)
        _expect_equal(len(found), len(keys), "one result per key")
        _expect_equal(
            [None if row is None else row.entity_key for row in found],
            [None if key == "missing" else key for key in keys],
            "keys of the rows read, in the order asked",
        )
        _expect_equal(
            [None if row is None else row.values["i"] for row in found],
            [None if key == "missing" else int(key[1:]) for key in keys],
            "values of the rows read",
        )
        _expect_equal(_event_times(store.read(view, ["k2"])), [T0 + 2], "a single key")


def check_unknown_keys_and_views(open_store: OnlineStoreFactory) -> None:
    """Unknown keys read as None; an unknown view is empty everywhere, and dropping it works."""
    view, never_written = _view("known"), _view("unknown")
    with _opened(open_store) as store:
        store.write_batch(view, [OnlineRow("a", T0, {"x": 1})])
        _expect_equal(store.read(view, ["b", "A", "a "]), [None, None, None], "unknown keys")
        _expect_equal(store.read(never_written, ["a", "b"]), [None, None], "an unknown view")
        _expect_equal(store.count(never_written), 0, "count of an unknown view")
        _expect_equal(store.delete_entities(never_written, ["a"]), 0, "delete in unknown view")
        store.drop_view(never_written)
        _expect_equal(store.count(view), 1, "count after dropping another, unknown view")


def check_newer_rows_win(open_store: OnlineStoreFactory) -> None:
    """Newer replaces, equal event time replaces, older is ignored; the count says so."""
    view = _view("newer")
    with _opened(open_store) as store:
        stored = store.write_batch(
            view, [OnlineRow("a", T0 + 10, {"v": "a10"}), OnlineRow("b", T0 + 10, {"v": "b10"})]
        )
        _expect_equal(stored, 2, "rows stored into an empty view")
        stored = store.write_batch(
            view,
            [
                OnlineRow("a", T0 + 5, {"v": "a5 older"}),
                OnlineRow("b", T0 + 20, {"v": "b20 newer"}),
                OnlineRow("c", T0 - 1, {"v": "c new entity"}),
            ],
        )
        _expect_equal(stored, 2, "rows stored: the older row of a is not")
        stored = store.write_batch(view, [OnlineRow("a", T0 + 10, {"v": "a10 again"})])
        _expect_equal(stored, 1, "a row with an equal event time is stored")
        found = store.read(view, ["a", "b", "c"])
        _expect_equal(
            [(row.event_ts, row.values["v"]) if row else None for row in found],
            [(T0 + 10, "a10 again"), (T0 + 20, "b20 newer"), (T0 - 1, "c new entity")],
            "rows after newer, equal and older writes",
        )
        # within one batch the rule applies row by row, in order
        stored = store.write_batch(
            view,
            [
                OnlineRow("d", T0 + 3, {"v": "d3"}),
                OnlineRow("d", T0 + 1, {"v": "d1 older"}),
                OnlineRow("d", T0 + 3, {"v": "d3 last"}),
            ],
        )
        _expect_equal(stored, 2, "rows stored for one key written three times in a batch")
        (row,) = store.read(view, ["d"])
        _expect_equal(row and (row.event_ts, row.values["v"]), (T0 + 3, "d3 last"), "row of d")
        _expect_equal(store.count(view), 4, "entities in the view")


def check_rows_are_replaced_whole(open_store: OnlineStoreFactory) -> None:
    """A newer row replaces the stored one: features it lacks are gone, not merged."""
    view = _view("whole")
    with _opened(open_store) as store:
        store.write_batch(view, [OnlineRow("a", T0, {"x": 1, "y": 2})])
        store.write_batch(view, [OnlineRow("a", T0 + 1, {"y": None, "z": "new"})])
        (row,) = store.read(view, ["a"])
        _expect_row(row, OnlineRow("a", T0 + 1, {"y": None, "z": "new"}), "replaced row")


def check_min_event_ts_hides_old_rows(open_store: OnlineStoreFactory) -> None:
    """Rows older than min_event_ts read as None (missing, not stale) but stay stored."""
    view = _view("ttl")
    with _opened(open_store) as store:
        store.write_batch(
            view, [OnlineRow("old", T0, {"v": 1}), OnlineRow("new", T0 + 1_000, {"v": 2})]
        )
        keys = ["old", "new", "missing"]
        _expect_equal(
            _event_times(store.read(view, keys, min_event_ts=T0)),
            [T0, T0 + 1_000, None],
            "min_event_ts equal to the old row's event time keeps it",
        )
        _expect_equal(
            _event_times(store.read(view, keys, min_event_ts=T0 + 1)),
            [None, T0 + 1_000, None],
            "min_event_ts after the old row hides it",
        )
        _expect_equal(
            _event_times(store.read(view, ["old"], min_event_ts=T0 + 1)),
            [None],
            "min_event_ts on a single-key read",
        )
        _expect_equal(
            _event_times(store.read(view, keys, min_event_ts=MAX_EVENT_TS)),
            [None, None, None],
            "min_event_ts in the far future hides everything",
        )
        _expect_equal(store.count(view), 2, "hidden rows are still stored")


def check_delete_entities_counts_what_existed(open_store: OnlineStoreFactory) -> None:
    """delete_entities removes rows, counts each existing key once, and keys can come back."""
    view = _view("delete")
    with _opened(open_store) as store:
        store.write_batch(view, [OnlineRow(f"k{i}", T0, {"i": i}) for i in range(5)])
        removed = store.delete_entities(view, ["k1", "missing", "k3", "k1"])
        _expect_equal(removed, 2, "rows removed (duplicates and unknown keys not counted)")
        _expect_equal(
            _event_times(store.read(view, ["k0", "k1", "k2", "k3", "k4"])),
            [T0, None, T0, None, T0],
            "rows after the delete",
        )
        _expect_equal(store.count(view), 3, "count after the delete")
        _expect_equal(store.delete_entities(view, ["k1", "k3"]), 0, "deleting again")
        _expect_equal(store.write_batch(view, [OnlineRow("k1", T0 - 5, {"i": -1})]), 1, "rewrite")
        _expect_equal(_event_times(store.read(view, ["k1"])), [T0 - 5], "a deleted key again")


def check_drop_view_drops_only_that_view(open_store: OnlineStoreFactory) -> None:
    """drop_view empties one view and leaves the others alone."""
    dropped, kept = _view("dropped"), _view("kept")
    with _opened(open_store) as store:
        store.write_batch(dropped, [OnlineRow(f"k{i}", T0, {"i": i}) for i in range(10)])
        store.write_batch(kept, [OnlineRow(f"k{i}", T0, {"i": i}) for i in range(3)])
        store.drop_view(dropped)
        _expect_equal(store.count(dropped), 0, "count of the dropped view")
        _expect_equal(store.read(dropped, ["k0", "k9"]), [None, None], "read of the dropped view")
        _expect_equal(store.count(kept), 3, "count of the other view")
        _expect_equal(_event_times(store.read(kept, ["k0"])), [T0], "read of the other view")
        stored = store.write_batch(dropped, [OnlineRow("k0", T0 - 1, {"i": 0})])
        _expect_equal(stored, 1, "an older row after the drop is stored (nothing to be newer)")


def check_views_are_isolated(open_store: OnlineStoreFactory) -> None:
    """The same key in two views is two rows; names that are prefixes of others are apart."""
    first = _view("iso")
    views = [first, f"{first}:", f"{first}:x", f"{first}|x", f"{first}x"]
    with _opened(open_store) as store:
        for number, view in enumerate(views):
            store.write_batch(view, [OnlineRow("key", T0 + number, {"view": view})])
        for number, view in enumerate(views):
            (row,) = store.read(view, ["key"])
            _expect_row(row, OnlineRow("key", T0 + number, {"view": view}), f"view {view!r}")
            _expect_equal(store.count(view), 1, f"count of view {view!r}")
        store.delete_entities(views[1], ["key"])
        _expect_equal(
            [store.count(view) for view in views], [1, 0, 1, 1, 1], "counts after one delete"
        )


def check_reopened_store_sees_the_data(open_store: OnlineStoreFactory) -> None:
    """Rows written and the instance closed are there for a new instance (durability)."""
    view = _view("reopen")
    rows = [OnlineRow(f"k{i}", T0 + i, {"i": i, "x": i / 7}) for i in range(100)]
    with _opened(open_store) as store:
        _expect_equal(store.write_batch(view, rows), 100, "rows stored")
    with _opened(open_store) as store:
        _expect_equal(store.count(view), 100, "count seen by a new instance")
        found = store.read(view, [row.entity_key for row in rows])
        for row, expected in zip(found, rows, strict=True):
            _expect_row(row, expected, "read by a new instance")
    with _opened(open_store) as writer, _opened(open_store) as reader:
        writer.write_batch(view, [OnlineRow("k0", T0 + 1_000, {"i": -1})])
        _expect_equal(
            _event_times(reader.read(view, ["k0"])), [T0 + 1_000], "a write by another instance"
        )
    store = open_store()
    store.close()
    store.write_batch(view, [OnlineRow("after-close", T0, {})])
    _expect_equal(_event_times(store.read(view, ["after-close"])), [T0], "use after close")
    store.close()


def check_many_keys_in_one_read(open_store: OnlineStoreFactory) -> None:
    """5,000 keys asked at once (present, missing, repeated), answered in order."""
    view = _view("many")
    rows = [OnlineRow(f"entity-{i:05d}", T0 + i, {"i": i}) for i in range(3_000)]
    rng = random.Random(11)
    keys = [f"entity-{rng.randrange(4_000):05d}" for _ in range(5_000)]
    with _opened(open_store) as store:
        _expect_equal(store.write_batch(view, rows), 3_000, "rows stored")
        found = store.read(view, keys)
        expected = [T0 + int(key[7:]) if int(key[7:]) < 3_000 else None for key in keys]
        _expect_equal(_event_times(found), expected, "event times of 5,000 keys")
        _expect(
            all(row is None or row.values["i"] == int(row.entity_key[7:]) for row in found),
            "values of 5,000 keys match their keys",
        )
        _expect_equal(store.count(view), 3_000, "count")


def check_large_batch(open_store: OnlineStoreFactory) -> None:
    """60,000 rows in one write_batch are all stored, and a second pass stores none older."""
    view = _view("large")
    total = 60_000
    rows = [OnlineRow(f"e{i}", T0 + i, {"i": i, "f": i * 0.5, "s": "x"}) for i in range(total)]
    with _opened(open_store) as store:
        _expect_equal(store.write_batch(view, rows), total, "rows stored")
        _expect_equal(store.count(view), total, "count")
        older = [OnlineRow(row.entity_key, row.event_ts - 1, {"i": -1}) for row in rows]
        _expect_equal(store.write_batch(view, older), 0, "older rows stored")
        sample = [f"e{i}" for i in range(0, total, 997)]
        found = store.read(view, sample)
        _expect(
            all(row is not None and row.values["i"] == int(row.entity_key[1:]) for row in found),
            "sampled rows keep the first batch's values",
        )


def check_concurrent_writers_keep_the_newest_rows(open_store: OnlineStoreFactory) -> None:
    """Threads writing the same keys at once, in random order, leave each key's newest row."""
    view = _view("concurrent")
    keys = [f"k{i}" for i in range(200)]
    writers, rounds = 6, 8
    shared = open_store()
    failures: list[Exception] = []
    start = threading.Barrier(writers)

    def write(number: int) -> None:
        rng = random.Random(number)
        store = shared if number % 2 else open_store()  # a shared instance, and own ones
        try:
            start.wait(timeout=30)
            for round_ in range(rounds):
                batch = [
                    OnlineRow(key, T0 + round_ * writers + number, {"by": number, "r": round_})
                    for key in rng.sample(keys, len(keys) // 2)
                ]
                store.write_batch(view, batch)
                store.read(view, rng.sample(keys, 20))
        except Exception as exc:  # noqa: BLE001  # reported from the checking thread
            failures.append(exc)
        finally:
            if store is not shared:
                store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        _expect(not any(thread.is_alive() for thread in threads), "writers did not finish")
        _expect(not failures, f"writers failed: {failures[:3]!r}")
        newest: dict[str, int] = {}
        for number in range(writers):
            rng = random.Random(number)
            for round_ in range(rounds):
                for key in rng.sample(keys, len(keys) // 2):
                    newest[key] = max(newest.get(key, -1), T0 + round_ * writers + number)
                rng.sample(keys, 20)
        found = shared.read(view, keys)
        _expect_equal(
            _event_times(found), [newest.get(key) for key in keys], "event times after writers"
        )
        _expect(
            all(
                row is None or (row.values["r"] * writers + row.values["by"] == row.event_ts - T0)
                for row in found
            ),
            "each stored row holds the values written with its event time",
        )
    finally:
        shared.close()


def check_odd_names(open_store: OnlineStoreFactory) -> None:
    """View names and keys are arbitrary text: quotes, separators, newlines, SQL, unicode."""
    suffix = uuid.uuid4().hex[:8]
    views = [
        f"odd view {suffix}: 'quoted' \"double\" | pipe\nnewline",
        f"{suffix}'; DROP TABLE online_features; --",
        f"ünïcödé 视图 🙂 {suffix}",
        f"{suffix}*?[glob]{{braces}}%_",
    ]
    keys = [
        "a|b",
        "a:b",
        "a:online:b",
        "line\nbreak",
        "tab\there",
        "",
        " ",
        "'",
        '"',
        "%",
        "_",
        "*",
        "?",
        "1|{json}",
        "x' OR '1'='1",
        "ünïcödé 🙂",
        "nul\x00inside",
        "\\",
    ]
    with _opened(open_store) as store:
        for number, view in enumerate(views):
            rows = [OnlineRow(key, T0 + number, {"key": key, "n": i}) for i, key in enumerate(keys)]
            _expect_equal(store.write_batch(view, rows), len(keys), f"rows stored in {view!r}")
        for number, view in enumerate(views):
            found = store.read(view, keys)
            for i, (row, key) in enumerate(zip(found, keys, strict=True)):
                _expect_row(row, OnlineRow(key, T0 + number, {"key": key, "n": i}), repr(view))
            (row,) = store.read(view, ["a|b"])
            _expect_equal(row and row.values["key"], "a|b", f"single read in {view!r}")
            _expect_equal(store.count(view), len(keys), f"count of {view!r}")
        _expect_equal(store.delete_entities(views[1], ["a|b", "line\nbreak"]), 2, "deleted")
        _expect_equal(store.count(views[1]), len(keys) - 2, "count after delete")
        for view in views:
            store.drop_view(view)
            _expect_equal(store.count(view), 0, f"count after dropping {view!r}")


def check_empty_arguments(open_store: OnlineStoreFactory) -> None:
    """Empty batches and empty key lists do nothing and return 0 or []."""
    view = _view("empty")
    with _opened(open_store) as store:
        _expect_equal(store.write_batch(view, []), 0, "rows stored from an empty batch")
        _expect_equal(store.read(view, []), [], "read of no keys")
        _expect_equal(store.delete_entities(view, []), 0, "delete of no keys")
        _expect_equal(store.count(view), 0, "count")


def check_bad_arguments_are_invalid_and_write_nothing(open_store: OnlineStoreFactory) -> None:
    """Bad rows raise Invalid and leave nothing of their batch; bad names and keys too."""
    view = _view("invalid")
    good = OnlineRow("good", T0, {"x": 1})
    bad_rows: list[tuple[str, Any]] = [
        ("a list value", OnlineRow("bad", T0, {"x": [1, 2]})),
        ("a dict value", OnlineRow("bad", T0, {"x": {"nested": 1}})),
        ("an object value", OnlineRow("bad", T0, {"x": object()})),
        ("bytes value", OnlineRow("bad", T0, {"x": b"raw"})),
        ("a non-text feature name", OnlineRow("bad", T0, {1: "x"})),  # type: ignore[dict-item]
        ("a non-text entity key", OnlineRow(7, T0, {"x": 1})),  # type: ignore[arg-type]
        ("a float event_ts", OnlineRow("bad", 1.5, {"x": 1})),  # type: ignore[arg-type]
        ("a bool event_ts", OnlineRow("bad", True, {"x": 1})),
        ("an event_ts in nanoseconds", OnlineRow("bad", T0 * 1_000_000, {"x": 1})),
        ("values not a mapping", OnlineRow("bad", T0, [("x", 1)])),  # type: ignore[arg-type]
        ("a tuple, not an OnlineRow", ("bad", T0, {"x": 1})),
    ]
    with _opened(open_store) as store:
        for what, bad in bad_rows:
            with _raises(Invalid, f"write_batch with {what}"):
                store.write_batch(view, [good, bad])
        _expect_equal(store.count(view), 0, "rows stored by batches that raised Invalid")
        _expect_equal(store.read(view, ["good"]), [None], "the good row of a refused batch")
        for bad_view in ("", None, 7):
            with _raises(Invalid, f"view name {bad_view!r}"):
                store.write_batch(bad_view, [good])  # type: ignore[arg-type]
            with _raises(Invalid, f"read with view name {bad_view!r}"):
                store.read(bad_view, ["good"])  # type: ignore[arg-type]
        with _raises(Invalid, "read with a non-text key"):
            store.read(view, ["good", 7])  # type: ignore[list-item]
        with _raises(Invalid, "read with a string instead of a list of keys"):
            store.read(view, "good")
        with _raises(Invalid, "read with a float min_event_ts"):
            store.read(view, ["good"], min_event_ts=1.5)  # type: ignore[arg-type]
        with _raises(Invalid, "write_batch with a key that is not valid unicode"):
            store.write_batch(view, [good, OnlineRow("bad\udc80", T0, {"x": 1})])
        with _raises(Invalid, "delete_entities with a non-text key"):
            store.delete_entities(view, [None])  # type: ignore[list-item]
        store.write_batch(view, [good])
        _expect_equal(store.count(view), 1, "a good batch after the refused ones")


#: Every check, in a sensible order.
ONLINE_STORE_CHECKS: list[OnlineStoreCheck] = [
    check_implements_protocol,
    check_scalars_round_trip_exactly,
    check_read_keeps_order_and_duplicates,
    check_unknown_keys_and_views,
    check_newer_rows_win,
    check_rows_are_replaced_whole,
    check_min_event_ts_hides_old_rows,
    check_delete_entities_counts_what_existed,
    check_drop_view_drops_only_that_view,
    check_views_are_isolated,
    check_reopened_store_sees_the_data,
    check_many_keys_in_one_read,
    check_large_batch,
    check_concurrent_writers_keep_the_newest_rows,
    check_odd_names,
    check_empty_arguments,
    check_bad_arguments_are_invalid_and_write_nothing,
]


def check_online_store(open_store: OnlineStoreFactory) -> None:
    """Run every check against stores made by ``open_store``."""
    for check in ONLINE_STORE_CHECKS:
        check(open_store)
