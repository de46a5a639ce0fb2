"""kill -9 the ingesting process mid-stream, restart it, and every produced record is stored
exactly once or quarantined exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from decisionloop.backends.events import open_event_log
from decisionloop.backends.events.base import NewEvent
from decisionloop.platform import Platform

pytestmark = pytest.mark.slow


def _records(start: int, stop: int) -> tuple[list[NewEvent], set[int], int]:
    """Events for ids [start, stop): every 97th has a negative amount (quarantined), and every
    500th is followed by a message that is not JSON. Returns events, good ids, bad count."""
    events: list[NewEvent] = []
    good: set[int] = set()
    bad = 0
    for i in range(start, stop):
        amount = -1.0 if i % 97 == 0 else i * 0.5
        events.append(
            NewEvent(
                json.dumps({"id": i, "amount": amount, "kind": "ab"[i % 2]}).encode(),
                key=str(i).encode(),
            )
        )
        if amount < 0:
            bad += 1
        else:
            good.add(i)
        if i % 500 == 0:
            events.append(NewEvent(b"\xff not json " + str(i).encode()))
            bad += 1
    return events, good, bad


def _project(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "name": "events",
        "data": {
            "source": source,
            "target": "kind",
            "columns": {
                "id": {"type": "integer", "nullable": False},
                "amount": {"type": "number", "min": 0},
                "kind": {"type": "string", "allowed": ["a", "b"]},
            },
            "contract": {"key": ["id"], "max_error_rate": 0.5},
        },
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(document))
    return folder


def _batches(folder: Path) -> int:
    db = folder / ".decisionloop" / "metadata.db"
    if not db.exists():
        return 0
    try:
        with Platform.open(folder) as platform:
            return len(platform.metadata.ingestion.list_batches("events", limit=10_000))
    except Exception:
        return 0


@pytest.fixture(params=["eventlog", "kafka"])
def stream(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Callable[[list[NewEvent]], None]]:
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        log_url = f"kafka://{bootstrap}"
        source = f"{log_url}/{topic}?group=ingest-{topic}"
    else:
        path = tmp_path / "events.db"
        log_url = f"eventlog://{path}"
        source = f"{log_url}?topic={topic}&group=ingest"
    log = open_event_log(log_url)
    log.create_topic(topic, 2)
    log.close()

    def produce(events: list[NewEvent]) -> None:
        writer = open_event_log(log_url)
        try:
            for start in range(0, len(events), 1000):
                writer.append(topic, events[start : start + 1000])
        finally:
            writer.close()

    return source, produce


def test_kill_9_mid_stream_then_restart_stores_each_record_once(
    stream: tuple[str, Callable[[list[NewEvent]], None]], tmp_path: Path
) -> None:
    source, produce = stream
    folder = _project(tmp_path / "project", source)
    first, good_first, bad_first = _records(0, 6000)
    produce(first)

    ingesting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "decisionloop",
            "ingest",
            str(folder),
            "--follow",
            "--batch-rows",
            "400",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while _batches(folder) < 3:
        assert ingesting.poll() is None, ingesting.stderr.read() if ingesting.stderr else ""
        assert time.monotonic() < deadline, "the ingesting process recorded no batches"
        time.sleep(0.05)
    ingesting.send_signal(signal.SIGKILL)
    ingesting.wait(timeout=30)
    assert ingesting.returncode == -signal.SIGKILL
    killed_at = _batches(folder)
    assert killed_at >= 3

    second, good_second, bad_second = _records(6000, 9000)
    produce(second)
    drained = subprocess.run(
        [
            sys.executable,
            "-m",
            "decisionloop",
            "ingest",
            str(folder),
            "--json",
            "--batch-rows",
            "2000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert drained.returncode == 0, drained.stderr

    with Platform.open(folder) as platform:
        stored = platform.data.read_snapshot().column("id").to_pylist()
        assert len(stored) == len(set(stored)), "a record was stored twice"
        assert set(stored) == good_first | good_second
        ingestion = platform.metadata.ingestion
        entries = ingestion.list_quarantine("events", status=None, limit=100_000)
        positions = [e.position for e in entries]
        assert len(positions) == len(set(positions)), "a record was quarantined twice"
        assert len(entries) == bad_first + bad_second
        batches = ingestion.list_batches("events", limit=10_000)
        assert len(batches) > killed_at
        for batch in batches:
            assert batch.rows_in == batch.rows_stored + batch.rows_quarantined + batch.rows_skipped
        produced = len(first) + len(second)
        assert sum(b.rows_in for b in batches) >= produced
        assert sum(b.rows_stored for b in batches) == len(stored)
