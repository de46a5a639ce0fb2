"""Artifacts in a local folder: atomic writes (temp file + fsync + rename), verified reads."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from decisionloop.backends.artifacts.base import (
    ArtifactInfo,
    content_key,
    sha256_file,
    sha256_hex,
    validate_key,
    validate_prefix,
    verify,
)
from decisionloop.errors import Invalid, NotFound, Unavailable


class LocalArtifactStore:
    """An :class:`~decisionloop.backends.artifacts.ArtifactStore` in a folder (``file:///abs``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        if (
            parsed.scheme != "file"
            or parsed.netloc not in ("", "localhost")
            or not parsed.path.startswith("/")
        ):
            raise Invalid(f"not a local artifact URL: {url}", hint="use file:///absolute/folder")
        self.root = Path(unquote(parsed.path))

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _write_atomic(self, target: Path, writer: object) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except OSError as exc:
            raise Unavailable(
                f"cannot write to {self.root}: {exc}", hint="check the folder's permissions"
            ) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(writer, bytes):
                    handle.write(writer)
                else:
                    assert isinstance(writer, Path)
                    with writer.open("rb") as source:
                        shutil.copyfileobj(source, handle, 1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, data: bytes, key: str | None = None) -> ArtifactInfo:
        digest = sha256_hex(data)
        content_addressed = key is None
        key = validate_key(key) if key is not None else content_key(digest)
        target = self._path(key)
        if not (content_addressed and target.exists()):
            self._write_atomic(target, data)
        return ArtifactInfo(key=key, sha256=digest, size=len(data))

    def put_file(self, path: Path, key: str | None = None, *, move: bool = False) -> ArtifactInfo:
        digest, size = sha256_file(path)
        content_addressed = key is None
        key = validate_key(key) if key is not None else content_key(digest)
        target = self._path(key)
        if content_addressed and target.exists():
            return ArtifactInfo(key=key, sha256=digest, size=size)
        if not (move and self._move_atomic(path, target)):
            self._write_atomic(target, path)
        return ArtifactInfo(key=key, sha256=digest, size=size)

    def _move_atomic(self, path: Path, target: Path) -> bool:
        """Rename ``path`` into place, durably; False when it is on another file system."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(path, target)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise Unavailable(
                f"cannot write to {self.root}: {exc}", hint="check the folder's permissions"
            ) from exc
        _fsync_dir(target.parent)
        return True

    def get(self, key: str, sha256: str | None = None) -> bytes:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"no artifact {key!r} in {self.url}") from exc
        return verify(key, data, sha256)

    def download(self, key: str, path: Path, sha256: str | None = None) -> None:
        """Copy to ``path`` atomically; the bytes verified are the bytes written."""
        self._write_atomic(path, self.get(key, sha256=sha256))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_file():
            path.unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[str]:
        prefix = validate_prefix(prefix)
        if not self.root.exists():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
