"""Point-in-time joins: hand-computed cases, a property against a brute-force reference of the
documented rule, and on-demand features (offline equals online for the same inputs)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from decisionloop.errors import Invalid
from decisionloop.features.definitions import FeatureView, OnDemandFeatureView
from decisionloop.features.offline import ViewInput, point_in_time_join
from decisionloop.features.transforms import apply_python, apply_sql_online, typed_inputs

START = datetime(2024, 1, 1)
MICROSECOND = timedelta(microseconds=1)


def at(minutes: float) -> datetime:
    """A naive (UTC) time, minutes after 2024-01-01 00:00."""
    return START + timedelta(minutes=minutes)


def write(folder: Path, name: str, columns: dict[str, Any] | pa.Table) -> str:
    path = folder / f"{name}.parquet"
    pq.write_table(columns if isinstance(columns, pa.Table) else pa.table(columns), path)
    return str(path)


def view(
    name: str = "spending",
    *,
    features: dict[str, Any] | None = None,
    ttl: Any = None,
    created_timestamp: str | None = None,
) -> FeatureView:
    return FeatureView(
        name=name,
        entity="customer",
        source="transactions",
        timestamp="event_at",
        features=features or {"total": "number"},
        ttl=ttl,
        created_timestamp=created_timestamp,
    )


def read(
    definition: FeatureView,
    files: Sequence[str],
    features: Sequence[str] | None = None,
    join_key: str = "customer_id",
) -> ViewInput:
    return ViewInput(
        view=definition,
        join_key=join_key,
        files=list(files),
        features=list(features if features is not None else definition.features),
    )


def join(
    entity: pa.Table | pd.DataFrame, *inputs: ViewInput, **options: Any
) -> dict[str, list[Any]]:
    result: dict[str, list[Any]] = point_in_time_join(
        entity, timestamp="at", views=list(inputs), **options
    ).to_pydict()
    return result


def entity(keys: Sequence[Any], times: Sequence[Any], **extra: Sequence[Any]) -> pa.Table:
    return pa.table({"customer_id": list(keys), "at": list(times), **extra})


@pytest.fixture
def history(tmp_path: Path) -> str:
    """Customer 1: total 1.0 at minute 10 and 2.0 at minute 20; customer 2: 5.0 at minute 0."""
    return write(
        tmp_path,
        "history",
        {
            "customer_id": [1, 1, 2],
            "event_at": [at(10), at(20), at(0)],
            "total": [1.0, 2.0, 5.0],
        },
    )


# --- the rule, case by case ----------------------------------------------------------------


def test_a_row_at_exactly_the_entity_time_is_included(history: str) -> None:
    result = join(entity([1, 1], [at(10), at(20)]), read(view(), [history]))

    assert result["total"] == [1.0, 2.0]


def test_a_row_one_microsecond_after_the_entity_time_is_not_seen(history: str) -> None:
    times = [at(20) - MICROSECOND, at(20), at(20) + MICROSECOND, at(10) - MICROSECOND]

    result = join(entity([1, 1, 1, 1], times), read(view(), [history]))

    assert result["total"] == [1.0, 2.0, 2.0, None]


def test_ttl_boundary_is_inclusive_and_one_microsecond_beyond_is_missing(tmp_path: Path) -> None:
    files = [write(tmp_path, "f", {"customer_id": [1], "event_at": [at(0)], "total": [7.0]})]
    times = [at(0), at(10), at(10) + MICROSECOND, at(60)]

    for ttl in ("10m", 600, timedelta(minutes=10)):
        result = join(entity([1] * 4, times), read(view(ttl=ttl), files))

        assert result["total"] == [7.0, 7.0, None, None], ttl


def test_ttl_applies_to_the_newest_row_not_to_an_older_fresh_enough_one(history: str) -> None:
    # at minute 25 with a 10-minute TTL the newest row (minute 20) is fresh; at minute 31 it is
    # not, and the older row (minute 10) must not be used instead
    result = join(entity([1, 1], [at(25), at(31)]), read(view(ttl="10m"), [history]))

    assert result["total"] == [2.0, None]


def test_a_ttl_with_microseconds_keeps_its_boundary_inclusive(tmp_path: Path) -> None:
    ttl = timedelta(seconds=1, microseconds=1)
    files = [write(tmp_path, "f", {"customer_id": [1], "event_at": [at(0)], "total": [7.0]})]

    result = join(
        entity([1, 1], [at(0) + ttl, at(0) + ttl + MICROSECOND]), read(view(ttl=ttl), files)
    )

    assert result["total"] == [7.0, None]


def test_without_ttl_any_old_row_is_used(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path,
            "f",
            {"customer_id": [1], "event_at": [datetime(1990, 5, 17)], "total": [3.5]},
        )
    ]

    result = join(entity([1], [datetime(2030, 1, 1)]), read(view(), files))

    assert result["total"] == [3.5]


def test_an_entity_without_feature_rows_gets_missing_features(history: str) -> None:
    result = join(entity([99, 2, 1], [at(30)] * 3), read(view(), [history]))

    assert result == {
        "customer_id": [99, 2, 1],
        "at": [at(30)] * 3,
        "total": [None, 5.0, 2.0],
    }


def test_entity_times_before_every_feature_row_get_missing_features(history: str) -> None:
    result = join(entity([1, 2], [at(5), at(-1)]), read(view(), [history]))

    assert result["total"] == [None, None]


def test_null_key_or_null_time_keeps_the_row_with_missing_features(history: str) -> None:
    frame = entity([1, None, 1, 2], [at(30), at(30), None, at(30)], label=[1, 2, 3, 4])

    result = join(frame, read(view(ttl="1h"), [history]))

    assert result == {
        "customer_id": [1, None, 1, 2],
        "at": [at(30), at(30), None, at(30)],
        "label": [1, 2, 3, 4],
        "total": [2.0, None, None, 5.0],
    }


def test_null_key_in_a_pandas_frame_keeps_the_other_rows_features(history: str) -> None:
    frame = pd.DataFrame({"customer_id": [1, None], "at": [at(30), at(30)]})

    result = join(frame, read(view(), [history]))

    assert result["total"] == [2.0, None]


def test_duplicate_entity_rows_are_both_kept_with_the_same_features(history: str) -> None:
    frame = entity([1, 2, 1], [at(15), at(15), at(15)], label=["a", "b", "c"])

    result = join(frame, read(view(), [history]))

    assert result["label"] == ["a", "b", "c"]
    assert result["total"] == [1.0, 5.0, 1.0]


def test_output_keeps_the_order_of_a_shuffled_entity_frame(history: str) -> None:
    keys = [2, 1, 99, 1, 1, 2, 1]
    times = [at(1), at(25), at(50), at(9), at(10), at(-5), at(19)]

    result = join(entity(keys, times, row=list(range(7))), read(view(), [history]))

    assert result["row"] == list(range(7))
    assert result["customer_id"] == keys
    assert result["at"] == times
    assert result["total"] == [5.0, 2.0, None, None, 1.0, None, 1.0]


def test_an_empty_entity_frame_gives_an_empty_result(history: str) -> None:
    frame = pa.table(
        {"customer_id": pa.array([], pa.int64()), "at": pa.array([], pa.timestamp("us"))}
    )

    result = join(frame, read(view(), [history]))

    assert result == {"customer_id": [], "at": [], "total": []}


# --- tie-breaks ----------------------------------------------------------------------------


def test_equal_event_times_are_broken_by_file_order_then_row_order(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "first",
        {"customer_id": [1, 1, 2], "event_at": [at(10)] * 3, "total": [1.0, 2.0, 4.0]},
    )
    second = write(
        tmp_path,
        "second",
        {"customer_id": [1, 2, 2], "event_at": [at(10)] * 3, "total": [3.0, 5.0, 6.0]},
    )
    frame = entity([1, 2], [at(10), at(10)])

    assert join(frame, read(view(), [first]))["total"] == [2.0, 4.0]
    assert join(frame, read(view(), [second]))["total"] == [3.0, 6.0]
    assert join(frame, read(view(), [first, second]))["total"] == [3.0, 6.0]
    assert join(frame, read(view(), [second, first]))["total"] == [2.0, 4.0]


def test_a_later_file_does_not_override_a_newer_event(tmp_path: Path) -> None:
    newer = write(tmp_path, "a", {"customer_id": [1], "event_at": [at(20)], "total": [2.0]})
    older = write(tmp_path, "b", {"customer_id": [1], "event_at": [at(10)], "total": [1.0]})

    result = join(entity([1, 1], [at(15), at(30)]), read(view(), [newer, older]))

    assert result["total"] == [1.0, 2.0]


def test_equal_event_times_are_broken_by_the_latest_created_timestamp(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "first",
        {
            "customer_id": [1, 1, 1, 2, 2],
            "event_at": [at(10)] * 5,
            "created_at": [at(12), at(15), at(11), at(30), at(30)],
            "total": [1.0, 2.0, 3.0, 4.0, 5.0],
        },
    )
    second = write(
        tmp_path,
        "second",
        {
            "customer_id": [1, 2],
            "event_at": [at(10), at(10)],
            "created_at": [at(14), at(30)],
            "total": [6.0, 7.0],
        },
    )
    definition = view(created_timestamp="created_at")
    frame = entity([1, 2], [at(10), at(10)])

    # customer 1: created 15 beats every other; customer 2: equal created -> ingested last
    assert join(frame, read(definition, [first]))["total"] == [2.0, 5.0]
    assert join(frame, read(definition, [first, second]))["total"] == [2.0, 7.0]
    assert join(frame, read(definition, [second, first]))["total"] == [2.0, 5.0]


def test_a_view_with_created_timestamp_never_reads_the_future(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path,
            "f",
            {
                "customer_id": [1, 1],
                "event_at": [at(10), at(20)],
                "created_at": [at(10), at(20)],
                "total": [1.0, 2.0],
            },
        )
    ]

    result = join(
        entity([1, 1, 1], [at(5), at(15), at(25)]),
        read(view(created_timestamp="created_at"), files),
    )

    assert result["total"] == [None, 1.0, 2.0]


# --- several views, selections, types --------------------------------------------------------


def test_two_views_with_their_own_join_keys_and_ttls(tmp_path: Path) -> None:
    spending = write(
        tmp_path,
        "spending",
        {"customer_id": [1, 1, 2], "event_at": [at(0), at(50), at(40)], "total": [1.0, 2.0, 3.0]},
    )
    risk = write(
        tmp_path,
        "risk",
        {"merchant_id": ["m1", "m2"], "event_at": [at(0), at(45)], "score": [0.1, 0.9]},
    )
    risk_view = FeatureView(
        name="risk",
        entity="merchant",
        source="merchants",
        timestamp="event_at",
        features={"score": "number"},
        ttl=timedelta(days=1),
    )
    frame = pa.table(
        {
            "customer_id": [1, 1, 2, 2],
            "merchant_id": ["m1", "m2", "m2", "m1"],
            "at": [at(30), at(55), at(44), at(24 * 60 + 1)],
        }
    )

    result = join(
        frame,
        read(view(ttl="20m"), [spending]),
        read(risk_view, [risk], join_key="merchant_id"),
    )

    assert result["total"] == [None, 2.0, 3.0, None]
    assert result["score"] == [0.1, 0.9, None, None]


def test_a_view_read_for_a_subset_of_its_features_returns_only_those(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path,
            "f",
            {
                "customer_id": [1],
                "event_at": [at(0)],
                "total": [1.0],
                "count": [3],
                "city": ["Oslo"],
            },
        )
    ]
    definition = view(features={"total": "number", "count": "integer", "city": "string"})

    subset = point_in_time_join(
        entity([1], [at(1)]), timestamp="at", views=[read(definition, files, ["city", "total"])]
    )
    chosen = point_in_time_join(
        entity([1], [at(1)]),
        timestamp="at",
        views=[read(definition, files)],
        outputs=["count", "city"],
    )

    assert subset.column_names == ["customer_id", "at", "city", "total"]
    assert subset.to_pydict()["city"] == ["Oslo"]
    assert chosen.column_names == ["customer_id", "at", "count", "city"]
    assert chosen.to_pydict()["count"] == [3]


def test_an_integer_key_matches_a_text_key_in_the_files_as_text(tmp_path: Path) -> None:
    text_keys = write(
        tmp_path,
        "text",
        {"customer_id": ["1", "2", "01"], "event_at": [at(0)] * 3, "total": [1.0, 2.0, 3.0]},
    )
    int_keys = write(
        tmp_path, "int", {"customer_id": [1, 2], "event_at": [at(0)] * 2, "total": [1.0, 2.0]}
    )
    int32_frame = pa.table({"customer_id": pa.array([2, 1, 3], pa.int32()), "at": [at(1)] * 3})

    assert join(entity([2, 1, 3], [at(1)] * 3), read(view(), [text_keys]))["total"] == [
        2.0,
        1.0,
        None,
    ]
    assert join(entity(["1", "01"], [at(1)] * 2), read(view(), [int_keys]))["total"] == [
        1.0,
        None,
    ]
    assert join(entity([2, 1, 3], [at(1)] * 3), read(view(), [int_keys]))["total"] == [
        2.0,
        1.0,
        None,
    ]
    assert join(int32_frame, read(view(), [int_keys]))["total"] == [2.0, 1.0, None]


def test_naive_times_are_utc_against_timezone_aware_feature_times(tmp_path: Path) -> None:
    oslo = timezone(timedelta(hours=1))
    aware = pa.table(
        {
            "customer_id": [1, 1],
            # 10:00 and 11:00 UTC
            "event_at": pa.array(
                [datetime(2024, 1, 1, 11, tzinfo=oslo), datetime(2024, 1, 1, 12, tzinfo=oslo)],
                pa.timestamp("us", tz="Europe/Oslo"),
            ),
            "total": [1.0, 2.0],
        }
    )
    files = [write(tmp_path, "aware", aware)]
    naive = [datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 11) - MICROSECOND]

    assert join(entity([1, 1], naive), read(view(), files))["total"] == [1.0, 1.0]


def test_timezone_aware_entity_times_against_naive_feature_times(history: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    times = pa.array(
        # 00:20 UTC, 00:19:59.999999 UTC, 00:10 UTC
        [
            datetime(2024, 1, 1, 2, 20, tzinfo=plus_two),
            datetime(2024, 1, 1, 0, 19, 59, 999999, tzinfo=UTC),
            datetime(2024, 1, 1, 0, 10, tzinfo=UTC),
        ],
        pa.timestamp("us", tz="UTC"),
    )

    result = join(pa.table({"customer_id": [1, 1, 1], "at": times}), read(view(), [history]))

    assert result["total"] == [2.0, 1.0, 1.0]


def test_text_times_are_parsed_with_their_offsets_and_naive_text_is_utc(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path,
            "text",
            {
                "customer_id": [1, 1],
                "event_at": ["2024-01-01 00:10:00", "2024-01-01T02:20:00+02:00"],
                "total": [1.0, 2.0],
            },
        )
    ]
    times = [
        "2024-01-01T00:19:59.999999Z",
        "2024-01-01 00:20:00",
        "2024-01-01T01:09:59+01:00",
        "2024-01-01T00:10:00+00:00",
    ]

    result = join(entity([1] * 4, times), read(view(), files))

    assert result["total"] == [1.0, 2.0, None, 1.0]


def test_a_feature_stored_as_text_is_cast_to_its_declared_type(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path,
            "f",
            {"customer_id": [1, 2], "event_at": [at(0)] * 2, "total": ["1.5", "20"]},
        )
    ]

    result = point_in_time_join(
        entity([2, 1, 3], [at(1)] * 3), timestamp="at", views=[read(view(), files)]
    )

    assert result.schema.field("total").type == pa.float64()
    assert result.to_pydict()["total"] == [20.0, 1.5, None]


def test_pandas_and_arrow_entity_frames_give_the_same_result(history: str) -> None:
    keys = [1, 2, 1, 1]
    times = [at(10), at(0), at(9), at(21)]
    frame = pd.DataFrame(
        {
            "customer_id": keys,
            "at": pd.Series(times).astype("datetime64[ns]"),
            "label": [0, 1, 0, 1],
        }
    )

    from_pandas = join(frame, read(view(), [history]))
    from_arrow = join(entity(keys, times, label=[0, 1, 0, 1]), read(view(), [history]))

    assert from_pandas["total"] == from_arrow["total"] == [1.0, 5.0, None, 2.0]
    assert from_pandas["label"] == from_arrow["label"] == [0, 1, 0, 1]
    assert from_pandas["customer_id"] == keys


# --- refused inputs ------------------------------------------------------------------------


def test_an_entity_column_named_like_a_feature_is_refused(history: str) -> None:
    with pytest.raises(Invalid, match="total"):
        join(entity([1], [at(1)], total=[0.0]), read(view(), [history]))


def test_an_entity_frame_without_the_join_key_is_refused(history: str) -> None:
    frame = pa.table({"client": [1], "at": [at(1)]})

    with pytest.raises(Invalid, match="customer_id"):
        join(frame, read(view(), [history]))


def test_an_entity_frame_without_the_timestamp_column_is_refused(history: str) -> None:
    frame = pa.table({"customer_id": [1], "when": [at(1)]})

    with pytest.raises(Invalid, match="'at'"):
        join(frame, read(view(), [history]))


def test_a_view_whose_files_lack_a_feature_column_is_refused(tmp_path: Path) -> None:
    files = [write(tmp_path, "f", {"customer_id": [1], "event_at": [at(0)], "total": [1.0]})]
    definition = view(features={"total": "number", "count": "integer"})

    with pytest.raises(Invalid, match=r"'spending'.*'count'"):
        join(entity([1], [at(1)]), read(definition, files))


def test_a_view_whose_files_lack_the_created_timestamp_is_refused(history: str) -> None:
    with pytest.raises(Invalid, match="'created_at'"):
        join(entity([1], [at(1)]), read(view(created_timestamp="created_at"), [history]))


def test_a_view_without_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no rows"):
        join(entity([1], [at(1)]), read(view(), []))


def test_numbers_as_event_times_are_refused(tmp_path: Path) -> None:
    files = [write(tmp_path, "f", {"customer_id": [1], "event_at": [5], "total": [1.0]})]

    with pytest.raises(Invalid, match="holds numbers"):
        join(entity([1], [at(1)]), read(view(), files))


def test_one_feature_from_two_views_is_refused(history: str) -> None:
    with pytest.raises(Invalid, match="two views"):
        join(entity([1], [at(1)]), read(view(), [history]), read(view("other"), [history]))


# --- property: the join equals a brute-force reading of the rule ---------------------------


@dataclass(frozen=True)
class FeatureRow:
    key: int
    event_us: int
    created_us: int
    value: float | None


def reference_join(
    rows: Sequence[tuple[int | None, int | None]],
    files: Sequence[Sequence[FeatureRow]],
    ttl_us: int | None,
    with_created: bool,
) -> list[float | None]:
    """The module docstring, literally: per entity row, the newest feature row of its entity at
    or before its time (ties: latest created when declared, then later file, then later row),
    missing when none or when that row is older than time - ttl."""
    values: list[float | None] = []
    for key, time_us in rows:
        if key is None or time_us is None:
            values.append(None)
            continue
        candidates = [
            (row.event_us, row.created_us if with_created else 0, file_index, row_index, row)
            for file_index, file_rows in enumerate(files)
            for row_index, row in enumerate(file_rows)
            if row.key == key and row.event_us <= time_us
        ]
        if not candidates:
            values.append(None)
            continue
        newest = max(candidates, key=lambda candidate: candidate[:4])[4]
        too_old = ttl_us is not None and newest.event_us < time_us - ttl_us
        values.append(None if too_old else newest.value)
    return values


def _time(step: int, microsecond: int) -> int:
    return step * 60_000_000 + microsecond


def maybe(values: st.SearchStrategy[Any], none_one_in: int = 8) -> st.SearchStrategy[Any]:
    """``values``, or None about once in ``none_one_in`` draws."""
    return st.tuples(st.integers(1, none_one_in), values).map(lambda p: None if p[0] == 1 else p[1])


#: few keys and few distinct times, so ties and TTL boundaries happen often
event_times = st.builds(_time, st.integers(0, 2), st.sampled_from([0, 0, 1]))
created_times = st.sampled_from([0, 1, 60_000_000])


@st.composite
def feature_files(draw: st.DrawFn, max_files: int = 3) -> list[list[FeatureRow]]:
    """1 to ``max_files`` files of 0-8 rows; each value names its file and row
    (100 * file + row), so a wrong tie-break always shows; about one value in ten is missing."""
    files = []
    for file_index in range(draw(st.integers(1, max_files))):
        rows = []
        for row_index in range(draw(st.integers(0, 8))):
            value = float(100 * file_index + row_index)
            rows.append(
                FeatureRow(
                    key=draw(st.integers(1, 3)),
                    event_us=draw(event_times),
                    created_us=draw(created_times),
                    value=draw(maybe(st.just(value), none_one_in=10)),
                )
            )
        files.append(rows)
    return files


entity_rows = st.lists(
    st.tuples(
        maybe(st.integers(1, 3)),
        maybe(st.builds(_time, st.integers(-1, 3), st.sampled_from([0, 1]))),
    ),
    min_size=1,
    max_size=12,
)
ttls_us = st.sampled_from([None, None, 1, 60_000_000, 60_000_001, 120_000_000])


def _datetime(time_us: int | None) -> datetime | None:
    return None if time_us is None else START + timedelta(microseconds=time_us)


def _entity_times(times: list[int | None], form: str) -> pa.Array:
    moments = [_datetime(t) for t in times]
    if form == "naive":
        return pa.array(moments, pa.timestamp("us"))
    if form == "aware":
        aware = [None if m is None else m.replace(tzinfo=UTC) for m in moments]
        return pa.array(aware, pa.timestamp("us", tz="America/New_York"))
    return pa.array([None if m is None else m.isoformat() for m in moments], pa.string())


def _check_join(
    files: list[list[FeatureRow]],
    rows: Sequence[tuple[int | None, int | None]],
    ttl_us: int | None,
    with_created: bool,
    time_form: str,
    key_as_text: bool,
    unique_times: bool = False,
) -> None:
    schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("event_at", pa.timestamp("us")),
            ("created_at", pa.timestamp("us")),
            ("total", pa.float64()),
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, file_rows in enumerate(files):
            table = pa.table(
                {
                    "customer_id": [r.key for r in file_rows],
                    "event_at": [_datetime(r.event_us) for r in file_rows],
                    "created_at": [_datetime(r.created_us) for r in file_rows],
                    "total": [r.value for r in file_rows],
                },
                schema=schema,
            )
            paths.append(write(Path(folder), f"part-{index}", table))
        keys = [k for k, _ in rows]
        frame = pa.table(
            {
                "customer_id": pa.array(
                    [None if k is None else str(k) for k in keys] if key_as_text else keys,
                    pa.string() if key_as_text else pa.int64(),
                ),
                "at": _entity_times([t for _, t in rows], time_form),
            }
        )
        definition = view(
            ttl=None if ttl_us is None else timedelta(microseconds=ttl_us),
            created_timestamp="created_at" if with_created else None,
        )

        data = dataclasses.replace(read(definition, paths), unique_times=unique_times)
        result = join(frame, data)

    assert result["total"] == reference_join(rows, files, ttl_us, with_created)


PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(
    files=feature_files(),
    rows=entity_rows,
    ttl_us=ttls_us,
    time_form=st.sampled_from(["naive", "aware", "text"]),
    key_as_text=st.booleans(),
)
def test_join_equals_the_reference_rule(
    files: list[list[FeatureRow]],
    rows: list[tuple[int | None, int | None]],
    ttl_us: int | None,
    time_form: str,
    key_as_text: bool,
) -> None:
    _check_join(files, rows, ttl_us, False, time_form, key_as_text)


@PROPERTY
@given(
    files=feature_files(max_files=1),
    rows=entity_rows,
    ttl_us=ttls_us,
    time_form=st.sampled_from(["naive", "aware", "text"]),
)
def test_join_of_a_single_file_equals_the_reference_rule(
    files: list[list[FeatureRow]],
    rows: list[tuple[int | None, int | None]],
    ttl_us: int | None,
    time_form: str,
) -> None:
    # one file takes its own SQL path (no file index in the order value)
    _check_join(files, rows, ttl_us, False, time_form, False)


def _without_ties(files: list[list[FeatureRow]]) -> list[list[FeatureRow]]:
    """The files with only the first row of each (key, event time): no ties to break."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for rows in files:
        unique = []
        for row in rows:
            if (row.key, row.event_us) not in seen:
                seen.add((row.key, row.event_us))
                unique.append(row)
        kept.append(unique)
    return kept


