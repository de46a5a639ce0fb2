"""A conformance suite for :class:`~decisionloop.backends.artifacts.ArtifactStore` implementations.

In the style of scikit-learn's ``check_estimator``: every check is a plain function taking a
store and raising :class:`AssertionError` (or an unexpected exception) when the store does not
behave like the Protocol says. Run them one by one from your own tests::

    import pytest
    from decisionloop.testing.artifact_conformance import ARTIFACT_STORE_CHECKS

    @pytest.mark.parametrize("check", ARTIFACT_STORE_CHECKS, ids=lambda c: c.__name__)
    def test_my_store(check, tmp_path):
        check(MyStore(...))

or all at once with :func:`check_artifact_store`. The checks work on a store that already holds
other artifacts: each one writes under its own fresh key prefix (and content-addressed blobs are
random), so they can share one store, in any order. They do not clean up after themselves.

Detecting a blob changed behind the store's back needs a way to change it there: the
:data:`TAMPER_CHECKS` take, besides the store, a :data:`Tamper` function
``tamper(key, data)`` that overwrites the stored bytes of ``key`` without going through the
store (e.g. writing the file, or a raw ``put_object``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore
from decisionloop.errors import IntegrityError, Invalid, NotFound

#: ``tamper(key, data)``: replace the stored bytes of ``key`` without going through the store.
Tamper = Callable[[str, bytes], None]
ArtifactStoreCheck = Callable[[ArtifactStore], None]
TamperCheck = Callable[[ArtifactStore, Tamper], None]

#: Keys every store must refuse with :class:`~decisionloop.errors.Invalid`.
UNSAFE_KEYS: tuple[str, ...] = (
    "../x",
    "/abs",
    "a//b",
    "a/../b",
    "a/./b",
    ".hidden",
    "a/.hidden",
    "",
    "a/",
    "a\\b",
    "a\x00b",
    "a\nb",
    "a\n",
    "x" * 513,
)

_BIG = 9 * (1 << 20) + 12_345  # above boto3's 8 MiB multipart threshold, not a multiple of it
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# -- helpers ---------------------------------------------------------------------------------


def _namespace() -> str:
    """A fresh key prefix, so checks never see each other's artifacts."""
    return f"conformance-{uuid.uuid4().hex[:16]}"


def _random_blob(size: int = 64) -> bytes:
    return os.urandom(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _show(value: object) -> str:
    if isinstance(value, bytes) and len(value) > 32:
        return f"<{len(value)} bytes, sha256 {_sha(value)[:12]}...>"
    return repr(value)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {_show(actual)}, expected {_show(expected)}")


@contextlib.contextmanager
def _raises(error: type[BaseException], what: str) -> Iterator[None]:
    try:
        yield
    except error:
        return
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__}({exc}), expected {error.__name__}"
        ) from exc
    raise AssertionError(f"{what}: did not raise {error.__name__}")


def _expect_info(info: object, key: str, data: bytes, what: str) -> None:
    if not isinstance(info, ArtifactInfo):
        raise AssertionError(f"{what}: returned {info!r}, not an ArtifactInfo")
    _expect_equal(info.key, key, f"{what}: key")
    _expect_equal(info.sha256, _sha(data), f"{what}: sha256")
    _expect_equal(info.size, len(data), f"{what}: size")


def _content_key(data: bytes) -> str:
    digest = _sha(data)
    return f"objects/{digest[:2]}/{digest}"


# -- checks ----------------------------------------------------------------------------------


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


def check_missing_key_raises_not_found(store: ArtifactStore) -> None:
    """``get`` and ``download`` of a key never written raise :class:`NotFound`."""
    ns = _namespace()
    missing = [f"{ns}/missing.bin", _content_key(_random_blob())]
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        target = Path(folder) / "out.bin"
        for key in missing:
            with _raises(NotFound, f"get({key!r})"):
                store.get(key)
            with _raises(NotFound, f"get({key!r}, sha256)"):
                store.get(key, sha256=_EMPTY_SHA256)
            with _raises(NotFound, f"download({key!r})"):
                store.download(key, target)
            _expect_equal(os.listdir(folder), [], "download of a missing key left files")


