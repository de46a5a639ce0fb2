"""Conformance checks that bytes put into an artifact store come back the same."""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from decisionloop.backends.artifacts.base import ArtifactStore
from decisionloop.errors import IntegrityError
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.artifact_conformance._helpers import (
    _BIG,
    _EMPTY_SHA256,
    _content_key,
    _expect_info,
    _namespace,
    _random_blob,
    _sha,
)


def check_implements_protocol(store: ArtifactStore) -> None:
    """The store is a runtime :class:`ArtifactStore` with a non-empty string ``url``."""
    _expect(isinstance(store, ArtifactStore), f"{store!r} does not implement ArtifactStore")
    _expect(isinstance(store.url, str) and bool(store.url), f"url must be a string: {store.url!r}")


def check_put_get_round_trip(store: ArtifactStore) -> None:
    """``put`` returns the key, sha256 and size; ``get`` returns the same bytes, verified."""
    data = b"decisionloop round trip " + _random_blob()
    info = store.put(data)
    _expect_info(info, _content_key(data), data, "put(data)")
    _expect_equal(store.get(info.key), data, "get(key)")
    _expect_equal(store.get(info.key, sha256=info.sha256), data, "get(key, sha256)")


def check_content_addressed_put_is_idempotent(store: ArtifactStore) -> None:
    """``put`` without a key stores under ``objects/<sha[:2]>/<sha>``, once, however often."""
    data = _random_blob(1000)
    digest = _sha(data)
    key = f"objects/{digest[:2]}/{digest}"
    _expect(not store.exists(key), f"fresh random blob already stored under {key}")
    first = store.put(data)
    second = store.put(data)
    _expect_info(first, key, data, "first put(data)")
    _expect_equal(second, first, "second put(data) of the same bytes")
    _expect_equal(store.list(f"objects/{digest[:2]}/{digest}"), [key], "list(content key)")
    _expect_equal(store.get(key, sha256=digest), data, "get(content key)")


def check_put_with_explicit_key(store: ArtifactStore) -> None:
    """``put(data, key)`` stores under exactly that key and nowhere else."""
    ns = _namespace()
    data = _random_blob(300)
    key = f"{ns}/models/churn-v1/model.ubj"
    info = store.put(data, key=key)
    _expect_info(info, key, data, "put(data, key)")
    _expect(store.exists(key), "exists(key) after put(data, key)")
    _expect_equal(store.get(key, sha256=info.sha256), data, "get(key)")
    _expect_equal(store.list(f"{ns}/"), [key], "list(namespace) after one put")
    _expect(not store.exists(_content_key(data)), "put with a key also wrote a content key")


def check_put_file_large(store: ArtifactStore) -> None:
    """``put_file`` of a multi-MB file, content-addressed and under a key, reads back intact."""
    ns = _namespace()
    data = _random_blob(_BIG)
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        path = Path(folder) / "model.bin"
        path.write_bytes(data)
        info = store.put_file(path)
        _expect_info(info, _content_key(data), data, "put_file(path)")
        again = store.put_file(path)
        _expect_equal(again, info, "second put_file(path) of the same file")
        keyed = store.put_file(path, key=f"{ns}/big/model.bin")
        _expect_info(keyed, f"{ns}/big/model.bin", data, "put_file(path, key)")
        _expect_equal(path.read_bytes(), data, "put_file changed the source file")
    _expect_equal(store.get(info.key, sha256=info.sha256), data, "get(content key)")
    _expect_equal(store.get(keyed.key, sha256=keyed.sha256), data, "get(key)")


def check_put_file_move(store: ArtifactStore) -> None:
    """``put_file(..., move=True)`` stores the same bytes as a copy would, under a key and
    content-addressed; whatever becomes of the source file, the artifact reads back intact."""
    ns = _namespace()
    data = _random_blob(_BIG)
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        path = Path(folder) / "batch.parquet"
        path.write_bytes(data)
        keyed = store.put_file(path, key=f"{ns}/moved/batch.parquet", move=True)
        _expect_info(keyed, f"{ns}/moved/batch.parquet", data, "put_file(path, key, move=True)")
        path.write_bytes(data)
        addressed = store.put_file(path, move=True)
        _expect_info(addressed, _content_key(data), data, "put_file(path, move=True)")
    _expect_equal(store.get(keyed.key, sha256=keyed.sha256), data, "get(moved key)")
    _expect_equal(store.get(addressed.key, sha256=addressed.sha256), data, "get(moved content)")
    _expect_equal(store.list(f"{ns}/"), [keyed.key], "list(namespace) after a moved put")


def check_get_with_wrong_sha256_raises(store: ArtifactStore) -> None:
    """``get(key, sha256)`` with a sha256 that does not match raises :class:`IntegrityError`."""
    ns = _namespace()
    data = _random_blob()
    info = store.put(data, key=f"{ns}/blob.bin")
    with _raises(IntegrityError, "get with a wrong sha256"):
        store.get(info.key, sha256="0" * 64)
    with _raises(IntegrityError, "get with the sha256 of other bytes"):
        store.get(info.key, sha256=_sha(data + b"x"))
    _expect_equal(store.get(info.key, sha256=info.sha256), data, "get with the right sha256")