@PROPERTY
@given(
    files=feature_files().map(_without_ties),
    rows=entity_rows,
    ttl_us=ttls_us,
    time_form=st.sampled_from(["naive", "aware", "text"]),
)
def test_join_on_event_times_alone_when_they_are_unique_equals_the_reference_rule(
    files: list[list[FeatureRow]],
    rows: list[tuple[int | None, int | None]],
    ttl_us: int | None,
    time_form: str,
) -> None:
    # a data set keyed by (entity, event time) has no ties: the int64 fast path applies
    _check_join(files, rows, ttl_us, False, time_form, False, unique_times=True)


@settings(PROPERTY, phases=[Phase.explicit, Phase.generate])  # no shrinking while it fails
@given(
    files=feature_files(),
    rows=entity_rows,
    ttl_us=ttls_us,
)
def test_join_with_created_timestamp_equals_the_reference_rule(
    files: list[list[FeatureRow]],
    rows: list[tuple[int | None, int | None]],
    ttl_us: int | None,
) -> None:
    _check_join(files, rows, ttl_us, True, "naive", False)


@PROPERTY
@given(
    files=feature_files(),
    keys=st.lists(st.none() | st.integers(1, 4), max_size=8),
    ttl_us=ttls_us,
)
def test_created_timestamp_tie_break_equals_the_reference_at_or_after_every_event(
    files: list[list[FeatureRow]], keys: list[int | None], ttl_us: int | None
) -> None:
    # entity times at or after every feature row keep clear of the future-leak bug above, so
    # the created/file/row tie-break is checked on its own
    latest = max((row.event_us for file_rows in files for row in file_rows), default=0)
    rows = [(key, latest + offset) for offset, key in enumerate(keys)]

    _check_join(files, rows, ttl_us, True, "naive", False)


