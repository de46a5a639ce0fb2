"""Several OS processes share one metadata database: no lost, doubled or unaudited writes.

Each worker is a fresh ``python -c`` process that builds its own store from the URL, so nothing
(engine, pool, lock) is shared but the database itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from decisionloop.backends.metadata.records import NewModelVersion
from decisionloop.backends.metadata.sql import HEAD_REVISION, SqlMetadataStore

WORKERS = 2
REGISTRATIONS = 40
MODEL = "churn"
DATASET = "telco"
ENVIRONMENT = "prod"

#: The worker program: ``python -c WORKER MODE URL GO_FILE [ARGS...]``.
WORKER = r"""
import json, os, sys, time, traceback
from pathlib import Path

from decisionloop.backends.metadata.records import NewModelVersion
from decisionloop.backends.metadata.sql import SqlMetadataStore

mode, url, go_file, *args = sys.argv[1:]


def version(model, n, gate_passed=True):
    return NewModelVersion(
        model_name=model,
        artifact_key=f"models/{model}/{os.getpid()}-{n}/model.ubj",
        artifact_sha256=f"{os.getpid():032x}{n:032x}",
        signature={"inputs": ["tenure"]},
        metrics={"auc": 0.5 + n / 1000},
        params={"worker": os.getpid(), "n": n},
        gate_passed=gate_passed,
        gate_report={"passed": gate_passed},
    )


def wait_for_go():
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file):
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.001)


store = SqlMetadataStore(url)
try:
    if mode == "mixed":
        worker, count, model, dataset, env = int(args[0]), int(args[1]), args[2], args[3], args[4]
        actor = f"worker-{worker}"
        store.models  # import everything before the start line
        wait_for_go()
        registered = []
        for n in range(count):
            passed = n % 3 != 0
            got = store.models.register(version(model, n, passed), actor=actor)
            registered.append(got.version)
            store.models.set_alias(model, "staging", got.version, actor=actor)
            if passed:
                store.models.set_alias(model, "champion", got.version, actor=actor)
            store.datasets.add_snapshot(
                dataset, content_hash=f"shared-{n:04d}", row_count=n, columns={"n": "int64"},
                artifact_key=f"datasets/shared-{n}", source="race", actor=actor,
            )
            store.datasets.add_snapshot(
                dataset, content_hash=f"own-{worker}-{n:04d}", row_count=n, columns={},
                artifact_key=f"datasets/own-{worker}-{n}", source="race", actor=actor,
            )
            store.deployments.create(
                environment=env, model_name=model, version=got.version, strategy="replace",
                actor=actor,
            )
        print(json.dumps({"registered": registered}), flush=True)
    elif mode == "race":
        count, model, dataset, env = int(args[0]), args[1], args[2], args[3]
        store.audit.count()  # connect before the start line
        wait_for_go()
        for n in range(count):
            store.datasets.add_snapshot(
                dataset, content_hash=f"same-{n:04d}", row_count=n, columns={"n": "int64"},
                artifact_key=f"datasets/same-{n}", source="race", actor=f"pid-{os.getpid()}",
            )
            store.deployments.create(
                environment=f"{env}-{n:04d}", model_name=model, version=1, strategy="replace",
                actor=f"pid-{os.getpid()}",
            )
        print(json.dumps({"done": count}), flush=True)
    elif mode == "features":
        from decisionloop.backends.metadata.records import NewFeatureDefinition as Definition
        count = int(args[0])
        store.audit.count()  # connect before the start line
        wait_for_go()
        counts = {"added": 0, "changed": 0, "unchanged": 0}
        for n in range(count):
            got = store.features.apply(
                [
                    Definition("entity", "customer", "e1", {"join_keys": ["id"]}),
                    Definition("feature_view", "stats", f"v{n % 3}", {"n": n % 3}),
                ],
                actor=f"pid-{os.getpid()}",
            )
            for kind in counts:
                counts[kind] += len(getattr(got, kind))
        print(json.dumps(counts), flush=True)
    elif mode == "migrate":
        wait_for_go()
        store.migrate()
        print(json.dumps({"revision": store.current_revision()}), flush=True)
    elif mode == "crash":
        model = args[0]
        print("ready", flush=True)
        for n in range(1_000_000):
            got = store.models.register(version(model, n), actor="crasher")
            store.models.set_alias(model, "staging", got.version, actor="crasher")
            print(got.version, flush=True)
    else:
        raise ValueError(mode)
