"""Shared types, constants and assertion helpers of the artifact store conformance checks."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore
from decisionloop.testing._assertions import expect_equal as _expect_equal

#: ``tamper(key, data)``: replace the stored bytes of ``key`` without going through the store.
Tamper = Callable[[str, bytes], None]
ArtifactStoreCheck = Callable[[ArtifactStore], None]
TamperCheck = Callable[[ArtifactStore, Tamper], None]

_BIG = 9 * (1 << 20) + 12_345  # above boto3's 8 MiB multipart threshold, not a multiple of it
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _namespace() -> str:
    """A fresh key prefix, so checks never see each other's artifacts."""
    return f"conformance-{uuid.uuid4().hex[:16]}"


def _random_blob(size: int = 64) -> bytes:
    return os.urandom(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expect_info(info: object, key: str, data: bytes, what: str) -> None:
    if not isinstance(info, ArtifactInfo):
        raise AssertionError(f"{what}: returned {info!r}, not an ArtifactInfo")
    _expect_equal(info.key, key, f"{what}: key")
    _expect_equal(info.sha256, _sha(data), f"{what}: sha256")
    _expect_equal(info.size, len(data), f"{what}: size")


def _content_key(data: bytes) -> str:
    digest = _sha(data)
    return f"objects/{digest[:2]}/{digest}"