# --- on-demand features --------------------------------------------------------------------


@pytest.fixture
def balances(tmp_path: Path) -> ViewInput:
    """Customer 1: a=6, b=3; customer 2: a=5, b=0; customer 3: a=4, b=null; 4: no row."""
    files = [
        write(
            tmp_path,
            "balances",
            {
                "customer_id": [1, 2, 3],
                "event_at": [at(0)] * 3,
                "a": [6.0, 5.0, 4.0],
                "b": [3.0, 0.0, None],
            },
        )
    ]
    definition = FeatureView(
        name="balances",
        entity="customer",
        source="accounts",
        timestamp="event_at",
        features={"a": "number", "b": "number"},
    )
    return read(definition, files)


REQUEST_FRAME = entity([1, 2, 3, 4], [at(1)] * 4, amount=[2, 10, 1, 3])
#: a / b (missing when b is 0 or missing) and amount * a
EXPECTED_RATIO = [2.0, None, None, None]
EXPECTED_SCALED = [12.0, 50.0, 4.0, None]


def sql_view() -> OnDemandFeatureView:
    return OnDemandFeatureView(
        name="ratios",
        sources=["balances"],
        request={"amount": "number"},
        outputs={"ratio": "number", "scaled": "number"},
        sql={"ratio": "a / NULLIF(b, 0)", "scaled": "amount * a"},
    )


