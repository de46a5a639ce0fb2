"""Event logs: partitioned append-only topics with consumer-group offsets.

``eventlog:///path/events.db`` is the embedded log in a SQLite file; ``kafka://host:9092`` is
Kafka (``pip install 'decisionloop[kafka]'``). Implementations load on first use.
"""

from __future__ import annotations

from decisionloop.backends.events.base import (
    Capabilities,
    Event,
    EventLog,
    EventPosition,
    NewEvent,
)
from decisionloop.errors import Invalid

__all__ = ["Capabilities", "Event", "EventLog", "EventPosition", "NewEvent", "open_event_log"]


def open_event_log(url: str) -> EventLog:
    """The event log named by ``url`` (``eventlog://...`` or ``kafka://...``)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "eventlog":
        from decisionloop.backends.events.local import LocalEventLog

        return LocalEventLog(url)
    if scheme == "kafka":
        from decisionloop.backends.events.kafka import KafkaEventLog

        return KafkaEventLog(url)
    raise Invalid(
        f"no event log for URL {url!r}",
        hint="use eventlog:///path/events.db or kafka://host:9092",
    )
