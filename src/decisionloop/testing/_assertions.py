"""Assertions shared by the conformance suites: plain ``AssertionError``s (they still work
under ``python -O``) whose messages say what was checked, what came and what was expected."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

MAX_SHOWN = 300


def show(value: object) -> str:
    """A short rendering: long bytes by size and hash, other long values cut."""
    if isinstance(value, bytes) and len(value) > 32:
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:12]}...>"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def expect_equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {show(actual)}, expected {show(expected)}")


@contextlib.contextmanager
def raises(
    error: type[BaseException] | tuple[type[BaseException], ...], what: str
) -> Iterator[None]:
    """The block must raise ``error`` (one of them, for a tuple)."""
    names = " or ".join(e.__name__ for e in error) if isinstance(error, tuple) else error.__name__
    try:
        yield
    except error:
        return
    except Exception as exc:
        raise AssertionError(
            f"{what}: raised {type(exc).__name__}({exc}), expected {names}"
        ) from exc
    raise AssertionError(f"{what}: did not raise {names}")