def check_prefix_of_a_key_is_not_an_artifact(store: ArtifactStore) -> None:
    """``a/b`` is not an artifact because ``a/b/c`` is: not there, not found, delete is a no-op."""
    ns = _namespace()
    data = _random_blob()
    store.put(data, key=f"{ns}/folder/blob.bin")
    for key in (f"{ns}/folder", ns):
        _expect(not store.exists(key), f"exists({key!r}) for a mere prefix")
        with _raises(NotFound, f"get({key!r}) of a mere prefix"):
            store.get(key)
        with (
            tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder,
            _raises(NotFound, f"download({key!r}) of a mere prefix"),
        ):
            store.download(key, Path(folder) / "out.bin")
        store.delete(key)
    _expect_equal(store.get(f"{ns}/folder/blob.bin"), data, "blob after deleting its prefix")


def check_exists_before_and_after(store: ArtifactStore) -> None:
    """``exists`` is false before ``put``, true after it, false again after ``delete``."""
    ns = _namespace()
    key = f"{ns}/exists.bin"
    _expect(not store.exists(key), "exists() before put")
    store.put(b"here", key=key)
    _expect(store.exists(key), "exists() after put")
    store.delete(key)
    _expect(not store.exists(key), "exists() after delete")
    data = _random_blob()
    content = _content_key(data)
    _expect(not store.exists(content), "exists(content key) before put")
    store.put(data)
    _expect(store.exists(content), "exists(content key) after put")


def check_delete_is_idempotent(store: ArtifactStore) -> None:
    """``delete`` removes the blob and does not mind a key that is (already) gone."""
    ns = _namespace()
    key = f"{ns}/delete-me.bin"
    store.delete(key)
    store.put(b"x", key=key)
    store.put(b"keep", key=f"{ns}/keep.bin")
    store.delete(key)
    store.delete(key)
    _expect(not store.exists(key), "exists() after delete")
    with _raises(NotFound, "get() after delete"):
        store.get(key)
    _expect_equal(store.list(f"{ns}/"), [f"{ns}/keep.bin"], "list() after delete")


def check_list_prefixes(store: ArtifactStore) -> None:
    """``list(prefix)`` returns the keys starting with ``prefix``, sorted, and no others."""
    ns = _namespace()
    other = _namespace()
    keys = [
        f"{ns}/b/2.bin",
        f"{ns}/a/sub/3.bin",
        f"{ns}/a/B.bin",
        f"{ns}/a/10.bin",
        f"{ns}/a/9.bin",
        f"{ns}/a-sibling/1.bin",
        f"{ns}/a/1.bin",
        f"{other}/a/1.bin",
    ]
    for key in keys:
        store.put(key.encode(), key=key)
    mine = sorted(k for k in keys if k.startswith(f"{ns}/"))
    in_a = [
        f"{ns}/a/1.bin",
        f"{ns}/a/10.bin",
        f"{ns}/a/9.bin",
        f"{ns}/a/B.bin",
        f"{ns}/a/sub/3.bin",
    ]
    _expect_equal(store.list(f"{ns}/"), mine, f"list({ns + '/'!r})")
    _expect_equal(store.list(f"{ns}/a/"), in_a, f"list({ns + '/a/'!r})")
    _expect_equal(
        store.list(f"{ns}/a"), sorted([*in_a, f"{ns}/a-sibling/1.bin"]), "list(string prefix)"
    )
    _expect_equal(store.list(f"{ns}/a/sub/"), [f"{ns}/a/sub/3.bin"], "list(nested prefix)")
    _expect_equal(store.list(f"{ns}/c/"), [], "list(prefix with no keys)")
    _expect_equal(store.list(f"{other}/"), [f"{other}/a/1.bin"], "list(other namespace)")
    everything = store.list()
    _expect_equal(everything, sorted(everything), "list() is sorted")
    _expect(set(keys) <= set(everything), "list() misses keys that were put")