def ratios_by_row(row: dict[str, Any]) -> dict[str, Any]:
    # a row-mode function gets plain values, None for anything missing
    a, b, amount = row["a"], row["b"], row["amount"]
    return {
        "ratio": a / b if a is not None and b else None,
        "scaled": amount * a if a is not None and amount is not None else None,
    }


def ratios_by_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ratio": frame["a"] / frame["b"].where(frame["b"] != 0),
            "scaled": frame["amount"] * frame["a"],
        }
    )


def python_view(mode: str, function: Callable[..., Any]) -> OnDemandFeatureView:
    return OnDemandFeatureView(
        name="ratios",
        sources=["balances"],
        request={"amount": "number"},
        outputs={"ratio": "number", "scaled": "number"},
        function=function,
        mode=mode,  # type: ignore[arg-type]
    )


def _plain(values: Iterable[Any]) -> list[Any]:
    """Missing values as None (pandas gives NaN, Arrow gives null)."""
    return [None if v is None or pd.isna(v) else float(v) for v in values]


def test_sql_on_demand_features_are_computed_by_hand(balances: ViewInput) -> None:
    result = join(REQUEST_FRAME, balances, on_demand=[(sql_view(), None)])

    assert result["ratio"] == EXPECTED_RATIO
    assert result["scaled"] == EXPECTED_SCALED
    assert list(result) == ["customer_id", "at", "amount", "a", "b", "ratio", "scaled"]


