"""The AWS side of the Kinesis source: the boto3 client, error translation and backoff.

boto3 is imported on first use (``pip install 'decisionloop[kinesis]'``); credentials come from
boto3's usual sources (``AWS_*`` variables, profiles, roles). For a local server (an explicit
``endpoint_url``) without any credentials, dummy ones are used.

:func:`call` runs one API call and turns boto errors into DecisionLoop's, except two signals a
reader handles itself: :class:`Throttled` (back off, see :func:`next_backoff`) and
:class:`IteratorExpired` (ask for a new shard iterator).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from decisionloop.errors import Forbidden, Invalid, NotFound, Unauthenticated, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

__all__ = [
    "BACKOFF_FIRST_S",
    "BACKOFF_MAX_S",
    "IteratorExpired",
    "Throttled",
    "call",
    "jittered",
    "make_client",
    "next_backoff",
]

#: backoff of a throttled shard: doubled from the first to the last, with jitter
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.1, 5.0
_THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}
)
_UNAUTHENTICATED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
#: the dummy access key (and secret) for a local server when no credentials are configured:
#: kinesalite checks the form of a request's signature, not the key
_LOCAL_KEY = "decisionloop-local"
_CONNECTION_HINT = (
    "check kinesis.endpoint_url and kinesis.region (for a local server: "
    "`bash services/kinesis-up.sh`, then kinesis.endpoint_url: http://127.0.0.1:4567)"
)


class Throttled(Exception):
    """A shard (or the stream) refused a call for now: back off and retry."""


class IteratorExpired(Exception):
    """A shard iterator is older than five minutes: ask for a new one."""


def next_backoff(backoff_s: float) -> float:
    """The backoff after another refusal: doubled, from :data:`BACKOFF_FIRST_S` up to
    :data:`BACKOFF_MAX_S`."""
    return min(max(backoff_s * 2, BACKOFF_FIRST_S), BACKOFF_MAX_S)


def jittered(seconds: float) -> float:
    """A wait with jitter: up to half of it taken off at random."""
    return seconds * (0.5 + random.random() / 2)


def make_client(endpoint_url: str | None, region: str) -> KinesisClient:
    """A Kinesis client for AWS in ``region``, or for the server at ``endpoint_url``."""
    try:
        import boto3
        import botocore.session
        from botocore.config import Config
    except ImportError as exc:
        raise Unavailable(
            "boto3 is not installed", hint="pip install 'decisionloop[kinesis]'"
        ) from exc
    core = botocore.session.get_session()
    if endpoint_url is not None:
        # a local server: never ask the instance metadata service for credentials
        resolver = core.get_component("credential_provider")
        for name in ("iam-role", "container-role"):
            if resolver.get_provider(name) is not None:
                resolver.remove(name)
    session = boto3.session.Session(botocore_session=core, region_name=region)
    key_id = secret = None
    if endpoint_url is not None and session.get_credentials() is None:
        key_id = secret = _LOCAL_KEY
    return session.client(
        "kinesis",
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


def call(
    operation: str,
    request: Callable[[], Any],
    *,
    stream: str,
    endpoint_url: str | None,
    region: str,
) -> Any:
    """Run one API call on ``stream``, translating boto errors into DecisionLoop's (or the two
    internal signals a reader handles itself: throttling and an expired iterator)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        HTTPClientError,
        NoCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    where = endpoint_url or f"AWS {region}"
    try:
        return request()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        _client_error(
            operation, str(error.get("Code", "")), error.get("Message", ""), stream, region
        )
    except NoCredentialsError as exc:
        raise Unauthenticated(
            f"no AWS credentials for Kinesis at {where}",
            hint="set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile or role)",
        ) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise Unavailable(
            f"Kinesis at {where} is not reachable ({operation}): {exc}", hint=_CONNECTION_HINT
        ) from exc
    except BotoCoreError as exc:
        raise Unavailable(
            f"Kinesis {operation} at {where} failed: {exc}", hint=_CONNECTION_HINT
        ) from exc


def _client_error(operation: str, code: str, message: str, stream: str, region: str) -> NoReturn:
    what = f"Kinesis {operation} on stream {stream!r} failed: {code}: {message}"
    if code in _THROTTLED:
        raise Throttled(what)
    if code == "ExpiredIteratorException":
        raise IteratorExpired(what)
    if code == "ResourceNotFoundException":
        raise NotFound(
            f"Kinesis stream {stream!r} not found ({message})",
            hint=f"create the stream, or check the name and kinesis.region ({region})",
        )
    if code in _UNAUTHENTICATED:
        raise Unauthenticated(what, hint="check the AWS credentials (AWS_ACCESS_KEY_ID ...)")
    if code == "AccessDeniedException":
        raise Forbidden(what, hint="the credentials need kinesis:GetRecords and ListShards")
    if code in ("InvalidArgumentException", "ValidationException"):
        raise Invalid(what, hint="a checkpoint from another stream? see stream_checkpoints")
    raise Unavailable(what, hint=_CONNECTION_HINT)
