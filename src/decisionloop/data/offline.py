"""The offline store: validated batches as Parquet in the artifact store, partitioned by
ingestion date, and snapshots as ordered lists of those files (time travel = read an old list)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore
from decisionloop.backends.metadata.records import Snapshot

if TYPE_CHECKING:
    import pyarrow as pa


def batch_key(dataset: str) -> str:
    """Where a new batch file goes: ``offline/<dataset>/ingest_date=YYYY-MM-DD/<uuid>.parquet``."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"offline/{dataset}/ingest_date={day}/{uuid.uuid4().hex}.parquet"


def store_batch_file(
    store: ArtifactStore, dataset: str, path: Path, cache: Path | None = None
) -> ArtifactInfo:
    """Hand a validated batch file over to the store (moved into place where it can be). A
    local store hashed it on the way in: that is remembered in ``cache``, so readers in other
    processes need not hash it again."""
    from decisionloop.backends.artifacts.local import LocalArtifactStore

    info = store.put_file(path, key=batch_key(dataset), move=True)
    if cache is not None and isinstance(store, LocalArtifactStore):
        _remember(store.root.joinpath(*info.key.split("/")), info.sha256, cache)
    return info


def snapshot_hash(batches: list[dict[str, Any]]) -> str:
    """A snapshot's version: the hash over its files' hashes, in order."""
    digest = hashlib.sha256()
    for entry in batches:
        digest.update(str(entry["sha256"]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def manifest_bytes(dataset: str, batches: list[dict[str, Any]], columns: dict[str, Any]) -> bytes:
    document = {
        "format": "decisionloop.snapshot/1",
        "dataset": dataset,
        "batches": batches,
        "columns": columns,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def local_files(store: ArtifactStore, snapshot: Snapshot, cache: Path) -> list[str]:
    """Local paths of a snapshot's files, each verified against its recorded sha256.

    A local store's files are read in place; other stores' are downloaded once into ``cache``
    (named by their hash, so a cached file is the right content by construction).
    """
    from decisionloop.backends.artifacts.local import LocalArtifactStore

    entries = snapshot.batches or [{"key": snapshot.artifact_key, "sha256": snapshot.content_hash}]
    paths = []
    for entry in entries:
        key, sha256 = str(entry["key"]), str(entry["sha256"])
        if isinstance(store, LocalArtifactStore):
            path = store.root.joinpath(*key.split("/"))
            _verify_local(path, key, sha256, cache)
            paths.append(str(path))
            continue
        target = cache / f"{sha256}.parquet"
        if not target.exists():
            cache.mkdir(parents=True, exist_ok=True)
            store.download(key, target, sha256=sha256)
        paths.append(str(target))
    return paths


#: local batch files known to hold their recorded content, by identity: (path, inode, size,
#: mtime) -> sha256. A stream appends a file per batch and reads the snapshot's files again for
#: every batch; hashing them all each time grew with the data set (hundreds of MB per batch at
#: 10M rows). Kept across processes in ``<cache>/verified.jsonl`` (written when ingestion
#: hashes a file on its way into the store, or a reader hashes it), like git's index: a file
#: changed since has another size or mtime and is hashed again.
_VERIFIED: dict[tuple[str, int, int, int], str] = {}
_LOADED_CACHES: set[str] = set()
VERIFIED_FILE = "verified.jsonl"


def _identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _load_verified(cache: Path | None) -> None:
    if cache is None or str(cache) in _LOADED_CACHES:
        return
    _LOADED_CACHES.add(str(cache))
    try:
        lines = (cache / VERIFIED_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    for line in lines:
        try:
            entry = json.loads(line)
            identity = (
                str(entry["path"]),
                int(entry["ino"]),
                int(entry["size"]),
                int(entry["mtime_ns"]),
            )
            _VERIFIED[identity] = str(entry["sha256"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line: that file is simply hashed again


def _remember(path: Path, sha256: str, cache: Path | None) -> None:
    identity = _identity(path)
    _VERIFIED[identity] = sha256
    if cache is None:
        return
    path_, ino, size, mtime = identity
    line = json.dumps(
        {"path": path_, "ino": ino, "size": size, "mtime_ns": mtime, "sha256": sha256}
    )
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / VERIFIED_FILE, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError:
        pass  # a read-only cache: verification just happens again next time


def _verify_local(path: Path, key: str, sha256: str, cache: Path | None = None) -> None:
    from decisionloop.backends.artifacts.base import sha256_file
    from decisionloop.errors import IntegrityError, NotFound

    _load_verified(cache)
    try:
        identity = _identity(path)
    except FileNotFoundError as exc:
        raise NotFound(f"no artifact {key!r}: {path} is missing") from exc
    if _VERIFIED.get(identity) == sha256:
        return
    actual, _ = sha256_file(path)
    if actual != sha256:
        raise IntegrityError(
            f"artifact {key!r} does not match its recorded sha256 (tampered or corrupted)",
            hint="restore the file from a backup; never use data that fails its hash",
        )
    _remember(path, sha256, cache)


def read_snapshot(store: ArtifactStore, snapshot: Snapshot, cache: Path) -> pa.Table:
    """Every row of a snapshot, exactly as stored, in order."""
    import duckdb

    paths = local_files(store, snapshot, cache)
    listing = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    with duckdb.connect() as con:
        table: pa.Table = con.sql(
            # hive_partitioning=false: the store's ingest_date=... folders are not a column
            f"SELECT * FROM read_parquet({listing}, union_by_name=true, hive_partitioning=false)"
        ).to_arrow_table()
    return table
