"""Artifacts in an S3-compatible bucket (``s3://bucket/optional/prefix``), verified reads.

boto3 is imported lazily (``pip install 'decisionloop[s3]'``), so ``import decisionloop`` stays
light. A single PUT (or a completed multipart upload) is atomic in S3: readers see the old
object or the new one, never a partial one. Addressing is path-style, which every
S3-compatible server (SeaweedFS, MinIO, Ceph, ...) understands.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlparse

from decisionloop.backends.artifacts.base import (
    ArtifactInfo,
    content_key,
    sha256_file,
    sha256_hex,
    validate_key,
    validate_prefix,
    verify,
)
from decisionloop.errors import IntegrityError, Invalid, NotFound, Unavailable

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

_SHA256_METADATA = "sha256"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_CREDENTIAL_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
    }
)
_CREDENTIALS_HINT = (
    "check the S3 credentials (s3.access_key_id / s3.secret_access_key or AWS_ACCESS_KEY_ID / "
    "AWS_SECRET_ACCESS_KEY) and that they may read and write the bucket"
)


class S3ArtifactStore:
    """An :class:`~decisionloop.backends.artifacts.ArtifactStore` in an S3 bucket.

    The constructor only checks the URL and keeps the settings; the client is created on first
    use and the bucket on first write (if it does not exist yet).
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise Invalid(f"not an S3 artifact URL: {url}", hint="use s3://bucket/optional/prefix")
        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except Invalid as exc:
                raise Invalid(
                    f"unsafe prefix {prefix!r} in S3 artifact URL {url}", hint=exc.hint
                ) from exc
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self._client: S3Client | None = None
        self._bucket_ready = False
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, created on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> S3Client:
        from decisionloop.backends.s3_client import make_s3_client

        return make_s3_client(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def _object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _where(self) -> str:
        return f"{self.url} ({self.endpoint_url})" if self.endpoint_url else self.url

    @contextlib.contextmanager
    def _translated(self, key: str | None = None) -> Iterator[None]:
        """Turn botocore errors into :class:`NotFound` / :class:`Unavailable`."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            if key is not None and code in _MISSING_CODES:
                raise NotFound(f"no artifact {key!r} in {self.url}") from exc
            self._unavailable(exc, code)
        except NoCredentialsError as exc:
            raise Unavailable(f"no S3 credentials for {self.url}", hint=_CREDENTIALS_HINT) from exc
        except BotoCoreError as exc:
            raise Unavailable(
                f"cannot reach S3 at {self._where()}: {exc}",
                hint="check s3.endpoint_url (or S3_ENDPOINT_URL) and that the server is running",
            ) from exc

    def _unavailable(self, exc: Exception, code: str) -> NoReturn:
        if code in _CREDENTIAL_CODES:
            raise Unavailable(
                f"S3 refused the request to {self._where()}: {code}", hint=_CREDENTIALS_HINT
            ) from exc
        raise Unavailable(
            f"S3 request to {self._where()} failed: {exc}",
            hint="check the bucket, its region (s3.region) and the server's logs",
        ) from exc

    def _ensure_bucket(self) -> None:
        """Create the bucket before the first write if it does not exist yet."""
        if self._bucket_ready:
            return
        from botocore.exceptions import ClientError

        client = self.client
        with self._translated():
            try:
                client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in _MISSING_CODES:
                    raise
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    client.create_bucket(**kwargs)
                except ClientError as create_exc:
                    if _error_code(create_exc) != "BucketAlreadyOwnedByYou":
                        raise
        self._bucket_ready = True

    def _exists(self, object_key: str) -> bool:
        from botocore.exceptions import ClientError

        client = self.client
        with self._translated():
            try:
                client.head_object(Bucket=self.bucket, Key=object_key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING_CODES:
                    return False
                raise
        return True

    # -- the Protocol --------------------------------------------------------------------------

    def put(self, data: bytes, key: str | None = None) -> ArtifactInfo:
        digest = sha256_hex(data)
        content_addressed = key is None
        key = validate_key(key) if key is not None else content_key(digest)
        object_key = self._object_key(key)
        self._ensure_bucket()
        if not (content_addressed and self._exists(object_key)):
            with self._translated():
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=object_key,
                    Body=data,
                    Metadata={_SHA256_METADATA: digest},
                )
        return ArtifactInfo(key=key, sha256=digest, size=len(data))

    def put_file(self, path: Path, key: str | None = None, *, move: bool = False) -> ArtifactInfo:
        # ``move`` changes nothing here: the file is uploaded, and the caller removes it
        digest, size = sha256_file(path)
        content_addressed = key is None
        key = validate_key(key) if key is not None else content_key(digest)
        object_key = self._object_key(key)
        self._ensure_bucket()
        if not (content_addressed and self._exists(object_key)):
            # upload_file switches to a multipart upload for big files; the object appears
            # only when the upload is completed, so readers never see a partial blob.
            with self._translated():
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    object_key,
                    ExtraArgs={"Metadata": {_SHA256_METADATA: digest}},
                )
        return ArtifactInfo(key=key, sha256=digest, size=size)

    def get(self, key: str, sha256: str | None = None) -> bytes:
        object_key = self._object_key(key)
        with self._translated(key):
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        return verify(key, data, sha256)

    def download(self, key: str, path: Path, sha256: str | None = None) -> None:
        object_key = self._object_key(key)
        path = Path(path)
        with self._translated(key):
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as handle, contextlib.closing(response["Body"]) as body:
                with self._translated(key):
                    for chunk in body.iter_chunks(1 << 20):
                        digest.update(chunk)
                        handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            actual = digest.hexdigest()
            if sha256 is not None and actual != sha256:
                raise IntegrityError(
                    f"artifact {key!r} has sha256 {actual[:12]}..., expected {sha256[:12]}...",
                    hint="the stored bytes were changed or corrupted; re-register the model",
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._exists(self._object_key(key))

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        from botocore.exceptions import ClientError

        client = self.client
        with self._translated():
            try:
                client.delete_object(Bucket=self.bucket, Key=object_key)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchBucket":
                    raise

    def list(self, prefix: str = "") -> list[str]:
        prefix = validate_prefix(prefix)
        from botocore.exceptions import ClientError

        client = self.client
        keys: list[str] = []
        with self._translated():
            try:
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix + prefix
                )
                for page in pages:
                    for item in page.get("Contents", []):
                        key = item["Key"].removeprefix(self.prefix)
                        if _is_valid_key(key):
                            keys.append(key)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchBucket":
                    raise
                return []
        return sorted(keys)


def _error_code(exc: ClientError) -> str:
    """The S3 error code of a botocore ``ClientError`` (``"NoSuchKey"``, ``"404"``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_valid_key(key: str) -> bool:
    """Foreign objects whose names are not valid keys (``a//b``, ``.x``) are not listed."""
    try:
        validate_key(key)
    except Invalid:
        return False
    return True
