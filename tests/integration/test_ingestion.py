"""Ingestion through Platform.data: snapshots, time travel, the quarantine and its replay,
de-duplication, consent, learned outlier bounds, the 0001 -> 0002 migration, and the same
round trip on PostgreSQL and S3."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from decisionloop.data.engine import SKIP_CONSENT, SKIP_DUPLICATE
from decisionloop.errors import IntegrityError, NotFound
from decisionloop.platform import Platform
from decisionloop.project import init_project
from tests.datasets import loan_defaults, write

MakeProject = Callable[..., Path]


# --- helpers ---------------------------------------------------------------------------------


def settled(path: Path, text: str) -> Path:
    """Write a data file whose mtime lies in the past, so a folder source reads it at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))
    return path


def csv_rows(rows: list[tuple[Any, ...]], header: str = "id,amount,kind") -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


ORDERS_COLUMNS: dict[str, Any] = {
    "id": {"type": "integer", "nullable": False},
    "amount": {"type": "number"},
    "kind": {"type": "string", "allowed": ["retail", "online"]},
}


def orders_project(
    make_project: MakeProject,
    source: Path,
    *,
    contract: dict[str, Any] | None = None,
    columns: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    s3: dict[str, Any] | None = None,
) -> Path:
    document: dict[str, Any] = {
        "name": "orders",
        "data": {
            "source": str(source),
            "target": "kind",
            "columns": columns or ORDERS_COLUMNS,
            "contract": contract or {},
        },
    }
    if storage:
        document["storage"] = storage
    if s3:
        document["s3"] = s3
    return make_project(document)


