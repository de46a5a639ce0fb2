"""Conformance checks of artifact store keys: existence, deletion, listing and safety."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from decisionloop.backends.artifacts.base import ArtifactStore
from decisionloop.errors import Invalid, NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.artifact_conformance._helpers import (
    _EMPTY_SHA256,
    _content_key,
    _namespace,
    _random_blob,
)

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