except BaseException:
    traceback.print_exc()
    sys.exit(1)
finally:
    store.close()
"""


def _spawn(mode: str, url: str, go_file: Path, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, mode, url, str(go_file), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _start_together(processes: list[subprocess.Popen[str]], go_file: Path) -> None:
    """Wait until every worker has imported everything, then let them all go at once."""
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.wait(timeout=30)
            assert process.stderr is not None
            pytest.fail(f"worker did not start: {line!r} {process.stderr.read()}")
    go_file.touch()


def _finish(processes: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for every worker; all must exit 0 without printing errors. Their JSON results."""
    results = []
    failures = []
    for index, process in enumerate(processes):
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        if process.returncode != 0 or err.strip():
            failures.append(f"worker {index} exited {process.returncode}:\n{err}")
            continue
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert not failures, "\n".join(failures)
    return results


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    fresh: str = request.getfixturevalue("fresh_postgres_url")
    return fresh


@pytest.fixture
def store(url: str) -> Iterator[SqlMetadataStore]:
    sql_store = SqlMetadataStore(url)
    try:
        yield sql_store
    finally:
        sql_store.close()


def test_concurrent_writers(store: SqlMetadataStore, url: str, tmp_path: Path) -> None:
    """Registrations, alias moves, racing snapshot adds and deployments from several processes."""
    store.migrate()
    go_file = tmp_path / "go"
    workers = [
        _spawn("mixed", url, go_file, index, REGISTRATIONS, MODEL, DATASET, ENVIRONMENT)
        for index in range(WORKERS)
    ]
    _start_together(workers, go_file)
    results = _finish(workers)
    total = WORKERS * REGISTRATIONS

    # versions: exactly 1..total, each handed to exactly one worker, each in order per worker
    handed_out = [v for result in results for v in result["registered"]]
    assert sorted(handed_out) == list(range(1, total + 1))
    for result in results:
        assert result["registered"] == sorted(result["registered"])
    assert [v.version for v in store.models.list_versions(MODEL)] == list(range(total, 0, -1))
    assert store.models.list_models()[0].latest_version == total

    events = store.audit.list(limit=100_000)
    assert len(events) == store.audit.count()
    by_action = Counter(event.action for event in events)
    passed_per_worker = sum(1 for n in range(REGISTRATIONS) if n % 3 != 0)

    # one register event per version, by the worker that got it
    registers = Counter(e.resource for e in events if e.action == "model_version.register")
    assert registers == {f"model:{MODEL}/{v}": 1 for v in range(1, total + 1)}
    owner = {v: f"worker-{i}" for i, result in enumerate(results) for v in result["registered"]}
    for event in events:
        if event.action == "model_version.register":
            assert event.actor == owner[int(event.resource.rsplit("/", 1)[1])]

    # alias moves were serialized: each one's "previous" is the version the one before set
    for alias, expected in (("staging", total), ("champion", WORKERS * passed_per_worker)):
        moves = [e for e in reversed(events) if e.resource == f"model:{MODEL}@{alias}"]
        assert len(moves) == expected
        previous = None
        for move in moves:
            assert move.details["previous"] == previous, f"lost update of @{alias}"
            previous = move.details["version"]
        assert store.models.get_by_alias(MODEL, alias).version == previous
    champion = store.models.get_by_alias(MODEL, "champion")
    assert champion.gate_passed

    # snapshots: the shared contents once each, every worker's own contents once each
    snapshots = store.datasets.list_snapshots(DATASET, limit=100_000)
    hashes = Counter(s.content_hash for s in snapshots)
    assert len(snapshots) == REGISTRATIONS * (1 + WORKERS)
    assert set(hashes.values()) == {1}
    assert by_action["snapshot.create"] == len(snapshots)

    # deployments: one per registration, exactly one of them still active
    deployments = store.deployments.list(ENVIRONMENT)
    assert len(deployments) == total
    assert [d.status for d in deployments].count("active") == 1
    assert by_action["deployment.create"] == total

    assert by_action == {
        "model_version.register": total,
        "alias.set": total + WORKERS * passed_per_worker,
        "snapshot.create": len(snapshots),
        "deployment.create": total,
    }


