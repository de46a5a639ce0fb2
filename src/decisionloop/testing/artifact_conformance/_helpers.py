"""Shared types, constants and assertion helpers of the artifact store conformance checks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore

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
