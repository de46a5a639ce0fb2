"""Every event log passes the same conformance suite (decisionloop.testing)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from decisionloop.backends.events.base import NewEvent
from decisionloop.backends.events.local import LocalEventLog
from decisionloop.data.streams import ValuePolling
from decisionloop.testing.event_log_conformance import (
    EVENT_LOG_CHECKS,
    EventLogCheck,
    EventLogFactory,
)


@pytest.mark.parametrize("check", EVENT_LOG_CHECKS, ids=lambda check: check.__name__)
def test_event_log_conformance(check: EventLogCheck, open_log: EventLogFactory) -> None:
    check(open_log)


# -- poll_values: what stream sources poll, without Event objects -----------------------------


def test_poll_values_hands_what_poll_hands(open_log: EventLogFactory) -> None:
    log = open_log()
    suffix = uuid.uuid4().hex[:12]
    topic = f"values-{suffix}"
    log.create_topic(topic, 3)
    log.append(
        topic,
        [NewEvent(value=f"v{i}".encode(), key=f"k{i % 7}".encode()) for i in range(40)]
        + [NewEvent(value=b"")],
    )
    events = _drain(lambda: log.poll(topic, f"events-{suffix}", max_records=7, timeout_s=0.5))
    bulk = cast(ValuePolling, log)
    rows = _drain(lambda: bulk.poll_values(topic, f"values-{suffix}", max_records=7, timeout_s=0.5))

    assert len(rows) == 41
    # the same messages, in offset order within each partition (partitions may interleave)
    assert sorted(rows) == sorted((e.partition, e.offset, e.value) for e in events)
    for partition in range(3):
        offsets = [offset for p, offset, _ in rows if p == partition]
        assert offsets == sorted(offsets)
    # the group's position advanced as with poll, and a new consumer resumes at the commit
    assert bulk.poll_values(topic, f"values-{suffix}", max_records=10, timeout_s=0.1) == []
    log.commit(topic, f"values-{suffix}", {0: 1})
    again = cast(ValuePolling, open_log())
    resumed = _drain(
        lambda: again.poll_values(topic, f"values-{suffix}", max_records=100, timeout_s=0.5)
    )
    assert sorted(resumed) == sorted(row for row in rows if row[:2] != (0, 0))


def test_poll_columns_hands_what_poll_values_hands(open_log: EventLogFactory) -> None:
    log = open_log()
    suffix = uuid.uuid4().hex[:12]
    topic = f"columns-{suffix}"
    log.create_topic(topic, 2)
    log.append(topic, [NewEvent(value=f"v{i}".encode() * (i % 3)) for i in range(2500)])
    bulk = cast(ValuePolling, log)
    rows = _drain(lambda: bulk.poll_values(topic, f"values-{suffix}", max_records=900))

    def columns() -> list[Any]:
        partitions, offsets, values = bulk.poll_columns(
            topic, f"columns-{suffix}", max_records=1700, timeout_s=0.5
        )
        assert len(partitions) == len(offsets) == len(values) <= 1700
        return list(zip(partitions, offsets, values, strict=True))

    assert sorted(_drain(columns)) == sorted(rows)
    assert len(rows) == 2500


def test_a_commit_does_not_wait_for_a_poll_waiting_in_another_thread(
    open_log: EventLogFactory,
) -> None:
    log = open_log()
    suffix = uuid.uuid4().hex[:12]
    topic, group = f"waiting-{suffix}", f"group-{suffix}"
    log.create_topic(topic, 1)
    log.append(topic, [NewEvent(value=b"v")])
    assert len(_drain(lambda: log.poll(topic, group, max_records=10, timeout_s=0.5))) == 1
    waiting = threading.Thread(
        target=lambda: log.poll(topic, group, max_records=10, timeout_s=3.0), daemon=True
    )
    waiting.start()
    time.sleep(0.3)  # the poll waits for a message that does not come

    started = time.monotonic()
    log.commit(topic, group, {0: 1})

    assert time.monotonic() - started < 1.5
    assert log.committed(topic, group) == {0: 1}
    waiting.join()


def _drain(poll: Callable[[], list[Any]]) -> list[Any]:
    found: list[Any] = []
    while batch := poll():
        found += batch
    return found


# -- the local log's own promises: several writer processes, and kill -9 ----------------------

_WRITER = """
import sys
from decisionloop.backends.events.base import NewEvent
from decisionloop.backends.events.local import LocalEventLog

url, topic, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = LocalEventLog(url)
for i in range(count):
    (position,) = log.append(topic, [NewEvent(value=f"{name}-{i}".encode(), key=name.encode())])
    print(position.partition, position.offset, f"{name}-{i}", flush=True)
"""


def _writer(url: str, topic: str, name: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, topic, name, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_local_log_takes_appends_from_several_processes(tmp_path: Path) -> None:
    url = f"eventlog://{tmp_path / 'events.db'}"
    log = LocalEventLog(url)
    log.create_topic("shared", partitions=2)
    writers = [_writer(url, "shared", f"w{n}", 100) for n in range(3)]
    acknowledged = set()
    for writer in writers:
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0
        acknowledged |= {tuple(line.split()) for line in out.splitlines()}

    events = []
    while batch := log.poll("shared", "check", max_records=1000, timeout_s=0.2):
        events += batch
    log.close()

    assert len(acknowledged) == 300
    assert {(str(e.partition), str(e.offset), e.value.decode()) for e in events} == acknowledged
    for partition in (0, 1):
        offsets = sorted(e.offset for e in events if e.partition == partition)
        assert offsets == list(range(len(offsets)))


def test_local_append_survives_kill_9(tmp_path: Path) -> None:
    url = f"eventlog://{tmp_path / 'events.db'}"
    log = LocalEventLog(url)
    log.create_topic("durable")
    log.close()
    writer = _writer(url, "durable", "w", 1_000_000)
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline().split() for _ in range(50)]
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)

    reopened = LocalEventLog(url)
    stored = {}
    while batch := reopened.poll("durable", "check", max_records=10_000, timeout_s=0.2):
        stored.update({event.offset: event.value.decode() for event in batch})
    reopened.close()

    for partition, offset, value in acknowledged:
        assert partition == "0"
        assert stored[int(offset)] == value
    assert sorted(stored) == list(range(len(stored)))
