"""Shared fixtures: real services, found or started, and skipped only outside CI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "services"
IN_CI = bool(os.environ.get("CI"))


def unavailable(reason: str) -> NoReturn:
    """Skip on a user's machine; fail in CI, where every backend must be tested for real."""
    if IN_CI:
        pytest.fail(f"service required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL (DECISIONLOOP_TEST_POSTGRES_URL or the local trust-auth server)."""
    url = os.environ.get(
        "DECISIONLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    try:
        import psycopg

        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, connect_timeout=3):
            pass
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {url}: {exc}")
    return url


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A new empty schema-isolated database per test (dropped afterwards)."""
    import uuid

    import psycopg

    name = f"dl_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """Environment for the S3-compatible server, started with services/s3-up.sh if needed."""
    run_dir = Path(os.environ.get("S3_RUN_DIR", "/tmp/decisionloop/s3"))
    env_path = run_dir / "s3.env"
    try:
        subprocess.run(
            ["bash", str(SERVICES / "s3-up.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        unavailable(f"S3 server could not be started by services/s3-up.sh: {detail.strip()}")
    if not env_path.exists():
        unavailable(f"S3 server started but {env_path} is missing")
    return _env_file(env_path)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis URL (DECISIONLOOP_TEST_REDIS_URL or the local server's database 15), pinged."""
    url = os.environ.get("DECISIONLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis
    except ImportError:
        unavailable("redis is not installed (pip install 'decisionloop[redis]')")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        unavailable(f"Redis not reachable at {url}: {exc}")
    return url


@pytest.fixture
def make_project() -> Callable[..., Path]:
    """Return a factory writing a decisionloop.yaml into a temporary folder."""
    import tempfile

    import yaml

    def factory(data: dict[str, object], folder: Path | None = None) -> Path:
        target = folder or Path(tempfile.mkdtemp(prefix="dl-project-"))
        target.mkdir(parents=True, exist_ok=True)
        (target / "decisionloop.yaml").write_text(yaml.safe_dump(data))
        return target

    return factory


def start_service(
    script: str, *, needs: str, extra: str, looks_right: Callable[[str], bool]
) -> str:
    """Run ``services/<script>`` (idempotent) and return the address it prints last; skip
    outside CI (fail in CI) when the client module ``needs`` is missing or the server fails."""
    import importlib

    try:
        importlib.import_module(needs)
    except ImportError:
        unavailable(f"{needs} is not installed (pip install 'decisionloop[{extra}]')")
    try:
        done = subprocess.run(
            ["bash", str(SERVICES / script)],
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        unavailable(f"services/{script} could not start its server: {detail}")
    address = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not looks_right(address):
        unavailable(f"services/{script} printed no address: {done.stdout!r}")
    return address


def start_kafka() -> str:
    """Start the broker if needed and return its bootstrap address."""
    return start_service(
        "kafka-up.sh", needs="confluent_kafka", extra="kafka", looks_right=lambda a: ":" in a
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's ``host:port``; skipped outside CI, a failure in CI, when it cannot start."""
    return start_kafka()


@pytest.fixture(params=["local", "kafka"])
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory of new event-log instances over one store (a SQLite file, or the Kafka
    broker), so each new source is a new consumer of its group; all closed afterwards."""
    from decisionloop.backends.events.kafka import KafkaEventLog
    from decisionloop.backends.events.local import LocalEventLog

    opened: list[Any] = []
    if request.param == "local":
        url = f"eventlog://{tmp_path / 'events.db'}"

        def factory() -> Any:
            opened.append(LocalEventLog(url))
            return opened[-1]

    else:
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")

        def factory() -> Any:
            opened.append(KafkaEventLog(f"kafka://{bootstrap}", timeout_s=15))
            return opened[-1]

    yield factory
    for log in opened:
        log.close()
