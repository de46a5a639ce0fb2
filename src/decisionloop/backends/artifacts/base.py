"""The artifact store Protocol and the rules every implementation shares."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from decisionloop.errors import IntegrityError, Invalid

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,199}$")
MAX_KEY_LENGTH = 512


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """Where a blob lives, its sha256 and its size in bytes."""

    key: str
    sha256: str
    size: int


@runtime_checkable
class ArtifactStore(Protocol):
    """Blobs addressed by key; ``put`` without a key stores under ``objects/<sha256>``.

    Writes are atomic (a reader sees the whole blob or nothing); ``get`` verifies the sha256
    when one is given and raises :class:`IntegrityError` on mismatch.
    """

    url: str

    def put(self, data: bytes, key: str | None = None) -> ArtifactInfo: ...

    def put_file(self, path: Path, key: str | None = None, *, move: bool = False) -> ArtifactInfo:
        """Store a file's bytes. With ``move=True`` the caller hands the file over: the store
        may move it into place instead of copying it, and the file may be gone afterwards."""
        ...

    def get(self, key: str, sha256: str | None = None) -> bytes: ...

    def download(self, key: str, path: Path, sha256: str | None = None) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> list[str]: ...


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store: absolute, ``..``, empty parts, odd characters."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid(f"artifact key must be 1..{MAX_KEY_LENGTH} characters", hint="use a/b/c.ext")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _KEY_PART.fullmatch(part):
            raise Invalid(
                f"unsafe artifact key {key!r}",
                hint="keys are '/'-separated parts of letters, digits, '.', '_', '=' and '-', "
                "not starting with '.'",
            )
    return key


def validate_prefix(prefix: str) -> str:
    if prefix == "":
        return prefix
    return validate_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")


def content_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify(key: str, data: bytes, sha256: str | None) -> bytes:
    if sha256 is not None:
        actual = sha256_hex(data)
        if actual != sha256:
            raise IntegrityError(
                f"artifact {key!r} has sha256 {actual[:12]}..., expected {sha256[:12]}...",
                hint="the stored bytes were changed or corrupted; re-register the model",
            )
    return data