def check_download_round_trip(store: ArtifactStore) -> None:
    """``download`` writes the bytes (verified), replaces the target whole or not at all."""
    ns = _namespace()
    data = _random_blob(200_000)
    info = store.put(data, key=f"{ns}/download.bin")
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        target = Path(folder) / "out.bin"
        store.download(info.key, target, sha256=info.sha256)
        _expect_equal(target.read_bytes(), data, "downloaded bytes (verified)")
        target.write_bytes(b"previous contents")
        store.download(info.key, target)
        _expect_equal(target.read_bytes(), data, "download over an existing file")
        target.write_bytes(b"previous contents")
        with _raises(IntegrityError, "download with a wrong sha256"):
            store.download(info.key, target, sha256="f" * 64)
        _expect_equal(target.read_bytes(), b"previous contents", "target after failed download")
        _expect_equal(os.listdir(folder), ["out.bin"], "files left by download")


def check_overwrite_is_atomic(store: ArtifactStore) -> None:
    """``put`` to an existing explicit key replaces it; readers never see a partial blob.

    Explicit keys are always written, also under ``objects/``: only ``put`` *without* a key may
    skip the upload of bytes that are already stored.
    """
    ns = _namespace()
    versions = [bytes([n]) * 300_000 + _random_blob(1000) for n in range(4)]
    digests = {_sha(v) for v in versions}
    for key in (f"{ns}/model.bin", f"objects/{ns}/model.bin"):
        store.put(versions[0], key=key)
        store.put(versions[1], key=key)
        _expect_equal(store.get(key), versions[1], f"get({key!r}) after overwrite")

        seen = _read_while(store, key, functools.partial(_put_all, store, key, versions * 2))
        torn = [digest for digest in seen if digest not in digests]
        _expect(not torn, f"get() returned {len(torn)} partial or mixed blobs during overwrite")
        _expect_equal(store.get(key), versions[-1], "get() after the last put")


def _put_all(store: ArtifactStore, key: str, blobs: list[bytes]) -> None:
    for blob in blobs:
        store.put(blob, key=key)


def _read_while(store: ArtifactStore, key: str, write: Callable[[], None]) -> list[str]:
    """Run ``write()`` while another thread keeps reading ``key``; the sha256 of every read."""
    seen: list[str] = []
    failures: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(_sha(store.get(key)))
        except Exception as exc:  # noqa: BLE001 - reported by the calling thread
            failures.append(exc)

    reader = threading.Thread(target=read, name="conformance-reader", daemon=True)
    reader.start()
    try:
        write()
    finally:
        done.set()
        reader.join(timeout=60)
    _expect(not reader.is_alive(), "reader thread did not finish")
    _expect(not failures, f"get() while overwriting raised {failures[:1]!r}")
    _expect(bool(seen), "reader thread read nothing")
    return seen


def check_binary_round_trip(store: ArtifactStore) -> None:
    """Every byte value survives, content-addressed and under a key."""
    ns = _namespace()
    data = bytes(range(256)) * 8 + bytes(reversed(range(256))) + _random_blob(16)
    info = store.put(data)
    _expect_equal(store.get(info.key, sha256=_sha(data)), data, "get(content key)")
    keyed = store.put(data, key=f"{ns}/all-bytes.bin")
    _expect_equal(store.get(keyed.key, sha256=keyed.sha256), data, "get(key)")
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        target = Path(folder) / "out.bin"
        store.download(keyed.key, target, sha256=keyed.sha256)
        _expect_equal(target.read_bytes(), data, "downloaded bytes")


def check_empty_blob(store: ArtifactStore) -> None:
    """An empty blob is an artifact like any other."""
    ns = _namespace()
    info = store.put(b"")
    _expect_info(info, f"objects/{_EMPTY_SHA256[:2]}/{_EMPTY_SHA256}", b"", "put(b'')")
    _expect_equal(store.get(info.key, sha256=_EMPTY_SHA256), b"", "get(empty content key)")
    key = f"{ns}/empty.bin"
    _expect_info(store.put(b"", key=key), key, b"", "put(b'', key)")
    _expect(store.exists(key), "exists(key) of an empty blob")
    _expect_equal(store.get(key, sha256=_EMPTY_SHA256), b"", "get(key) of an empty blob")
    _expect_equal(store.list(f"{ns}/"), [key], "list() with an empty blob")
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        source = Path(folder) / "empty.bin"
        source.write_bytes(b"")
        from_file = store.put_file(source, key=f"{ns}/empty-file.bin")
        _expect_info(from_file, f"{ns}/empty-file.bin", b"", "put_file(empty file, key)")
        target = Path(folder) / "out.bin"
        target.write_bytes(b"not empty")
        store.download(key, target, sha256=_EMPTY_SHA256)
        _expect_equal(target.read_bytes(), b"", "downloaded empty blob")
