"""Every artifact store passes the same conformance suite (decisionloop.testing)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from decisionloop.backends.artifacts.base import ArtifactStore
from decisionloop.backends.artifacts.local import LocalArtifactStore
from decisionloop.backends.artifacts.s3 import S3ArtifactStore
from decisionloop.errors import Invalid, NotFound, Unavailable
from decisionloop.testing.artifact_conformance import (
    ARTIFACT_STORE_CHECKS,
    TAMPER_CHECKS,
    ArtifactStoreCheck,
    Tamper,
    TamperCheck,
    check_artifact_store,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


def _raw_client(env: dict[str, str]) -> S3Client:
    """A plain boto3 client, independent of the store, for set-up, tampering and clean-up."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def _s3_store(env: dict[str, str], url: str, **overrides: Any) -> S3ArtifactStore:
    settings: dict[str, Any] = {
        "endpoint_url": env["S3_ENDPOINT_URL"],
        "region": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        "access_key_id": env["AWS_ACCESS_KEY_ID"],
        "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    settings.update(overrides)
    return S3ArtifactStore(url, **settings)


def _bucket_keys(client: S3Client, bucket: str) -> list[str] | None:
    """Every key in the bucket, or None if there is no such bucket."""
    from botocore.exceptions import ClientError

    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return None
        raise
    return keys


def _drop_bucket(client: S3Client, bucket: str) -> None:
    """Delete the bucket and everything in it (if it exists)."""
    keys = _bucket_keys(client, bucket)
    if keys is None:
        return
    for start in range(0, len(keys), 1000):
        batch: list[ObjectIdentifierTypeDef] = [{"Key": k} for k in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def fresh_bucket(s3_env: dict[str, str]) -> Iterator[str]:
    """A unique bucket name; the bucket (created by the store on first write) is dropped after."""
    bucket = f"dl-conformance-{uuid.uuid4().hex[:12]}"
    yield bucket
    _drop_bucket(_raw_client(s3_env), bucket)


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.s3),
        pytest.param("s3-prefix", marks=pytest.mark.s3),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """A fresh empty store: a folder, a new bucket, or a prefix in a new bucket."""
    if request.param == "local":
        yield LocalArtifactStore((tmp_path / "artifacts").as_uri())
        return
    env: dict[str, str] = request.getfixturevalue("s3_env")
    bucket: str = request.getfixturevalue("fresh_bucket")
    prefix = "team-a/artifacts" if request.param == "s3-prefix" else ""
    s3_store = _s3_store(env, f"s3://{bucket}/{prefix}")
    yield s3_store
    keys = _bucket_keys(_raw_client(env), bucket) or []
    strays = [key for key in keys if not key.startswith(s3_store.prefix)]
    assert strays == [], f"the store wrote outside its prefix {s3_store.prefix!r}"


@pytest.fixture
def tamper(store: ArtifactStore, request: pytest.FixtureRequest) -> Tamper:
    """Overwrite a stored blob without going through the store."""
    if isinstance(store, LocalArtifactStore):

        def tamper_file(key: str, data: bytes) -> None:
            (store.root / key).write_bytes(data)

        return tamper_file
    assert isinstance(store, S3ArtifactStore)
    client = _raw_client(request.getfixturevalue("s3_env"))

    def tamper_object(key: str, data: bytes) -> None:
        client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=data)

    return tamper_object


@pytest.mark.parametrize("check", ARTIFACT_STORE_CHECKS, ids=lambda check: check.__name__)
def test_artifact_store(check: ArtifactStoreCheck, store: ArtifactStore) -> None:
    check(store)


@pytest.mark.parametrize("check", TAMPER_CHECKS, ids=lambda check: check.__name__)
def test_artifact_store_tampering(check: TamperCheck, store: ArtifactStore, tamper: Tamper) -> None:
    check(store, tamper)


def test_checks_share_one_store(tmp_path: Path) -> None:
    """The whole suite runs against one store: checks do not depend on an empty store."""
    store = LocalArtifactStore((tmp_path / "shared").as_uri())

    def tamper(key: str, data: bytes) -> None:
        (store.root / key).write_bytes(data)

    check_artifact_store(store, tamper)
    check_artifact_store(store, tamper)


