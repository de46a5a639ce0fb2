"""The feature log: a sample of online lookups (entity, time, request fields, the feature
values served) appended to the event log in the background, for the skew check to recompute
offline. Logging never slows or fails a lookup: a full queue drops the sample and counts it."""

from __future__ import annotations

import json
import queue
import random
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from decisionloop.errors import NotFound

if TYPE_CHECKING:
    from decisionloop.backends.events.base import EventLog
    from decisionloop.features.online import OnlineFeatures

TOPIC_PREFIX = "decisionloop.features."
_STOP = object()


def topic_of(service: str) -> str:
    """The event-log topic a service's lookups are logged to."""
    return f"{TOPIC_PREFIX}{service}"


class FeatureLog:
    """Samples ``sample_rate`` of online lookups into the event log at ``url``."""

    def __init__(self, url: str, sample_rate: float, *, max_queue: int = 10_000) -> None:
        self.url = url
        self.sample_rate = sample_rate
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._random = random.Random()  # sampling, not security

    def record(
        self,
        service: str,
        rows: Sequence[Mapping[str, Any]],
        found: OnlineFeatures,
        now_us: int,
    ) -> None:
        """Queue the lookup for logging when it falls in the sample."""
        if self.sample_rate <= 0 or self._random.random() >= self.sample_rate:
            return
        self._start()
        entry = (service, [dict(row) for row in rows], found.columns, now_us)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._drain, name="decisionloop-feature-log", daemon=True
                    )
                    self._thread.start()

    def _drain(self) -> None:
        from decisionloop.backends.events import NewEvent, open_event_log

        log: EventLog = open_event_log(self.url)
        topics: set[str] = set()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    self._queue.task_done()
                    return
                batch = [item]
                while len(batch) < 500:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._queue.put(_STOP)  # seen after this batch is written
                        self._queue.task_done()
                        break
                    batch.append(more)
                by_topic: dict[str, list[Any]] = {}
                for service, rows, columns, now_us in batch:
                    for index, row in enumerate(rows):
                        document = {
                            "service": service,
                            "at_us": now_us,
                            "row": row,
                            "features": {name: values[index] for name, values in columns.items()},
                        }
                        by_topic.setdefault(topic_of(service), []).append(
                            NewEvent(value=json.dumps(document, default=str).encode())
                        )
                for topic, events in by_topic.items():
                    if topic not in topics:
                        log.create_topic(topic, 1)
                        topics.add(topic)
                    try:
                        log.append(topic, events)
                    except Exception:  # noqa: BLE001 - a failing log must not stop serving
                        self.dropped += len(events)
                for _ in batch:
                    self._queue.task_done()
        finally:
            log.close()

    def flush(self) -> None:
        """Wait until every queued lookup is written."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None


def read_logged(url: str, service: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` logged lookups of ``service`` (oldest first), without consuming them."""
    import uuid

    from decisionloop.backends.events import open_event_log

    log = open_event_log(url)
    group = f"skew-check-{uuid.uuid4().hex[:12]}"
    found: list[dict[str, Any]] = []
    try:
        while len(found) < limit:
            try:
                events = log.poll(
                    topic_of(service), group, max_records=min(1000, limit), timeout_s=0.5
                )
            except NotFound:
                break
            if not events:
                break
            found.extend(json.loads(event.value) for event in events)
    finally:
        log.close()
    return found[:limit]