def test_concurrent_dedupe_and_replace(store: SqlMetadataStore, url: str, tmp_path: Path) -> None:
    """Processes adding the same snapshots and deploying the same model into the same
    environments at the same moment: one snapshot per content, one active deployment."""
    store.migrate()
    store.models.register(_plain_version(), actor="test")
    go_file = tmp_path / "go"
    racers, rounds = 4, 40
    workers = [
        _spawn("race", url, go_file, rounds, MODEL, DATASET, ENVIRONMENT) for _ in range(racers)
    ]
    _start_together(workers, go_file)
    assert _finish(workers) == [{"done": rounds}] * racers

    snapshots = store.datasets.list_snapshots(DATASET, limit=100_000)
    assert sorted(s.content_hash for s in snapshots) == [f"same-{n:04d}" for n in range(rounds)]
    events = store.audit.list(limit=100_000)
    creates = Counter(e.details["snapshot"] for e in events if e.action == "snapshot.create")
    assert creates == {s.id: 1 for s in snapshots}

    deployments = store.deployments.list()
    assert len(deployments) == racers * rounds
    active = Counter(d.environment for d in deployments if d.status == "active")
    assert active == {f"{ENVIRONMENT}-{n:04d}": 1 for n in range(rounds)}, "double active"
    audited = Counter(e.details["id"] for e in events if e.action == "deployment.create")
    assert audited == {d.id: 1 for d in deployments}


def test_concurrent_feature_apply(store: SqlMetadataStore, url: str, tmp_path: Path) -> None:
    """Processes applying the same definitions at once: one entity entry, and a view history
    whose every entry is a real change, audited once."""
    store.migrate()
    go_file = tmp_path / "go"
    racers, rounds = 4, 30
    workers = [_spawn("features", url, go_file, rounds) for _ in range(racers)]
    _start_together(workers, go_file)
    results = _finish(workers)
    assert sum(sum(r.values()) for r in results) == racers * rounds * 2

    assert [d.version for d in store.features.definition_history("entity", "customer")] == ["e1"]
    history = [d.version for d in store.features.definition_history("feature_view", "stats")]
    assert all(a != b for a, b in pairwise(history)), history
    assert store.features.get_definition("feature_view", "stats").version == history[-1]
    assert sum(r["added"] for r in results) == 2  # the entity and the view, once each
    assert sum(r["changed"] for r in results) == len(history) - 1
    applies = Counter(e.resource for e in store.audit.list(limit=100_000))
    assert applies == {"entity:customer": 1, "feature_view:stats": len(history)}


def _plain_version(key: str = "k") -> NewModelVersion:
    return NewModelVersion(
        model_name=MODEL,
        artifact_key=key,
        artifact_sha256="0" * 64,
        signature={},
        metrics={},
        params={},
        gate_passed=True,
        gate_report={},
    )


def _alembic_versions(url: str) -> list[str]:
    probe = SqlMetadataStore(url)
    try:
        with probe.read() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        probe.close()