@pytest.mark.parametrize(
    ("mode", "function"), [("row", ratios_by_row), ("vectorized", ratios_by_frame)]
)
def test_python_on_demand_features_are_computed_by_hand(
    balances: ViewInput, mode: str, function: Callable[..., Any]
) -> None:
    result = join(REQUEST_FRAME, balances, on_demand=[(python_view(mode, function), function)])

    assert _plain(result["ratio"]) == EXPECTED_RATIO
    assert _plain(result["scaled"]) == EXPECTED_SCALED
    assert result["customer_id"] == [1, 2, 3, 4]
    assert result["amount"] == [2, 10, 1, 3]


def test_a_row_function_sees_plain_values_offline_and_online(balances: ViewInput) -> None:
    seen: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(row))
        return ratios_by_row(row)

    offline = join(REQUEST_FRAME, balances, on_demand=[(python_view("row", record), record)])
    offline_rows, seen[:] = list(seen), []
    apply_python(python_view("row", record), record, _online_inputs(offline))

    expected = [
        {"a": 6.0, "b": 3.0, "amount": 2.0},
        {"a": 5.0, "b": 0.0, "amount": 10.0},
        {"a": 4.0, "b": None, "amount": 1.0},
        {"a": None, "b": None, "amount": 3.0},
    ]
    assert offline_rows == expected
    assert seen == expected
    assert all(type(v) in (float, type(None)) for row in seen for v in row.values())