class _LyingStore(LocalArtifactStore):
    """Skips verification: the suite must notice."""

    def get(self, key: str, sha256: str | None = None) -> bytes:
        return super().get(key)


def test_checks_can_fail(tmp_path: Path) -> None:
    store = _LyingStore((tmp_path / "lying").as_uri())
    from decisionloop.testing.artifact_conformance import check_get_with_wrong_sha256_raises

    with pytest.raises(AssertionError, match="did not raise IntegrityError"):
        check_get_with_wrong_sha256_raises(store)


# -- S3 behaviour outside the Protocol -------------------------------------------------------


def test_s3_import_and_constructor_are_light() -> None:
    code = (
        "import sys\n"
        "from decisionloop.backends.artifacts.s3 import S3ArtifactStore\n"
        "S3ArtifactStore('s3://bucket/prefix', endpoint_url='http://127.0.0.1:1')\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/a/b", "bucket", "a/b/"),
        ("s3://bucket/a/b/", "bucket", "a/b/"),
    ],
)
def test_s3_url(url: str, bucket: str, prefix: str) -> None:
    store = S3ArtifactStore(url)
    assert (store.url, store.bucket, store.prefix) == (url, bucket, prefix)


@pytest.mark.parametrize(
    "url", ["file:///tmp/x", "s3://", "s3:///prefix", "s3://b/../x", "s3://b/a//c", "s3://b?x=1"]
)
def test_s3_bad_url(url: str) -> None:
    with pytest.raises(Invalid):
        S3ArtifactStore(url)


def test_s3_unreachable_is_unavailable(tmp_path: Path) -> None:
    store = S3ArtifactStore(
        "s3://bucket", endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="b"
    )
    for call in (
        lambda: store.put(b"x"),
        lambda: store.get("a.bin"),
        lambda: store.exists("a.bin"),
        lambda: store.list(),
        lambda: store.download("a.bin", tmp_path / "out"),
    ):
        with pytest.raises(Unavailable, match="cannot reach S3") as info:
            call()
        assert "endpoint_url" in info.value.hint
        assert info.value.__cause__ is not None


@pytest.mark.s3
def test_s3_wrong_credentials_are_unavailable(s3_env: dict[str, str], fresh_bucket: str) -> None:
    store = _s3_store(s3_env, f"s3://{fresh_bucket}", secret_access_key="wrong-secret")
    with pytest.raises(Unavailable) as info:
        store.put(b"x")
    assert "credentials" in info.value.hint
    with pytest.raises(Unavailable):
        store.get("a.bin")


@pytest.mark.s3
def test_s3_existing_bucket_and_metadata(s3_env: dict[str, str], fresh_bucket: str) -> None:
    client = _raw_client(s3_env)
    client.create_bucket(Bucket=fresh_bucket)
    store = _s3_store(s3_env, f"s3://{fresh_bucket}/p")
    info = store.put(b"model bytes")
    head = client.head_object(Bucket=fresh_bucket, Key=f"p/{info.key}")
    assert head["Metadata"]["sha256"] == info.sha256
    assert store.list() == [info.key]


@pytest.mark.s3
def test_s3_content_addressed_put_skips_existing(
    s3_env: dict[str, str], fresh_bucket: str, tmp_path: Path
) -> None:
    store = _s3_store(s3_env, f"s3://{fresh_bucket}")
    uploads: list[str] = []
    store.client.meta.events.register(
        "provide-client-params.s3.PutObject",
        lambda params, **_: uploads.append(params["Key"]),
    )
    store.put(b"same")
    store.put(b"same")
    assert len(uploads) == 1
    store.put(b"same", key="explicit.bin")
    store.put(b"same", key="explicit.bin")
    assert len(uploads) == 3
    path = tmp_path / "f.bin"
    path.write_bytes(b"same")
    store.put_file(path)
    assert len(uploads) == 3


@pytest.mark.s3
def test_s3_missing_bucket_reads_as_empty(s3_env: dict[str, str], fresh_bucket: str) -> None:
    store = _s3_store(s3_env, f"s3://{fresh_bucket}")
    assert store.list() == []
    assert not store.exists("a.bin")
    store.delete("a.bin")
    with pytest.raises(NotFound):
        store.get("a.bin")
