"""Conformance checks that change stored bytes behind the artifact store's back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from decisionloop.backends.artifacts.base import ArtifactStore
from decisionloop.errors import IntegrityError
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.artifact_conformance._helpers import (
    Tamper,
    _namespace,
    _random_blob,
)


def check_get_detects_tampering(store: ArtifactStore, tamper: Tamper) -> None:
    """Bytes changed behind the store's back fail ``get`` with the recorded sha256."""
    ns = _namespace()
    data = _random_blob(5000)
    for info in (store.put(data, key=f"{ns}/model.bin"), store.put(data)):
        tamper(info.key, b"tampered " + data[:100])
        _expect_equal(
            store.get(info.key), b"tampered " + data[:100], f"tamper({info.key!r}) had no effect"
        )
        with _raises(IntegrityError, f"get({info.key!r}, recorded sha256) after tampering"):
            store.get(info.key, sha256=info.sha256)


def check_download_detects_tampering(store: ArtifactStore, tamper: Tamper) -> None:
    """Bytes changed behind the store's back fail ``download`` and leave no file behind."""
    ns = _namespace()
    data = _random_blob(5000)
    info = store.put(data, key=f"{ns}/model.bin")
    tamper(info.key, data[:-1] + bytes([data[-1] ^ 1]))
    with tempfile.TemporaryDirectory(prefix="dl-conformance-") as folder:
        target = Path(folder) / "model.bin"
        with _raises(IntegrityError, "download(key, recorded sha256) after tampering"):
            store.download(info.key, target, sha256=info.sha256)
        _expect_equal(os.listdir(folder), [], "files left by a failed download")