def edit_project(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "decisionloop.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def rows_of(platform: Platform, snapshot_id: str | None = None) -> list[dict[str, Any]]:
    table = platform.data.read_snapshot(snapshot_id)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def balanced(platform: Platform) -> None:
    """Every recorded batch accounts for its rows."""
    for batch in platform.metadata.ingestion.list_batches(platform.settings.name, limit=1000):
        assert batch.rows_in == batch.rows_stored + batch.rows_quarantined + batch.rows_skipped
        assert batch.report["balanced"] is True


@pytest.fixture
def platforms() -> Iterator[list[Platform]]:
    """Platforms opened by a test, closed at its end."""
    opened: list[Platform] = []
    yield opened
    for platform in opened:
        platform.close()


def open_platform(folder: Path, opened: list[Platform]) -> Platform:
    platform = Platform.open(folder)
    opened.append(platform)
    return platform


# --- files: replace, skip unchanged, new snapshot on change ------------------------------------


def test_ingesting_an_initialized_project_then_an_unchanged_and_a_changed_file(
    tmp_path: Path, platforms: list[Platform]
) -> None:
    data = write(loan_defaults(rows=200, seed=5), tmp_path / "input" / "loans.csv")
    folder = tmp_path / "loans"
    init_project(folder, data=data, target="status", entity="loan_ref")
    platform = open_platform(folder, platforms)

    (first,) = platform.data.ingest()
    again = platform.data.ingest()
    batches_after_again = platform.metadata.ingestion.list_batches("loans")

    assert first.report.verdict == "pass"
    assert (first.report.rows_in, first.report.rows_stored) == (200, 200)
    assert first.snapshot is not None
    assert first.snapshot.row_count == 200
    assert first.snapshot.parent_id is None
    assert first.batch.origin.endswith("loans.csv#sha256=" + first.batch.origin.split("=")[-1])
    assert again == []
    assert [b.id for b in batches_after_again] == [first.batch.id]
    stored = rows_of(platform)
    assert [r["loan_ref"] for r in stored] == [f"L-{i:06d}" for i in range(200)]
    assert {type(r["age"]) for r in stored} == {int}
    assert {type(r["has_guarantor"]) for r in stored} == {bool}

    write(loan_defaults(rows=120, seed=6), data)
    (changed,) = platform.data.ingest()

    assert changed.snapshot is not None
    assert changed.snapshot.id != first.snapshot.id
    assert changed.snapshot.content_hash != first.snapshot.content_hash
    assert changed.snapshot.row_count == 120
    # a file replaces the data set: the new snapshot holds only the new file
    assert len(changed.snapshot.batches) == 1
    assert len(rows_of(platform)) == 120
    assert [s.id for s in platform.data.snapshots()] == [changed.snapshot.id, first.snapshot.id]
    balanced(platform)


def test_snapshot_rows_carry_only_the_data_columns(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    source = settled(tmp_path / "orders.csv", csv_rows([(1, 2.5, "retail")]))
    platform = open_platform(orders_project(make_project, source), platforms)
    platform.data.ingest()

    # the offline store's ingest_date=... folders are not a column of the data
    assert rows_of(platform) == [{"id": 1, "amount": 2.5, "kind": "retail"}]


# --- folders: append, growing snapshots, time travel, tampering -------------------------------


def test_folder_appends_one_batch_per_file_and_old_snapshots_read_back_exactly(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    inbox = tmp_path / "inbox"
    settled(inbox / "001.csv", csv_rows([(1, 10.0, "retail"), (2, 20.0, "online")]))
    platform = open_platform(orders_project(make_project, inbox), platforms)

    (first,) = platform.data.ingest()
    settled(inbox / "002.csv", csv_rows([(3, 30.0, "online")]))
    settled(inbox / "003.csv", csv_rows([(4, 40.0, "retail"), (5, 50.0, "retail")]))
    second, third = platform.data.ingest()
    nothing_new = platform.data.ingest()

    assert nothing_new == []
    assert first.snapshot is not None
    assert second.snapshot is not None
    assert third.snapshot is not None
    assert [len(s.batches) for s in (first.snapshot, second.snapshot, third.snapshot)] == [1, 2, 3]
    assert [s.row_count for s in (first.snapshot, second.snapshot, third.snapshot)] == [2, 3, 5]
    assert second.snapshot.parent_id == first.snapshot.id
    assert third.snapshot.parent_id == second.snapshot.id
    assert third.snapshot.batches[:2] == second.snapshot.batches
    assert [b["origin"] for b in third.snapshot.batches] == [
        first.batch.origin,
        second.batch.origin,
        third.batch.origin,
    ]
    assert [r["id"] for r in rows_of(platform)] == [1, 2, 3, 4, 5]
    # time travel: the first snapshot still reads exactly its own rows
    assert rows_of(platform, first.snapshot.id) == [
        {"id": 1, "amount": 10.0, "kind": "retail"},
        {"id": 2, "amount": 20.0, "kind": "online"},
    ]
    assert [r["id"] for r in rows_of(platform, second.snapshot.id)] == [1, 2, 3]
    listed = platform.data.snapshots()
    assert [s.id for s in listed] == [third.snapshot.id, second.snapshot.id, first.snapshot.id]

    # ingestion hashed each file on its way into the store and remembered it for readers in
    # other processes (git-index style: path, inode, size, mtime -> sha256)
    import json

    remembered = [
        json.loads(line)
        for line in (platform.settings.state_dir / "cache" / "verified.jsonl")
        .read_text()
        .splitlines()
    ]
    assert {entry["sha256"] for entry in remembered} >= {
        b["sha256"] for b in third.snapshot.batches
    }
    # tampering with a stored batch file is detected on read (its size and mtime changed)
    stored = platform.settings.state_dir / "artifacts" / second.snapshot.batches[1]["key"]
    stored.write_bytes(stored.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        platform.data.read_snapshot(third.snapshot.id)
    # snapshots that do not read the tampered file are unaffected
    assert len(rows_of(platform, first.snapshot.id)) == 2
    balanced(platform)


def test_a_stop_ends_only_the_ingestion_it_was_asked_of(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    inbox = tmp_path / "inbox"
    settled(inbox / "001.csv", csv_rows([(1, 10.0, "retail")]))
    settled(inbox / "002.csv", csv_rows([(2, 20.0, "online")]))
    platform = open_platform(orders_project(make_project, inbox), platforms)

    platform.data.stop()  # e.g. Ctrl-C of an earlier --follow run
    done = platform.data.ingest()

    assert len(done) == 2
    assert [r["id"] for r in rows_of(platform)] == [1, 2]


def test_read_snapshot_errors(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    source = settled(tmp_path / "orders.csv", csv_rows([(1, 2.5, "retail")]))
    platform = open_platform(orders_project(make_project, source), platforms)

    with pytest.raises(NotFound, match="has no snapshot yet"):
        platform.data.read_snapshot()
    with pytest.raises(NotFound):
        platform.data.read_snapshot("0" * 32)


def test_replacing_with_content_of_an_older_snapshot_makes_it_current(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    a = settled(tmp_path / "a.csv", csv_rows([(1, 1.0, "retail")]))
    b = settled(tmp_path / "b.csv", csv_rows([(2, 2.0, "online")]))
    platform = open_platform(orders_project(make_project, a), platforms)
    platform.data.ingest()
    platform.data.ingest(str(b))
    copy = settled(tmp_path / "copy-of-a.csv", a.read_text())
    platform.data.ingest(str(copy))

    assert [r["id"] for r in rows_of(platform)] == [1]


# --- quarantine: list, show, replay, discard --------------------------------------------------


def test_rows_failing_the_contract_are_quarantined_and_replayed_after_loosening_it(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    source = settled(
        tmp_path / "orders.csv",
        csv_rows([(i, float(i), "retail") for i in range(1, 19)] + [(19, 1.0, "phone")]),
    )
    folder = orders_project(make_project, source)
    platform = open_platform(folder, platforms)
    (result,) = platform.data.ingest()
    ingestion = platform.metadata.ingestion

    assert result.report.verdict == "warn"
    assert (result.report.rows_stored, result.report.rows_quarantined) == (18, 1)
    (entry,) = ingestion.list_quarantine("orders")
    assert entry.kind == "row"
    assert entry.position == "orders.csv:line 20"
    assert entry.reasons == ["kind: allowed"]
    assert json.loads(entry.payload) == {"id": 19, "amount": 1.0, "kind": "phone"}
    assert entry.status == "open"
    assert entry.batch_id == result.batch.id
    assert ingestion.get_quarantined(entry.id) == entry
    assert ingestion.count_quarantine("orders") == 1

    # still bad under the same contract: quarantined anew, the old entry marked replayed
    (still_bad,) = platform.data.replay([entry.id])
    assert still_bad.report.verdict == "fail"
    assert still_bad.report.rows_quarantined == 1
    (anew,) = ingestion.list_quarantine("orders")
    assert anew.id != entry.id
    assert anew.reasons == ["kind: allowed"]
    assert json.loads(anew.payload) == {"id": "19", "amount": "1.0", "kind": "phone"}
    replayed = ingestion.get_quarantined(entry.id)
    assert replayed.status == "replayed"
    assert replayed.resolution == f"batch {still_bad.batch.id}"
    assert replayed.resolved_at is not None

    # loosen the contract: the row passes and joins the data set
    edit_project(
        folder,
        lambda d: d["data"]["columns"]["kind"]["allowed"].append("phone"),
    )
    platform = open_platform(folder, platforms)
    (stored,) = platform.data.replay()
    assert stored.report.verdict == "pass"
    assert stored.report.rows_stored == 1
    assert stored.snapshot is not None
    assert stored.snapshot.row_count == 19
    assert rows_of(platform)[-1] == {"id": 19, "amount": 1.0, "kind": "phone"}
    assert ingestion.list_quarantine("orders") == []
    assert platform.metadata.ingestion.get_quarantined(anew.id).status == "replayed"
    assert [
        e.status for e in platform.metadata.ingestion.list_quarantine("orders", status=None)
    ] == [
        "replayed",
        "replayed",
    ]
    with pytest.raises(NotFound, match="nothing to replay"):
        platform.data.replay()
    balanced(platform)


def test_a_csv_line_that_did_not_parse_is_replayed_after_fixing_the_contract(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    rows = [(i, float(i), "retail") for i in range(1, 20)] + [(20, "n/a", "retail")]
    source = settled(tmp_path / "orders.csv", csv_rows(rows))
    folder = orders_project(make_project, source)
    platform = open_platform(folder, platforms)
    (result,) = platform.data.ingest()
    assert result.report.rows_quarantined == 1
    (entry,) = platform.metadata.ingestion.list_quarantine("orders")
    assert entry.position == "orders.csv:line 21"
    assert entry.reasons[0].startswith("amount: type (")
    assert json.loads(entry.payload)["_line"] == "20,n/a,retail"

    # the amount may be text after all: the line's fields pass and join the data set
    edit_project(folder, lambda d: d["data"]["columns"]["amount"].update(type="string"))
    platform = open_platform(folder, platforms)
    (replayed,) = platform.data.replay()
    assert (replayed.report.verdict, replayed.report.rows_stored) == ("pass", 1)
    assert rows_of(platform)[-1] == {"id": 20, "amount": "n/a", "kind": "retail"}
    assert platform.metadata.ingestion.list_quarantine("orders") == []
    balanced(platform)


def test_a_rejected_file_is_quarantined_whole_and_stored_after_fixing_the_contract(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    text = csv_rows([(1, 1.0, "retail"), (2, 2.0, "phone"), (3, 3.0, "phone")])
    source = settled(tmp_path / "orders.csv", text)
    folder = orders_project(make_project, source)
    platform = open_platform(folder, platforms)

    (rejected,) = platform.data.ingest()
    ingestion = platform.metadata.ingestion

    assert rejected.report.verdict == "fail"
    assert rejected.snapshot is None
    assert rejected.batch.artifact_key is None
    assert platform.data.snapshots() == []
    (entry,) = ingestion.list_quarantine("orders")
    assert entry.kind == "batch"
    assert entry.position == rejected.batch.origin
    assert entry.reasons == [
        "kind: allowed: 2 rows",
        "66.7% of rows failed, above max_error_rate 10%",
    ]
    payload = json.loads(entry.payload)
    assert payload["origin"] == rejected.batch.origin
    assert payload["format"] == "csv"
    # the file itself is kept for the replay, by content
    assert platform.artifacts.get(payload["artifact"], sha256=payload["sha256"]) == text.encode()
    # the same, unchanged file is not ingested again
    assert platform.data.ingest() == []

    edit_project(folder, lambda d: d["data"]["columns"]["kind"].pop("allowed"))
    platform = open_platform(folder, platforms)
    (replayed,) = platform.data.replay([entry.id])

    assert replayed.report.verdict == "pass"
    assert replayed.batch.origin == f"replay of {rejected.batch.origin}"
    assert replayed.snapshot is not None
    assert [r["kind"] for r in rows_of(platform)] == ["retail", "phone", "phone"]
    assert platform.metadata.ingestion.get_quarantined(entry.id).status == "replayed"
    balanced(platform)


def test_discard_marks_entries_and_writes_an_audit_event(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    rows = [(i, 1.0, "retail") for i in range(1, 30)] + [(30, 1.0, "x"), (31, 1.0, "y")]
    source = settled(tmp_path / "orders.csv", csv_rows(rows))
    platform = open_platform(orders_project(make_project, source), platforms)
    platform.data.ingest()
    ingestion = platform.metadata.ingestion
    first, second = ingestion.list_quarantine("orders")

    changed = platform.data.discard([first.id], "test rows from a load test")
    again = platform.data.discard([first.id], "twice")

    assert (changed, again) == (1, 0)
    discarded = ingestion.get_quarantined(first.id)
    assert discarded.status == "discarded"
    assert discarded.resolution == "test rows from a load test"
    assert [e.id for e in ingestion.list_quarantine("orders")] == [second.id]
    assert [e.id for e in ingestion.list_quarantine("orders", status="discarded")] == [first.id]
    events = [
        e for e in platform.metadata.audit.list(resource="quarantine") if e.details["changed"]
    ]
    (event,) = events
    assert event.action == "quarantine.discarded"
    assert event.actor == platform.actor
    assert event.details == {
        "ids": [first.id],
        "changed": 1,
        "resolution": "test rows from a load test",
    }
    # a discarded entry is not replayed
    (replayed,) = platform.data.replay()
    assert replayed.report.rows_in == 1
    assert ingestion.get_quarantined(first.id).status == "discarded"


# --- de-duplication, consent, learned outlier bounds -------------------------------------------


def test_key_de_duplicates_records_across_appended_batches(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    inbox = tmp_path / "inbox"
    rows = [(1, 1.0, "retail"), (2, 2.0, "online")]
    settled(inbox / "a.csv", csv_rows(rows))
    folder = orders_project(make_project, inbox, contract={"key": ["id"]})
    platform = open_platform(folder, platforms)
    (first,) = platform.data.ingest()

    # the same records again (a replay after a crash), plus one new record
    settled(inbox / "b.csv", csv_rows([*rows, (3, 3.0, "retail")]))
    (second,) = platform.data.ingest()
    settled(inbox / "c.csv", csv_rows(rows))
    (third,) = platform.data.ingest()

    assert (first.report.rows_stored, first.report.rows_skipped) == (2, 0)
    assert second.report.verdict == "pass"
    assert (second.report.rows_in, second.report.rows_stored) == (3, 1)
    assert second.report.skipped == {SKIP_DUPLICATE: 2}
    assert (third.report.rows_stored, third.report.rows_skipped) == (0, 2)
    assert third.snapshot is None
    assert third.batch.artifact_key is None
    assert [r["id"] for r in rows_of(platform)] == [1, 2, 3]
    assert second.snapshot is not None
    assert platform.data.snapshots()[0].id == second.snapshot.id
    assert platform.metadata.ingestion.list_quarantine("orders") == []
    balanced(platform)


def test_consent_table_keeps_only_entities_whose_latest_record_grants(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    source = settled(
        tmp_path / "orders.csv",
        csv_rows([(1, 1.0, "retail"), (2, 2.0, "retail"), (3, 3.0, "online"), (4, 4.0, "online")]),
    )
    folder = orders_project(
        make_project,
        source,
        contract={"key": ["id"], "consent": {"table": "consent.csv", "purpose": "training"}},
    )
    (folder / "consent.csv").write_text(
        "entity,purpose,granted,at\n"
        "1,training,true,2024-01-01T00:00:00Z\n"
        "2,training,true,2024-01-01T00:00:00Z\n"
        "2,training,false,2024-06-01T00:00:00Z\n"  # withdrawn later
        "3,marketing,true,2024-01-01T00:00:00Z\n"  # another purpose
        "4,training,false,2024-01-01T00:00:00Z\n"
        "4,training,true,2024-03-01T00:00:00Z\n"  # granted later
    )
    platform = open_platform(folder, platforms)
    (result,) = platform.data.ingest()

    assert result.report.verdict == "pass"
    assert result.report.skipped == {SKIP_CONSENT: 2}
    assert (result.report.rows_stored, result.report.rows_skipped) == (2, 2)
    assert [r["id"] for r in rows_of(platform)] == [1, 4]
    balanced(platform)


def test_outlier_bounds_learned_from_the_previous_snapshot_flag_a_far_value(
    tmp_path: Path, make_project: MakeProject, platforms: list[Platform]
) -> None:
    inbox = tmp_path / "inbox"
    columns = {
        **ORDERS_COLUMNS,
        "amount": {
            "type": "number",
            "outliers": {"method": "iqr", "factor": 3, "severity": "warn"},
        },
    }
    settled(inbox / "a.csv", csv_rows([(i, 10.0 + i % 10, "retail") for i in range(1, 41)]))
    platform = open_platform(orders_project(make_project, inbox, columns=columns), platforms)
    (first,) = platform.data.ingest()
    # Q1 = 12, Q3 = 17 (IQR 5): the range is -3 .. 32
    settled(inbox / "b.csv", csv_rows([(41, 15.0, "retail"), (42, 1000.0, "retail")]))
    (second,) = platform.data.ingest()

    assert all(c.check != "amount: outlier" for c in first.report.checks)
    assert first.report.verdict == "pass"
    assert second.report.verdict == "warn"
    (outlier,) = [c for c in second.report.checks if c.check == "amount: outlier"]
    assert (outlier.failed, outlier.severity, outlier.examples) == (1, "warn", ["'1000.0'"])
    # a warning: the far value is stored, nothing is quarantined
    assert second.report.rows_stored == 2
    assert platform.metadata.ingestion.list_quarantine("orders") == []
    assert [r["amount"] for r in rows_of(platform)][-2:] == [15.0, 1000.0]


# --- the metadata migration ---------------------------------------------------------------------


def test_migration_from_0001_to_head_keeps_existing_snapshots(tmp_path: Path) -> None:
    import hashlib
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from decisionloop.backends.artifacts.local import LocalArtifactStore
    from decisionloop.backends.metadata.records import NewBatch, NewQuarantine
    from decisionloop.backends.metadata.sql import HEAD_REVISION, MIGRATIONS, SqlMetadataStore
    from decisionloop.data.offline import read_snapshot

    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    old = SqlMetadataStore(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert old.current_revision() == "0001"

    # a snapshot as 0001 stored it: one Parquet file named by its hash
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3]}), buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    artifacts = LocalArtifactStore(f"file://{tmp_path / 'artifacts'}")
    artifacts.put(data, key=f"datasets/legacy/{digest}.parquet")
    with old.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO datasets (name, created_at) VALUES ('legacy', :at)"),
            {"at": "2024-01-01 00:00:00"},
        )
        conn.execute(
            sa.text(
                "INSERT INTO snapshots (id, dataset, content_hash, row_count, columns,"
                " artifact_key, source, created_at) VALUES ('s1', 'legacy', :hash, 3,"
                " :columns, :key, 'old.csv', :at)"
            ),
            {
                "hash": digest,
                "columns": json.dumps({"a": {"type": "integer"}}),
                "key": f"datasets/legacy/{digest}.parquet",
                "at": "2024-01-01 00:00:00",
            },
        )
    old.close()

    store = SqlMetadataStore(url)
    store.migrate()
    try:
        # 0002 and any later revision
        assert store.current_revision() == HEAD_REVISION
        snapshot = store.datasets.get_snapshot("s1")
        assert (snapshot.content_hash, snapshot.row_count, snapshot.source) == (
            digest,
            3,
            "old.csv",
        )
        assert snapshot.columns == {"a": {"type": "integer"}}
        assert snapshot.batches == []
        assert snapshot.parent_id is None
        # the old snapshot reads back through the offline store, hash-verified
        table = read_snapshot(artifacts, snapshot, tmp_path / "cache")
        assert table.column("a").to_pylist() == [1, 2, 3]
        # the new tables work on the migrated database
        batch, _ = store.ingestion.record_batch(
            "legacy",
            NewBatch("x.csv#1", "warn", 2, 1, 1, 0, {"verdict": "warn"}),
            quarantined=[NewQuarantine("row", "x.csv:line 3", ["a: type"], "{}")],
            snapshot=None,
            actor="test",
        )
        assert [b.id for b in store.ingestion.list_batches("legacy")] == [batch.id]
        assert store.ingestion.count_quarantine("legacy") == 1
    finally:
        store.close()


# --- PostgreSQL metadata and S3 artifacts ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.s3
def test_ingest_and_quarantine_round_trip_on_postgres_and_s3(
    tmp_path: Path,
    make_project: MakeProject,
    fresh_postgres_url: str,
    s3_env: dict[str, str],
    platforms: list[Platform],
) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3_env["S3_ENDPOINT_URL"],
        region_name=s3_env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = f"dl-ingest-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        inbox = tmp_path / "inbox"
        settled(inbox / "a.csv", csv_rows([(1, 1.0, "retail"), (2, 2.0, "online")]))
        folder = orders_project(
            make_project,
            inbox,
            contract={"key": ["id"], "max_error_rate": 0.5},
            storage={"metadata_url": fresh_postgres_url, "artifacts_url": f"s3://{bucket}"},
            s3={
                "endpoint_url": s3_env["S3_ENDPOINT_URL"],
                "region": s3_env.get("AWS_DEFAULT_REGION", "us-east-1"),
                "access_key_id": s3_env["AWS_ACCESS_KEY_ID"],
                "secret_access_key": s3_env["AWS_SECRET_ACCESS_KEY"],
            },
        )
        platform = open_platform(folder, platforms)
        (first,) = platform.data.ingest()
        settled(
            inbox / "b.csv", csv_rows([(2, 2.0, "online"), (3, 3.0, "phone"), (4, 4.0, "retail")])
        )
        (second,) = platform.data.ingest()
        ingestion = platform.metadata.ingestion

        assert first.snapshot is not None
        assert second.snapshot is not None
        assert (second.report.rows_stored, second.report.rows_quarantined) == (1, 1)
        assert second.report.skipped == {SKIP_DUPLICATE: 1}
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert all(k in keys for k in (b["key"] for b in second.snapshot.batches))
        assert [r["id"] for r in rows_of(platform)] == [1, 2, 4]
        assert [r["id"] for r in rows_of(platform, first.snapshot.id)] == [1, 2]
        (entry,) = ingestion.list_quarantine("orders")
        assert (entry.reasons, entry.position) == (["kind: allowed"], "b.csv:line 3")

        edit_project(folder, lambda d: d["data"]["columns"]["kind"]["allowed"].append("phone"))
        platform = open_platform(folder, platforms)
        (replayed,) = platform.data.replay()
        assert replayed.report.rows_stored == 1
        assert [r["id"] for r in rows_of(platform)] == [1, 2, 4, 3]
        assert platform.metadata.ingestion.get_quarantined(entry.id).status == "replayed"
        assert platform.metadata.ingestion.list_quarantine("orders") == []

        # tampering with an object in the bucket is detected on a fresh read
        key = second.snapshot.batches[1]["key"]
        client.put_object(Bucket=bucket, Key=key, Body=b"tampered")
        fresh = Platform.open(
            folder,
            storage={
                "metadata_url": fresh_postgres_url,
                "artifacts_url": f"s3://{bucket}",
            },
        )
        platforms.append(fresh)
        cache = fresh.settings.state_dir / "cache"
        for cached in cache.glob("*.parquet"):
            cached.unlink()
        with pytest.raises(IntegrityError):
            fresh.data.read_snapshot(second.snapshot.id)
        balanced(platform)
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