def check_unsafe_keys_are_invalid(store: ArtifactStore) -> None:
    """Keys that could escape the store or are ambiguous raise :class:`Invalid` everywhere."""
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        source = Path(folder) / "source.bin"
        source.write_bytes(b"data")
        target = Path(folder) / "target.bin"
        for key in UNSAFE_KEYS:
            with _raises(Invalid, f"put(data, {key!r})"):
                store.put(b"data", key=key)
            with _raises(Invalid, f"put_file(path, {key!r})"):
                store.put_file(source, key=key)
            with _raises(Invalid, f"get({key!r})"):
                store.get(key)
            with _raises(Invalid, f"download({key!r})"):
                store.download(key, target)
            with _raises(Invalid, f"exists({key!r})"):
                store.exists(key)
            with _raises(Invalid, f"delete({key!r})"):
                store.delete(key)
        for prefix in ("../", "/abs/", "a/../", ".hidden/"):
            with _raises(Invalid, f"list({prefix!r})"):
                store.list(prefix)
        _expect_equal(sorted(os.listdir(folder)), ["source.bin"], "files left in the folder")


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


# -- checks that change stored bytes behind the store's back ---------------------------------


def check_get_detects_tampering(store: ArtifactStore, tamper: Tamper) -> None:
    """Bytes changed behind the store's back fail ``get`` with the recorded sha256."""
    ns = _namespace()
    data = _random_blob(5000)
    for info in (store.put(data, key=f"{ns}/model.bin"), store.put(data)):
        tamper(info.key, b"tampered " + data[:100])
        _expect_equal(
            store.get(info.key), b"tampered " + data[:100], f"tamper({info.key!r}) had no effect"
        )
        with _raises(IntegrityError, f"get({info.key!r}, recorded sha256) after tampering"):
            store.get(info.key, sha256=info.sha256)


def check_download_detects_tampering(store: ArtifactStore, tamper: Tamper) -> None:
    """Bytes changed behind the store's back fail ``download`` and leave no file behind."""
    ns = _namespace()
    data = _random_blob(5000)
    info = store.put(data, key=f"{ns}/model.bin")
    tamper(info.key, data[:-1] + bytes([data[-1] ^ 1]))
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        target = Path(folder) / "model.bin"
        with _raises(IntegrityError, "download(key, recorded sha256) after tampering"):
            store.download(info.key, target, sha256=info.sha256)
        _expect_equal(os.listdir(folder), [], "files left by a failed download")


#: Every check taking only a store, in a sensible order.
ARTIFACT_STORE_CHECKS: list[ArtifactStoreCheck] = [
    check_implements_protocol,
    check_put_get_round_trip,
    check_content_addressed_put_is_idempotent,
    check_put_with_explicit_key,
    check_put_file_large,
    check_get_with_wrong_sha256_raises,
    check_missing_key_raises_not_found,
    check_prefix_of_a_key_is_not_an_artifact,
    check_exists_before_and_after,
    check_delete_is_idempotent,
    check_list_prefixes,
    check_unsafe_keys_are_invalid,
    check_download_round_trip,
    check_overwrite_is_atomic,
    check_binary_round_trip,
    check_empty_blob,
]

#: Checks that also need a :data:`Tamper` function for the store.
TAMPER_CHECKS: list[TamperCheck] = [
    check_get_detects_tampering,
    check_download_detects_tampering,
]


def check_artifact_store(store: ArtifactStore, tamper: Tamper | None = None) -> None:
    """Run every check against ``store`` (the tamper checks only when ``tamper`` is given)."""
    for check in ARTIFACT_STORE_CHECKS:
        check(store)
    if tamper is not None:
        for tamper_check in TAMPER_CHECKS:
            tamper_check(store, tamper)


__all__ = [
    "ARTIFACT_STORE_CHECKS",
    "TAMPER_CHECKS",
    "UNSAFE_KEYS",
    "ArtifactStoreCheck",
    "Tamper",
    "TamperCheck",
    "check_artifact_store",
    "check_binary_round_trip",
    "check_content_addressed_put_is_idempotent",
    "check_delete_is_idempotent",
    "check_download_detects_tampering",
    "check_download_round_trip",
    "check_empty_blob",
    "check_exists_before_and_after",
    "check_get_detects_tampering",
    "check_get_with_wrong_sha256_raises",
    "check_implements_protocol",
    "check_list_prefixes",
    "check_missing_key_raises_not_found",
    "check_overwrite_is_atomic",
    "check_prefix_of_a_key_is_not_an_artifact",
    "check_put_file_large",
    "check_put_get_round_trip",
    "check_put_with_explicit_key",
    "check_unsafe_keys_are_invalid",
]
