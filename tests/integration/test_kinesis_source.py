"""The Kinesis source against a local Kinesis-compatible server (kinesalite, from
services/kinesis-up.sh): decoding, positions, poisoned records, checkpoints, follow, backoff,
and ingestion end to end."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from decisionloop.backends.metadata.sql import SqlMetadataStore
from decisionloop.data.batches import ERROR, PAYLOAD, POSITION, RawBatch, Source
from decisionloop.data.kinesis import KinesisSource, parse_kinesis_url
from decisionloop.data.sources import open_source
from decisionloop.data.streams import MAX_PAYLOAD_BYTES
from decisionloop.errors import Invalid, NotFound, Unavailable
from tests.conftest import start_service

#: explicit hash keys that land on the first and the second of two shards
HASH_KEYS = ("0", str(2**127 + 1))
SHARDS = ("shardId-000000000000", "shardId-000000000001")


@pytest.fixture(scope="session")
def kinesis_endpoint() -> str:
    """The local server's URL; skipped outside CI, a failure in CI, when it cannot start."""
    return start_service(
        "kinesis-up.sh",
        needs="boto3",
        extra="kinesis",
        looks_right=lambda a: a.startswith("http://"),
    )


@pytest.fixture(scope="session")
def kinesis(kinesis_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "kinesis",
        endpoint_url=kinesis_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def make_stream(kinesis: Any) -> Iterator[Callable[[int], str]]:
    """Creates streams (waiting until they are active) and deletes them afterwards."""
    made: list[str] = []

    def factory(shards: int = 2) -> str:
        name = f"stream-{uuid.uuid4().hex[:12]}"
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        made.append(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            summary = kinesis.describe_stream_summary(StreamName=name)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return name
            time.sleep(0.02)
        raise AssertionError(f"stream {name} did not become active")

    yield factory
    for name in made:
        kinesis.delete_stream(StreamName=name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    sql_store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    sql_store.migrate()
    yield sql_store
    sql_store.close()


@pytest.fixture
def open_kinesis(
    kinesis_endpoint: str, store: SqlMetadataStore
) -> Iterator[Callable[..., KinesisSource]]:
    """New sources over one metadata store (so a new source resumes at the checkpoints)."""
    opened: list[KinesisSource] = []

    def factory(url: str, **options: Any) -> KinesisSource:
        options.setdefault("max_wait_s", 0.3)
        source = KinesisSource(
            url, checkpoints=store.ingestion, endpoint_url=kinesis_endpoint, **options
        )
        opened.append(source)
        return source

    yield factory
    for source in opened:
        source.close()


def _put(kinesis: Any, stream: str, shard: int, *values: bytes) -> list[str]:
    """Put records on one shard, in order; returns their sequence numbers."""
    answer = kinesis.put_records(
        StreamName=stream,
        Records=[
            {"Data": value, "PartitionKey": "k", "ExplicitHashKey": HASH_KEYS[shard]}
            for value in values
        ],
    )
    assert answer["FailedRecordCount"] == 0
    assert {record["ShardId"] for record in answer["Records"]} == {SHARDS[shard]}
    return [record["SequenceNumber"] for record in answer["Records"]]


def _json(*rows: object) -> list[bytes]:
    return [json.dumps(row).encode() for row in rows]


def _table(batches: list[RawBatch]) -> pa.Table:
    tables = [batch.table for batch in batches if batch.table is not None]
    assert len(tables) == len(batches)
    return pa.concat_tables(tables, promote_options="permissive")


def _positions(batches: list[RawBatch]) -> list[str]:
    return _table(batches).column(POSITION).to_pylist() if batches else []


# -- reading ----------------------------------------------------------------------------


def test_json_round_trip_with_positions_across_two_shards(
    kinesis: Any, make_stream: Callable[[int], str], open_kinesis: Callable[..., KinesisSource]
) -> None:
    stream = make_stream(2)
    first = _put(
        kinesis,
        stream,
        0,
        *_json(
            {"id": 1, "name": "ann", "score": 1, "vip": True, "nested": {"a": [1]}},
            {"id": 2, "name": "bob", "score": 2.5, "vip": False, "nested": None},
        ),
    )
    second = _put(kinesis, stream, 1, *_json({"id": 3, "name": None, "score": 7, "late": "x"}))
    source = open_kinesis(f"kinesis://{stream}?format=json")
    assert isinstance(source, Source)

    batches = list(source.read())

    assert len(batches) == 1
    batch = batches[0]
    assert batch.origin == (
        f"{stream}:{SHARDS[0]}@{first[0]}-{first[1]},{SHARDS[1]}@{second[0]}-{second[0]}"
    )
    table = _table(batches).sort_by("id")
    assert table.column_names[-3:] == [POSITION, ERROR, PAYLOAD]
    assert set(table.column_names[:-3]) == {"id", "name", "score", "vip", "nested", "late"}
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("vip").type == pa.bool_()
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("name").to_pylist() == ["ann", "bob", None]
    assert table.column("score").to_pylist() == [1.0, 2.5, 7.0]
    assert table.column("vip").to_pylist() == [True, False, None]
    assert table.column("nested").to_pylist() == ['{"a": [1]}', None, None]
    assert table.column("late").to_pylist() == [None, None, "x"]
    assert table.column(POSITION).to_pylist() == [
        f"{stream}/{SHARDS[0]}@{first[0]}",
        f"{stream}/{SHARDS[0]}@{first[1]}",
        f"{stream}/{SHARDS[1]}@{second[0]}",
    ]
    assert table.column(ERROR).to_pylist() == [None] * 3
    assert table.column(PAYLOAD).to_pylist() == [None] * 3


def test_batches_are_bounded_by_max_batch_rows(
    kinesis: Any, make_stream: Callable[[int], str], open_kinesis: Callable[..., KinesisSource]
) -> None:
    stream = make_stream(2)
    sequences = _put(kinesis, stream, 0, *_json(*({"n": n} for n in range(5))))
    sequences += _put(kinesis, stream, 1, *_json(*({"n": n} for n in range(5, 7))))

    batches = list(open_kinesis(f"kinesis://{stream}").read(max_batch_rows=3))

    assert [batch.table.num_rows for batch in batches if batch.table is not None] == [3, 3, 1]
    assert sorted(_table(batches).column("n").to_pylist()) == list(range(7))
    assert len(set(_positions(batches))) == 7


def test_poisoned_records_become_error_rows(
    kinesis: Any, make_stream: Callable[[int], str], open_kinesis: Callable[..., KinesisSource]
) -> None:
    stream = make_stream(1)
    huge = b"{" + b"x" * (MAX_PAYLOAD_BYTES + 10)
    values = [
        b'{"id": 1}',
        b"not json",
        b"[1, 2]",
        b"\xff\xfe{}",
        b'{"_position": "forged"}',
        huge,
        b'{"id": 2}',
    ]
    sequences = _put(kinesis, stream, 0, *values)

    batches = list(open_kinesis(f"kinesis://{stream}").read())

    table = _table(batches)
    assert table.num_rows == len(values)
    assert table.column(POSITION).to_pylist() == [f"{stream}/{SHARDS[0]}@{s}" for s in sequences]
    errors = table.column(ERROR).to_pylist()
    assert [error is None for error in errors] == [True, False, False, False, False, False, True]
    assert table.column("id").to_pylist() == [1, None, None, None, None, None, 2]
    payloads = table.column(PAYLOAD).to_pylist()
    assert payloads[1] == "not json"
    assert payloads[2] == "[1, 2]"
    assert payloads[4] == '{"_position": "forged"}'
    assert payloads[0] is None
    assert payloads[6] is None
    assert len(payloads[5].encode()) <= MAX_PAYLOAD_BYTES


# -- checkpoints ------------------------------------------------------------------------


def test_acknowledge_then_a_new_source_resumes_after_it(
    kinesis: Any,
    make_stream: Callable[[int], str],
    open_kinesis: Callable[..., KinesisSource],
    store: SqlMetadataStore,
) -> None:
    stream = make_stream(2)
    url = f"kinesis://{stream}?group=ingest"
    first = _put(kinesis, stream, 0, *_json({"n": 1}, {"n": 2}))
    second = _put(kinesis, stream, 1, *_json({"n": 3}))
    source = open_kinesis(url)
    batches = list(source.read())
    assert len(batches) == 1
    assert store.ingestion.get_checkpoints(source.checkpoint_source) == {}

    batches[0].acknowledge()

    assert source.checkpoint_source == f"kinesis://{stream}?group=ingest"
    assert store.ingestion.get_checkpoints(source.checkpoint_source) == {
        SHARDS[0]: first[-1],
        SHARDS[1]: second[-1],
    }
    audit = store.audit.list(resource=f"source:{source.checkpoint_source}")
    assert [event.action for event in audit] == ["checkpoint.set"]
    source.close()

    later = _put(kinesis, stream, 1, *_json({"n": 4}))
    again = open_kinesis(url)
    resumed = list(again.read())
    assert _positions(resumed) == [f"{stream}/{SHARDS[1]}@{later[0]}"]
    resumed[0].acknowledge()
    assert store.ingestion.get_checkpoints(source.checkpoint_source)[SHARDS[1]] == later[0]
    assert list(open_kinesis(url).read()) == []
    # another group reads the stream from the start
    assert len(_positions(list(open_kinesis(f"kinesis://{stream}?group=other").read()))) == 4


def test_an_unacknowledged_batch_is_read_again(
    kinesis: Any,
    make_stream: Callable[[int], str],
    open_kinesis: Callable[..., KinesisSource],
    store: SqlMetadataStore,
) -> None:
    stream = make_stream(1)
    url = f"kinesis://{stream}"
    _put(kinesis, stream, 0, *_json(*({"n": n} for n in range(6))))
    crashed = open_kinesis(url)
    reader = crashed.read(max_batch_rows=2)
    done = next(reader)
    done.acknowledge()
    lost = next(reader)  # read, never acknowledged: the process "dies" here
    crashed.close()

    replay = list(open_kinesis(url).read(max_batch_rows=2))

    assert _positions(replay)[:2] == _positions([lost])
    assert _table(replay).column("n").to_pylist() == [2, 3, 4, 5]
    # acknowledging an older batch after a newer one never moves the checkpoint back
    replay[-1].acknowledge()
    replay[0].acknowledge()
    checkpoints = store.ingestion.get_checkpoints(f"kinesis://{stream}?group=decisionloop-ingest")
    assert checkpoints[SHARDS[0]] == _positions(replay)[-1].rsplit("@", 1)[1]


def test_follow_reads_new_records_until_stop(
    kinesis: Any, make_stream: Callable[[int], str], open_kinesis: Callable[..., KinesisSource]
) -> None:
    stream = make_stream(2)
    source = open_kinesis(f"kinesis://{stream}", max_wait_s=0.1)
    seen: list[int] = []
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            for batch in source.read(follow=True):
                assert batch.table is not None
                seen.extend(batch.table.column("n").to_pylist())
                batch.acknowledge()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    _put(kinesis, stream, 0, *_json({"n": 1}, {"n": 2}))
    _wait_for(lambda: len(seen) == 2)
    time.sleep(0.5)  # idle for several polls: a follower keeps going
    assert thread.is_alive()
    _put(kinesis, stream, 1, *_json({"n": 3}))
    _put(kinesis, stream, 0, *_json({"n": 4}))
    _wait_for(lambda: len(seen) == 4)

    started = time.monotonic()
    source.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert failures == []
    assert sorted(seen) == [1, 2, 3, 4]


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_after_resharding_children_are_read_after_their_parent(
    kinesis: Any,
    make_stream: Callable[[int], str],
    open_kinesis: Callable[..., KinesisSource],
    store: SqlMetadataStore,
) -> None:
    stream = make_stream(1)
    for n in range(3):
        kinesis.put_record(StreamName=stream, Data=json.dumps({"n": n}).encode(), PartitionKey="k")
    kinesis.split_shard(StreamName=stream, ShardToSplit=SHARDS[0], NewStartingHashKey=str(2**127))
    _wait_for(
        lambda: (
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE"
        )
    )
    for n in range(3, 7):
        kinesis.put_record(
            StreamName=stream,
            Data=json.dumps({"n": n}).encode(),
            PartitionKey="k",
            ExplicitHashKey=HASH_KEYS[n % 2],
        )
    url = f"kinesis://{stream}"

    batches = list(open_kinesis(url).read())

    table = _table(batches)
    assert table.column("n").to_pylist()[:3] == [0, 1, 2]  # the parent shard first
    assert sorted(table.column("n").to_pylist()) == list(range(7))
    shards = {position.split("/")[1].split("@")[0] for position in _positions(batches)}
    assert shards == {SHARDS[0], SHARDS[1], "shardId-000000000002"}
    for batch in batches:
        batch.acknowledge()
    assert len(store.ingestion.get_checkpoints(f"{url}?group=decisionloop-ingest")) == 3
    assert list(open_kinesis(url).read()) == []  # the closed parent is not read again


# -- errors -----------------------------------------------------------------------------


class _Throttling:
    """A client whose first ``get_records`` calls are refused as over the shard's throughput
    (kinesalite enforces no limits)."""

    def __init__(self, client: Any, refusals: int) -> None:
        self.client = client
        self.refusals = refusals
        self.refused_at: list[float] = []

    def get_records(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        if len(self.refused_at) < self.refusals:
            self.refused_at.append(time.monotonic())
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "Rate exceeded for shard",
                    }
                },
                "GetRecords",
            )
        return self.client.get_records(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_throttled_shard_backs_off_and_is_read(
    kinesis: Any, make_stream: Callable[[int], str], open_kinesis: Callable[..., KinesisSource]
) -> None:
    stream = make_stream(1)
    _put(kinesis, stream, 0, *_json({"n": 1}, {"n": 2}))
    source = open_kinesis(f"kinesis://{stream}", max_wait_s=1.0)
    throttling = _Throttling(source.client, refusals=3)
    source._client = throttling  # type: ignore[assignment]  # a wrapper that refuses reads

    batches = list(source.read())

    assert _table(batches).column("n").to_pylist() == [1, 2]
    gaps = [b - a for a, b in zip(throttling.refused_at, throttling.refused_at[1:], strict=False)]
    assert len(throttling.refused_at) == 3
    # 100 ms then 200 ms (each with up to half taken off as jitter)
    assert gaps[0] >= 0.05
    assert gaps[1] >= 0.1


def test_unknown_stream_is_not_found(open_kinesis: Callable[..., KinesisSource]) -> None:
    source = open_kinesis(f"kinesis://missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(NotFound, match="not found"):
        list(source.read())


def test_unreachable_endpoint_is_unavailable(store: SqlMetadataStore) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = KinesisSource(
        "kinesis://orders",
        checkpoints=store.ingestion,
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    try:
        with pytest.raises(Unavailable) as caught:
            list(source.read())
    finally:
        source.close()
    assert "not reachable" in caught.value.message
    assert "kinesis-up.sh" in caught.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "kinesis://",
        "kinesis://orders/extra",
        "kinesis://bad name",
        "kinesis://orders?format=avro",
        "kinesis://orders?topic=x",
        "kinesis://orders?group=a&group=b",
        "kafka://orders",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid):
        parse_kinesis_url(url)


def test_url_defaults() -> None:
    parsed = parse_kinesis_url("kinesis://orders.v2_x-1")
    assert parsed == ("orders.v2_x-1", "decisionloop-ingest", "json")
    assert parse_kinesis_url("kinesis://o?group=g&format=json").group == "g"


def test_the_registry_refuses_a_query_or_a_bad_url_before_opening_the_store(
    tmp_path: Path,
) -> None:
    from decisionloop.config import load_settings

    settings = load_settings(tmp_path)
    with pytest.raises(Invalid, match="a query applies to database sources"):
        open_source("kinesis://orders", settings, query="SELECT 1")
    with pytest.raises(Invalid, match="unknown Kinesis URL option"):
        open_source("kinesis://orders?partition=1", settings)
    assert not (tmp_path / ".decisionloop").exists()


# -- ingestion end to end ------------------------------------------------------------------


def test_platform_ingests_a_stream_with_a_contract(
    kinesis: Any,
    kinesis_endpoint: str,
    make_stream: Callable[[int], str],
    make_project: Callable[..., Path],
) -> None:
    from decisionloop.platform import Platform

    stream = make_stream(2)
    rows = [{"id": n, "amount": n * 1.5, "kind": "ab"[n % 2]} for n in range(1, 9)]
    rows[2]["amount"] = -1.0  # below min: quarantined
    rows[5]["kind"] = "z"  # not allowed: quarantined
    _put(kinesis, stream, 0, *_json(*rows[:4]), b"{broken")
    _put(kinesis, stream, 1, *_json(*rows[4:]))
    folder = make_project(
        {
            "name": "events",
            "data": {
                "source": f"kinesis://{stream}",
                "target": "kind",
                "columns": {
                    "id": {"type": "integer", "nullable": False},
                    "amount": {"type": "number", "min": 0},
                    "kind": {"type": "string", "allowed": ["a", "b"]},
                },
                "contract": {"key": ["id"], "max_error_rate": 0.5},
            },
            "kinesis": {"endpoint_url": kinesis_endpoint},
        }
    )
    platform = Platform.open(folder)
    try:
        source = open_source(f"kinesis://{stream}", platform.settings)
        assert isinstance(source, KinesisSource)
        source.close()

        results = platform.data.ingest(f"kinesis://{stream}")

        assert len(results) == 1
        report = results[0].report
        assert report.rows_in == 9
        assert report.rows_in == report.rows_stored + report.rows_quarantined + report.rows_skipped
        assert (report.rows_stored, report.rows_quarantined, report.rows_skipped) == (6, 3, 0)
        assert results[0].batch.origin.startswith(f"{stream}:{SHARDS[0]}@")
        stored = platform.data.read_snapshot()
        assert sorted(stored.column("id").to_pylist()) == [1, 2, 4, 5, 7, 8]
        quarantined = platform.metadata.ingestion.list_quarantine("events")
        assert len(quarantined) == 3
        assert all(q.position.startswith(f"{stream}/shardId-") for q in quarantined)
        assert any(q.payload == "{broken" for q in quarantined)
        checkpoints = platform.metadata.ingestion.get_checkpoints(
            f"kinesis://{stream}?group=decisionloop-ingest"
        )
        assert set(checkpoints) == set(SHARDS)

        # acknowledged: a second ingestion reads nothing new, then only what arrived since
        assert platform.data.ingest(f"kinesis://{stream}") == []
        _put(kinesis, stream, 1, *_json({"id": 9, "amount": 2.0, "kind": "a"}))
        again = platform.data.ingest(f"kinesis://{stream}")
        assert [(r.report.rows_in, r.report.rows_stored) for r in again] == [(1, 1)]
        assert sorted(platform.data.read_snapshot().column("id").to_pylist()) == [
            1,
            2,
            4,
            5,
            7,
            8,
            9,
        ]
    finally:
        platform.close()
