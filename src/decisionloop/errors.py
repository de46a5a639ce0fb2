"""The one error tree of DecisionLoop.

Every error a user can cause or fix is a :class:`DecisionLoopError` carrying a stable ``code``
and a ``hint`` that says what to do about it. Subclasses follow what the caller can do::

    DecisionLoopError
    ├── NotFound       (404 / NOT_FOUND)       the named thing does not exist
    ├── Conflict       (409 / ALREADY_EXISTS)  it exists already, or changed under you
    ├── Invalid        (422 / INVALID_ARGUMENT) the input or the project file is wrong
    │   └── InvalidConfig                      ... with file and key path
    ├── Forbidden      (403 / PERMISSION_DENIED)
    ├── Unauthenticated(401 / UNAUTHENTICATED)
    ├── TooLarge       (413 / RESOURCE_EXHAUSTED)
    ├── Unavailable    (503 / UNAVAILABLE)     a backend cannot be reached
    ├── IntegrityError (500 / DATA_LOSS)       stored bytes do not match their recorded hash
    └── GateFailed     (409 / FAILED_PRECONDITION) a blocking evaluation gate failed

Driver errors are translated where they occur (``raise Unavailable(...) from exc``).
"""

from __future__ import annotations

from typing import ClassVar


class DecisionLoopError(Exception):
    """Base of every DecisionLoop error: a message, a stable ``code`` and a fix ``hint``."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"
    #: user errors exit the CLI with 2; internal ones with 1
    user_error: ClassVar[bool] = True

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def to_problem(self) -> dict[str, object]:
        """An RFC 9457 problem document for HTTP surfaces."""
        return {
            "type": f"https://decisionloop.dev/errors/{self.code}",
            "title": type(self).__name__,
            "status": self.http_status,
            "detail": self.message,
            "code": self.code,
            "hint": self.hint,
        }


class NotFound(DecisionLoopError):
    code = "not_found"
    http_status = 404
    grpc_status = "NOT_FOUND"


class Conflict(DecisionLoopError):
    code = "conflict"
    http_status = 409
    grpc_status = "ALREADY_EXISTS"


class Invalid(DecisionLoopError):
    code = "invalid"
    http_status = 422
    grpc_status = "INVALID_ARGUMENT"


class InvalidConfig(Invalid):
    """The project file or settings are wrong; names the file and the key path."""

    code = "invalid_config"

    def __init__(self, message: str, *, file: str = "", key: str = "", hint: str = "") -> None:
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file = file
        self.key = key


class Forbidden(DecisionLoopError):
    code = "forbidden"
    http_status = 403
    grpc_status = "PERMISSION_DENIED"


class Unauthenticated(DecisionLoopError):
    code = "unauthenticated"
    http_status = 401
    grpc_status = "UNAUTHENTICATED"


class TooLarge(DecisionLoopError):
    code = "too_large"
    http_status = 413
    grpc_status = "RESOURCE_EXHAUSTED"


class Unavailable(DecisionLoopError):
    code = "unavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"


class IntegrityError(DecisionLoopError):
    """Stored bytes do not match the hash recorded for them: never load them."""

    code = "integrity"
    http_status = 500
    grpc_status = "DATA_LOSS"
    user_error = False


class GateFailed(DecisionLoopError):
    code = "gate_failed"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"


__all__ = [
    "Conflict",
    "DecisionLoopError",
    "Forbidden",
    "GateFailed",
    "IntegrityError",
    "Invalid",
    "InvalidConfig",
    "NotFound",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
]
