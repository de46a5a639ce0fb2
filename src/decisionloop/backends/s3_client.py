"""One way to build a boto3 S3 client: path-style addressing, bounded timeouts and retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from decisionloop.errors import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_s3_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> S3Client:
    """A client for S3 or an S3-compatible server; unset credentials fall back to boto3's
    usual sources (AWS_* variables, profiles, roles)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise Unavailable("boto3 is not installed", hint="pip install 'decisionloop[s3]'") from exc
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    config = Config(
        s3={"addressing_style": "path"},
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)