def test_concurrent_migrate(url: str, tmp_path: Path) -> None:
    """Processes migrating a fresh database at the same moment all succeed, migrating once."""
    go_file = tmp_path / "go"
    workers = [_spawn("migrate", url, go_file) for _ in range(3)]
    _start_together(workers, go_file)
    results = _finish(workers)
    assert [r["revision"] for r in results] == [HEAD_REVISION] * 3
    assert _alembic_versions(url) == [HEAD_REVISION]

    store = SqlMetadataStore(url)
    try:
        store.migrate()
        assert store.current_revision() == HEAD_REVISION
        registered = store.models.register(_plain_version(), actor="test")
        assert registered.version == 1
        assert store.audit.count() == 1
    finally:
        store.close()
    assert _alembic_versions(url) == [HEAD_REVISION]


def _register_until_killed(url: str, tmp_path: Path, acks: int, delay: float) -> list[int]:
    """Run a child registering versions; SIGKILL it ``delay`` s after ``acks`` acknowledgements.
    Every version it acknowledged (printed after ``register()`` returned)."""
    child = _spawn("crash", url, tmp_path / "unused", MODEL)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    acknowledged: list[int] = []
    deadline = time.monotonic() + 30
    while len(acknowledged) < acks and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged.append(int(line))
    time.sleep(delay)
    child.kill()  # SIGKILL: no cleanup, no atexit, maybe mid-transaction
    out, err = child.communicate(timeout=30)
    acknowledged += [int(line) for line in out.split()]
    assert child.returncode == -signal.SIGKILL, err
    assert len(acknowledged) >= acks, f"child acknowledged only {acknowledged}: {err}"
    return acknowledged


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_sqlite_survives_sigkill(tmp_path: Path, synchronous: str) -> None:
    """Writers killed mid-way leave a sound database holding every acknowledged version, with
    either durability setting (``normal`` only risks the last commits to a power loss)."""
    url = f"sqlite:///{tmp_path / 'metadata.db'}?synchronous={synchronous}"
    store = SqlMetadataStore(url)
    store.migrate()
    store.close()
    stored: list[int] = []
    for delay in (0.0, 0.003, 0.011):  # kill at different points of the loop
        acknowledged = _register_until_killed(url, tmp_path, 15, delay)
        assert acknowledged == list(range(len(stored) + 1, len(stored) + len(acknowledged) + 1))

        with sa.create_engine(f"sqlite:///{tmp_path / 'metadata.db'}").connect() as conn:
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalars().all() == ["ok"]
            assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []

        store = SqlMetadataStore(url)
        try:
            store.migrate()
            stored = sorted(v.version for v in store.models.list_versions(MODEL))
            # every acknowledged version is there; at most the one in flight is extra
            assert set(acknowledged) <= set(stored)
            assert stored == list(range(1, len(stored) + 1))
            assert stored[-1] - acknowledged[-1] in (0, 1)
            registers = Counter(
                e.resource
                for e in store.audit.list(limit=100_000)
                if e.action == "model_version.register"
            )
            assert registers == {f"model:{MODEL}/{v}": 1 for v in stored}
            assert store.models.get_by_alias(MODEL, "staging").version >= acknowledged[-1]
        finally:
            store.close()

    store = SqlMetadataStore(url)
    try:
        after = store.models.register(_plain_version("after-crash"), actor="test")
        assert after.version == len(stored) + 1
    finally:
        store.close()


def test_sqlite_synchronous_comes_from_the_url(tmp_path: Path) -> None:
    """``?synchronous=`` picks when a commit waits for the disk; FULL unless asked; OFF, which
    can corrupt the file on a power loss, is refused."""
    from decisionloop.errors import Invalid

    expected = {"": 2, "?synchronous=normal": 1, "?synchronous=FULL": 2}
    for query, level in expected.items():
        store = SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}{query}")
        try:
            store.migrate()
            with store.read() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level, query
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        finally:
            store.close()
    for refused in ("off", "extra"):
        with pytest.raises(Invalid, match="synchronous"):
            SqlMetadataStore(
                f"sqlite:///{tmp_path / 'metadata.db'}?synchronous={refused}"
            ).migrate()