def test_sql_and_python_on_demand_views_agree_in_one_join(balances: ViewInput) -> None:
    sql = sql_view()
    python = OnDemandFeatureView(
        name="ratios_py",
        sources=["balances"],
        request={"amount": "number"},
        outputs={"ratio_py": "number"},
        function="f:g",
        mode="vectorized",
    )

    def ratio_py(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ratio_py": ratios_by_frame(frame)["ratio"]})

    result = join(REQUEST_FRAME, balances, on_demand=[(sql, None), (python, ratio_py)])

    assert _plain(result["ratio_py"]) == result["ratio"] == EXPECTED_RATIO


def test_a_python_on_demand_view_keeps_the_other_columns_types(tmp_path: Path) -> None:
    files = [write(tmp_path, "f", {"customer_id": [1], "event_at": [at(0)], "count": [3]})]
    counts = read(view(features={"count": "integer"}), files)
    doubled = OnDemandFeatureView(
        name="doubled", sources=["spending"], outputs={"twice": "number"}, function="f:g"
    )

    def twice(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"twice": frame["count"] * 2})

    plain = point_in_time_join(entity([1, 2], [at(1)] * 2), timestamp="at", views=[counts])
    with_python = point_in_time_join(
        entity([1, 2], [at(1)] * 2), timestamp="at", views=[counts], on_demand=[(doubled, twice)]
    )

    assert plain.schema.field("count").type == pa.int64()
    assert with_python.schema.field("count").type == pa.int64()


