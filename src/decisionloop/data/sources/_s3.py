"""Reading objects from an S3-compatible store for the file sources: list, download and hash.

boto3 is imported on first use (``pip install 'decisionloop[s3]'``). Addressing is path-style,
which every S3-compatible server understands. Settings left empty fall back to boto3's own
AWS_* environment variables and config files.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from decisionloop.errors import Invalid, NotFound, Unavailable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

    from decisionloop.config import S3Settings

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_CREDENTIALS_HINT = (
    "check the S3 credentials (s3.access_key_id / s3.secret_access_key or AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY) and that they may read the bucket"
)


@dataclass(frozen=True)
class S3Object:
    """One listed object: its key, size, ETag and modification time (epoch seconds)."""

    key: str
    size: int
    etag: str
    mtime: float


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; Invalid without a bucket."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise Invalid(f"not an S3 URL: {url}", hint="use s3://bucket/key or s3://bucket/prefix/")
    return parts.netloc, parts.path.lstrip("/")


class S3Reader:
    """A lazily created S3 client with DecisionLoop's error translation."""

    def __init__(self, settings: S3Settings | None) -> None:
        self.settings = settings
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> S3Client:
        from decisionloop.backends.s3_client import make_s3_client

        settings = self.settings
        return make_s3_client(
            endpoint_url=settings.endpoint_url if settings else None,
            region=settings.region if settings else None,
            access_key_id=settings.access_key_id if settings else None,
            secret_access_key=settings.secret_access_key if settings else None,
        )

    def _where(self, url: str) -> str:
        endpoint = self.settings.endpoint_url if self.settings else None
        return f"{url} ({endpoint})" if endpoint else url

    @contextlib.contextmanager
    def translated(self, url: str) -> Iterator[None]:
        """Turn botocore errors into NotFound (missing bucket or key) or Unavailable."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                what = "bucket" if code == "NoSuchBucket" else "object"
                raise NotFound(
                    f"S3 {what} not found: {url}", hint="check the bucket and key in the URL"
                ) from exc
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise Unavailable(
                    f"S3 refused to read {self._where(url)}: {code}", hint=_CREDENTIALS_HINT
                ) from exc
            raise Unavailable(
                f"S3 request for {self._where(url)} failed: {exc}",
                hint="check the bucket, its region (s3.region) and the server's logs",
            ) from exc
        except NoCredentialsError as exc:
            raise Unavailable(f"no S3 credentials to read {url}", hint=_CREDENTIALS_HINT) from exc
        except BotoCoreError as exc:
            raise Unavailable(
                f"cannot reach S3 for {self._where(url)}: {exc}",
                hint="check s3.endpoint_url (or AWS_ENDPOINT_URL_S3) and that the server is up",
            ) from exc

    def download(self, bucket: str, key: str, target: Path) -> str:
        """Stream one object into ``target``; return the sha256 hex of the bytes written."""
        url = f"s3://{bucket}/{key}"
        with self.translated(url):
            response = self.client.get_object(Bucket=bucket, Key=key)
            digest = hashlib.sha256()
            with target.open("wb") as handle, contextlib.closing(response["Body"]) as body:
                for chunk in body.iter_chunks(1 << 20):
                    digest.update(chunk)
                    handle.write(chunk)
        return digest.hexdigest()

    def list(self, bucket: str, prefix: str) -> list[S3Object]:
        """The objects directly under ``prefix`` (not in deeper "folders")."""
        found: list[S3Object] = []
        with self.translated(f"s3://{bucket}/{prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(
                        S3Object(
                            key=item["Key"],
                            size=int(item.get("Size", 0)),
                            etag=str(item.get("ETag", "")),
                            mtime=item["LastModified"].timestamp(),
                        )
                    )
        return found

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
