"""Artifact keys, the local store's atomic writes and its file:// URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from decisionloop.backends.artifacts.base import (
    MAX_KEY_LENGTH,
    content_key,
    validate_key,
    validate_prefix,
)
from decisionloop.backends.artifacts.local import LocalArtifactStore
from decisionloop.errors import Invalid, NotFound, Unavailable


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "model.ubj",
        "objects/ab/abcdef",
        "runs/2024-01-01/model_v1.2-final.bin",
        "A/B/C",
        "0",
        "a..b",
        "x" * 200,
        "/".join(["x" * 200, "y" * 200, "z" * (MAX_KEY_LENGTH - 402)]),
    ],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "..",
        ".",
        "a/..",
        "a/../b",
        "a/./b",
        "/abs",
        "a/",
        "a//b",
        ".hidden",
        "a/.hidden",
        "-dash",
        "_under",
        "a\\b",
        "a\x00b",
        "a b",
        "a:b",
        "a\n",
        "a\nb",
        "\na",
        "é",
        "a/~",
        "x" * 201,
        "/".join(["x" * 200, "y" * 200, "z" * (MAX_KEY_LENGTH - 401)]),
    ],
)
def test_unsafe_keys(key: str) -> None:
    with pytest.raises(Invalid) as info:
        validate_key(key)
    assert info.value.hint


@pytest.mark.parametrize(
    ("prefix", "expected"), [("", ""), ("a", "a"), ("a/", "a/"), ("a/b/", "a/b/")]
)
def test_valid_prefixes(prefix: str, expected: str) -> None:
    assert validate_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["/", "../", "/abs", "a/../", ".x/", "a\n/"])
def test_unsafe_prefixes(prefix: str) -> None:
    with pytest.raises(Invalid):
        validate_prefix(prefix)


def test_content_key() -> None:
    digest = "ab" + "0" * 62
    assert content_key(digest) == f"objects/ab/{digest}"
    assert validate_key(content_key(digest)) == content_key(digest)


# -- the local store ---------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalArtifactStore(root.as_uri())
    info = store.put(b"one")
    store.put(b"two", key="a/b.bin")
    store.put(b"three", key="a/b.bin")
    source = tmp_path / "source.bin"
    source.write_bytes(b"four" * 1000)
    store.put_file(source, key="a/c.bin")
    assert _files(root) == sorted([info.key, "a/b.bin", "a/c.bin"])
    assert store.get("a/b.bin") == b"three"


def test_local_failed_write_keeps_old_blob_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    store = LocalArtifactStore(root.as_uri())
    store.put(b"old", key="a/b.bin")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        store.put(b"new", key="a/b.bin")
    monkeypatch.undo()
    assert _files(root) == ["a/b.bin"]
    assert store.get("a/b.bin") == b"old"


def test_local_temp_files_are_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalArtifactStore(root.as_uri())
    store.put(b"x", key="a/b.bin")
    (root / "a" / ".tmp-abc123").write_bytes(b"half a write")
    assert store.list() == ["a/b.bin"]


def test_local_unwritable_folder_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = LocalArtifactStore((blocker / "store").as_uri())
    with pytest.raises(Unavailable) as info:
        store.put(b"x")
    assert info.value.hint


def test_local_missing_root_is_empty(tmp_path: Path) -> None:
    store = LocalArtifactStore((tmp_path / "never-written").as_uri())
    assert store.list() == []
    assert not store.exists("a.bin")
    store.delete("a.bin")
    with pytest.raises(NotFound):
        store.get("a.bin")


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("file:///data/artifacts", "/data/artifacts"),
        ("file://localhost/data/artifacts", "/data/artifacts"),
        ("file:///data/my%20artifacts", "/data/my artifacts"),
        ("file:/data/artifacts", "/data/artifacts"),
    ],
)
def test_local_url(url: str, root: str) -> None:
    store = LocalArtifactStore(url)
    assert store.url == url
    assert store.root == Path(root)


def test_local_url_round_trips_path_as_uri(tmp_path: Path) -> None:
    folder = tmp_path / "with space" / "and%percent"
    assert LocalArtifactStore(folder.as_uri()).root == folder


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/data/artifacts",
        "data/artifacts",
        "s3://bucket/prefix",
        "http://example.com/artifacts",
        "file://otherhost/data",
        "file:relative/folder",
        "file://",
        "FILEX:///data",
    ],
)
def test_local_bad_urls(url: str) -> None:
    with pytest.raises(Invalid) as info:
        LocalArtifactStore(url)
    assert "file:///" in info.value.hint