def test_a_failing_python_function_is_invalid_naming_the_view(balances: ViewInput) -> None:
    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise ZeroDivisionError("boom")

    with pytest.raises(Invalid, match=r"'ratios' failed: ZeroDivisionError: boom"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("vectorized", broken), broken)])


def test_a_failing_row_function_is_invalid_naming_the_view(balances: ViewInput) -> None:
    def broken(row: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("missing")

    with pytest.raises(Invalid, match=r"'ratios' failed: KeyError"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("row", broken), broken)])


def test_a_vectorized_function_returning_the_wrong_columns_is_invalid(
    balances: ViewInput,
) -> None:
    def wrong(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ratio": frame["a"], "other": frame["b"]})

    with pytest.raises(Invalid, match=r"'ratios' returned 4 rows and columns \['ratio', 'other'\]"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("vectorized", wrong), wrong)])


def test_a_vectorized_function_returning_the_wrong_row_count_is_invalid(
    balances: ViewInput,
) -> None:
    def short(frame: pd.DataFrame) -> pd.DataFrame:
        return ratios_by_frame(frame).head(2)

    with pytest.raises(Invalid, match=r"'ratios' returned 2 rows"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("vectorized", short), short)])


def test_a_row_function_returning_the_wrong_keys_is_invalid(balances: ViewInput) -> None:
    def wrong(row: dict[str, Any]) -> dict[str, Any]:
        return {"ratio": 1.0, "other": 2.0}

    with pytest.raises(Invalid, match="'ratios'"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("row", wrong), wrong)])


