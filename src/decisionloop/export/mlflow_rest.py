"""A small client of MLflow's REST API (``/api/2.0/mlflow/...``), on the standard library.

DecisionLoop never imports ``mlflow``: its pins clash with ours and it pulls in a web framework.
The REST API is stable and documented, and export needs about fifteen of its endpoints. Errors
come back as DecisionLoop errors: a server that cannot be reached is :class:`Unavailable`, its
``error_code`` answers map to the subclass that says what the caller can do.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from decisionloop.errors import (
    Conflict,
    DecisionLoopError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
)

Method = Literal["GET", "POST", "PATCH", "DELETE"]
API_PREFIX = "/api/2.0/mlflow/"
#: statuses worth another try, as MLflow's own client does (with backoff)
RETRY_STATUSES = frozenset({429, 502, 503, 504})

_BY_ERROR_CODE: dict[str, type[DecisionLoopError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "NOT_FOUND": NotFound,
    "RESOURCE_ALREADY_EXISTS": Conflict,
    "INVALID_PARAMETER_VALUE": Invalid,
    "INVALID_STATE": Conflict,
    "BAD_REQUEST": Invalid,
    "PERMISSION_DENIED": Forbidden,
    "UNAUTHENTICATED": Unauthenticated,
    "RESOURCE_EXHAUSTED": Unavailable,
    "TEMPORARILY_UNAVAILABLE": Unavailable,
}
_BY_STATUS: dict[int, type[DecisionLoopError]] = {
    400: Invalid,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


@dataclass(frozen=True)
class MLflowCredentials:
    """How to authenticate, as MLflow clients do: a bearer token (``MLFLOW_TRACKING_TOKEN``)
    or a user name and password (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``)."""

    token: str | None = None
    username: str | None = None
    password: str | None = None
    #: skip TLS certificate checks (``MLFLOW_TRACKING_INSECURE_TLS``)
    insecure_tls: bool = False

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None without credentials."""
        if self.token:
            return f"Bearer {self.token}"
        if self.username:
            pair = f"{self.username}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None


class MLflowRestClient:
    """JSON over HTTP to one MLflow tracking server; ``call`` is the only verb."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        credentials: MLflowCredentials | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
    ) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.credentials = credentials or MLflowCredentials()
        self.timeout_s = timeout_s
        self.retries = retries

    def call(self, method: Method, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        """``endpoint`` under ``/api/2.0/mlflow/``; GET sends ``body`` as the query string,
        the other methods as JSON. Returns the decoded JSON answer."""
        scheme = urllib.parse.urlsplit(self.tracking_uri).scheme
        if scheme not in ("http", "https"):
            raise Invalid(
                f"tracking URI {self.tracking_uri!r} is not an http(s) URL",
                hint="give the MLflow server's address, e.g. http://127.0.0.1:5000",
            )
        url = f"{self.tracking_uri}{API_PREFIX}{endpoint}"
        data = None
        if method == "GET":
            if body:
                url += "?" + urllib.parse.urlencode(
                    {k: v for k, v in body.items() if v is not None}, doseq=True
                )
        else:
            data = json.dumps(body or {}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        authorization = self.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        for attempt in range(self.retries + 1):
            # the scheme is checked above: http(s) only
            request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(  # noqa: S310
                    request, timeout=self.timeout_s, context=self._tls()
                ) as response:
                    return _decode(response.read(), url)
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code in RETRY_STATUSES and attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise _server_error(exc.code, payload, method, endpoint) from exc
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise Unavailable(
                    f"MLflow server {self.tracking_uri} is unreachable: {reason}",
                    hint="start it (mlflow server ...) or check --tracking-uri",
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _tls(self) -> ssl.SSLContext | None:
        if not self.tracking_uri.startswith("https://"):
            return None
        context = ssl.create_default_context()
        if self.credentials.insecure_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _decode(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise Unavailable(
            f"{url} did not answer JSON",
            hint="is --tracking-uri the address of an MLflow tracking server?",
        ) from exc


def _server_error(status: int, payload: bytes, method: str, endpoint: str) -> DecisionLoopError:
    """The DecisionLoop error for an MLflow error answer (one line, with MLflow's message)."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    code, message = "", ""
    if isinstance(document, dict):
        code = str(document.get("error_code", ""))
        message = str(document.get("message", ""))
    if not message:
        message = payload.decode("utf-8", "replace")[:200] or f"HTTP {status}"
    message = " ".join(message.split())
    kind = _BY_ERROR_CODE.get(code) or _BY_STATUS.get(status) or Unavailable
    hints = {
        Unauthenticated: "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD",
        Forbidden: "ask the MLflow server's administrator for write access",
        NotFound: "is --tracking-uri the address of an MLflow tracking server?",
        Unavailable: "check the MLflow server's logs and try again",
    }
    return kind(
        f"MLflow {method} {endpoint} answered {status} {code or 'error'}: {message}",
        hint=hints.get(kind, "MLflow refused the request as sent; see its message"),
    )
