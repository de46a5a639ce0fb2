"""Fixtures for the conformance suites: the Kafka-protocol broker (services/kafka-up.sh)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import SERVICES, unavailable


def start_kafka() -> str:
    """Start the broker if needed (idempotent) and return its bootstrap address."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        unavailable("confluent-kafka is not installed (pip install 'decisionloop[kafka]')")
    try:
        done = subprocess.run(
            ["bash", str(SERVICES / "kafka-up.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        unavailable(f"Kafka broker could not be started by services/kafka-up.sh: {detail}")
    address = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if ":" not in address:
        unavailable(f"services/kafka-up.sh printed no bootstrap address: {done.stdout!r}")
    return address


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's ``host:port``; skipped outside CI, a failure in CI, when it cannot start."""
    return start_kafka()