def test_a_function_returning_text_for_a_number_is_invalid(balances: ViewInput) -> None:
    def text(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ratio": ["x"] * len(frame), "scaled": [1.0] * len(frame)})

    with pytest.raises(Invalid, match=r"'ratios': output 'ratio' is not number"):
        join(REQUEST_FRAME, balances, on_demand=[(python_view("vectorized", text), text)])


def test_a_broken_sql_expression_is_invalid(balances: ViewInput) -> None:
    broken = OnDemandFeatureView(
        name="ratios", sources=["balances"], outputs={"ratio": "number"}, sql={"ratio": "a / nope"}
    )

    with pytest.raises(Invalid, match="point-in-time join failed"):
        join(REQUEST_FRAME, balances, on_demand=[(broken, None)])


def _online_inputs(offline: dict[str, list[Any]]) -> pd.DataFrame:
    """What online retrieval hands an on-demand view: the stored features and request fields as
    plain values, typed by their declared types."""
    frame = pd.DataFrame({name: offline[name] for name in ("a", "b", "amount")})
    return typed_inputs(frame, {"a": "number", "b": "number", "amount": "number"})


def test_sql_on_demand_features_online_equal_offline(balances: ViewInput) -> None:
    odfv = sql_view()
    offline = join(REQUEST_FRAME, balances, on_demand=[(odfv, None)])

    online = apply_sql_online(odfv, _online_inputs(offline))

    assert _plain(online["ratio"]) == offline["ratio"] == EXPECTED_RATIO
    assert _plain(online["scaled"]) == offline["scaled"] == EXPECTED_SCALED


@pytest.mark.parametrize(
    ("mode", "function"), [("row", ratios_by_row), ("vectorized", ratios_by_frame)]
)
def test_python_on_demand_features_online_equal_offline(
    balances: ViewInput, mode: str, function: Callable[..., Any]
) -> None:
    odfv = python_view(mode, function)
    offline = join(REQUEST_FRAME, balances, on_demand=[(odfv, function)])

    online = apply_python(odfv, function, _online_inputs(offline))

    assert _plain(online["ratio"]) == _plain(offline["ratio"]) == EXPECTED_RATIO
    assert _plain(online["scaled"]) == _plain(offline["scaled"]) == EXPECTED_SCALED


def test_online_inputs_from_plain_values_give_the_offline_values(balances: ViewInput) -> None:
    # online, values arrive as JSON scalars: integers, None, no NaN
    frame = typed_inputs(
        pd.DataFrame({"a": [6, 5, 4, None], "b": [3, 0, None, None], "amount": [2, 10, 1, 3]}),
        {"a": "number", "b": "number", "amount": "number"},
    )
    offline = join(REQUEST_FRAME, balances, on_demand=[(sql_view(), None)])

    sql_online = apply_sql_online(sql_view(), frame)
    python_online = apply_python(python_view("row", ratios_by_row), ratios_by_row, frame)

    assert _plain(sql_online["ratio"]) == _plain(python_online["ratio"]) == offline["ratio"]
    assert _plain(sql_online["scaled"]) == _plain(python_online["scaled"]) == offline["scaled"]
