"""FileSource and FolderSource on the S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from decisionloop.config import S3Settings, Settings
from decisionloop.data.batches import RawBatch
from decisionloop.data.sources import FileSource, FolderSource, open_source
from decisionloop.errors import Invalid, NotFound, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.s3


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3(s3_env: dict[str, str]) -> S3Settings:
    return S3Settings(
        endpoint_url=s3_env["S3_ENDPOINT_URL"],
        region=s3_env.get("AWS_DEFAULT_REGION", "us-east-1"),
        access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def client(s3_env: dict[str, str]) -> S3Client:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3_env["S3_ENDPOINT_URL"],
        region_name=s3_env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(client: S3Client) -> Iterator[str]:
    """A new bucket for this test, emptied and dropped afterwards."""
    name = f"dl-sources-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def local_file(batch: RawBatch) -> Path:
    assert batch.file is not None
    return Path(batch.file.local_path)


def test_file_source_downloads_and_names_the_content(
    client: S3Client, bucket: str, s3: S3Settings
) -> None:
    data = b"a,b\n1,2\n3,4\n"
    client.put_object(Bucket=bucket, Key="in/data.csv", Body=data)
    url = f"s3://{bucket}/in/data.csv"
    source = FileSource(url, s3=s3)

    (batch,) = list(source.read())

    assert batch.origin == f"{url}#sha256={sha(data)}"
    assert batch.file is not None
    assert batch.file.format == "csv"
    assert batch.file.display == "data.csv"
    path = local_file(batch)
    assert path.read_bytes() == data
    assert path.suffix == ".csv"
    batch.acknowledge()
    assert not path.exists()


def test_close_removes_downloads(client: S3Client, bucket: str, s3: S3Settings) -> None:
    client.put_object(Bucket=bucket, Key="d.parquet", Body=b"PAR1 not really")
    source = FileSource(f"s3://{bucket}/d.parquet", s3=s3)

    (batch,) = list(source.read())
    path = local_file(batch)
    assert path.exists()
    assert batch.file is not None
    assert batch.file.format == "parquet"
    source.close()

    assert not path.exists()
    assert not path.parent.exists()


def test_file_source_origin_changes_with_content_and_done_is_skipped(
    client: S3Client, bucket: str, s3: S3Settings
) -> None:
    url = f"s3://{bucket}/data.csv"
    client.put_object(Bucket=bucket, Key="data.csv", Body=b"a\n1\n")
    done: set[str] = set()

    first = list(FileSource(url, s3=s3, is_done=done.__contains__).read())
    done.update(batch.origin for batch in first)
    again = list(FileSource(url, s3=s3, is_done=done.__contains__).read())
    client.put_object(Bucket=bucket, Key="data.csv", Body=b"a\n2\n")
    changed = list(FileSource(url, s3=s3, is_done=done.__contains__).read())

    assert len(first) == 1
    assert again == []
    new_digest = sha(b"a\n2\n")
    assert [batch.origin for batch in changed] == [f"{url}#sha256={new_digest}"]


def test_file_source_errors_are_typed(client: S3Client, bucket: str, s3: S3Settings) -> None:
    client.put_object(Bucket=bucket, Key="empty.csv", Body=b"")

    with pytest.raises(NotFound, match="not found"):
        list(FileSource(f"s3://{bucket}/missing.csv", s3=s3).read())
    with pytest.raises(NotFound, match="bucket not found"):
        list(FileSource(f"s3://{bucket}-nope/data.csv", s3=s3).read())
    with pytest.raises(Invalid, match="data file is empty"):
        list(FileSource(f"s3://{bucket}/empty.csv", s3=s3).read())
    with pytest.raises(Invalid, match=r"unsupported data file type '\.txt'"):
        list(FileSource(f"s3://{bucket}/notes.txt", s3=s3).read())
    wrong = s3.model_copy(update={"secret_access_key": "wrong"})
    with pytest.raises(Unavailable, match="S3 refused"):
        list(FileSource(f"s3://{bucket}/empty.csv", s3=wrong).read())
    closed_port = s3.model_copy(update={"endpoint_url": "http://127.0.0.1:1"})
    with pytest.raises(Unavailable, match="cannot reach S3"):
        list(FileSource(f"s3://{bucket}/empty.csv", s3=closed_port).read())


def test_folder_source_lists_one_level_in_name_order(
    client: S3Client, bucket: str, s3: S3Settings
) -> None:
    objects = {
        "in/b.csv": b"a\n2\n",
        "in/a.csv": b"a\n1\n",
        "in/c.parquet": b"PAR1",
        "in/_SUCCESS": b"",
        "in/.tmp.csv": b"a\n3\n",
        "in/empty.csv": b"",
        "in/notes.txt": b"x",
        "in/deeper/d.csv": b"a\n4\n",
        "outside.csv": b"a\n5\n",
    }
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    source = FolderSource(f"s3://{bucket}/in", s3=s3)

    batches = list(source.read())

    assert [batch.origin.split("#")[0] for batch in batches] == [
        f"s3://{bucket}/in/a.csv",
        f"s3://{bucket}/in/b.csv",
        f"s3://{bucket}/in/c.parquet",
    ]
    assert [local_file(batch).read_bytes() for batch in batches] == [
        b"a\n1\n",
        b"a\n2\n",
        b"PAR1",
    ]
    source.close()
    assert not any(local_file(batch).exists() for batch in batches)


def test_folder_source_skips_done_objects(client: S3Client, bucket: str, s3: S3Settings) -> None:
    client.put_object(Bucket=bucket, Key="a.csv", Body=b"a\n1\n")
    client.put_object(Bucket=bucket, Key="b.csv", Body=b"a\n2\n")
    digest = sha(b"a\n1\n")
    done = {f"s3://{bucket}/a.csv#sha256={digest}"}
    source = FolderSource(f"s3://{bucket}", s3=s3, is_done=done.__contains__)

    batches = list(source.read())

    assert [batch.file.display for batch in batches if batch.file] == ["b.csv"]
    downloads = list(local_file(batches[0]).parent.iterdir())
    assert downloads == [local_file(batches[0])], "a done object's download was kept"
    source.close()


def test_folder_source_follows_new_objects_until_stopped(
    client: S3Client, bucket: str, s3: S3Settings
) -> None:
    client.put_object(Bucket=bucket, Key="feed/1.csv", Body=b"a\n1\n")
    source = FolderSource(f"s3://{bucket}/feed/", s3=s3, poll_interval=0.1)
    received: queue.Queue[RawBatch] = queue.Queue()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for batch in source.read(follow=True):
                received.put(batch)
                batch.acknowledge()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        first = received.get(timeout=10)
        client.put_object(Bucket=bucket, Key="feed/2.csv", Body=b"a\n2\n")
        second = received.get(timeout=10)
    finally:
        source.stop()
        thread.join(timeout=10)
        source.close()

    assert not thread.is_alive()
    assert errors == []
    assert first.origin.startswith(f"s3://{bucket}/feed/1.csv#")
    assert second.origin.startswith(f"s3://{bucket}/feed/2.csv#")
    assert received.empty()


def test_missing_bucket_for_a_folder_is_not_found(s3: S3Settings) -> None:
    with pytest.raises(NotFound, match="bucket not found"):
        list(FolderSource(f"s3://dl-missing-{uuid.uuid4().hex[:8]}/in/", s3=s3).read())


def test_open_source_uses_the_project_s3_settings(
    client: S3Client, bucket: str, s3: S3Settings
) -> None:
    client.put_object(Bucket=bucket, Key="in/a.csv", Body=b"a\n1\n")
    settings = Settings(s3=s3)

    file = open_source(f"s3://{bucket}/in/a.csv", settings)
    folder = open_source(f"s3://{bucket}/in/", settings)
    try:
        assert isinstance(file, FileSource)
        assert isinstance(folder, FolderSource)
        assert [batch.origin for batch in file.read()] == [batch.origin for batch in folder.read()]
    finally:
        file.close()
        folder.close()


def test_aws_environment_is_honoured_without_settings(
    client: S3Client, bucket: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_object(Bucket=bucket, Key="a.csv", Body=b"a\n1\n")
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, s3_env[name])
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_env.get("AWS_DEFAULT_REGION", "us-east-1"))

    source = FileSource(f"s3://{bucket}/a.csv")
    (batch,) = list(source.read())
    source.close()

    assert batch.origin.endswith(sha(b"a\n1\n"))
