"""A ModelVersion whose documents arrive encoded is the same record once read."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from decisionloop.backends.metadata.records import (
    DEFERRED_FIELDS,
    Encoded,
    ModelVersion,
    stored_model_version,
)

DOCUMENTS: dict[str, Any] = {
    "signature": {"inputs": [{"name": "tenure", "type": "integer"}]},
    "metrics": {"auc": 0.84},
    "params": {"eta": 0.1, "big": 2**70},
    "gate_report": {"passed": True, "results": []},
}


def _version(documents: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        model_name="churn",
        version=7,
        run_id=None,
        artifact_key="models/churn/7",
        artifact_sha256="a" * 64,
        snapshot_hash=None,
        code_version=None,
        gate_passed=True,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        aliases=("champion",),
        **documents,
    )


def _encoded(decoded: list[str]) -> dict[str, Any]:
    def decode(text: str) -> Any:
        decoded.append(text)
        return json.loads(text)

    return {name: Encoded(json.dumps(DOCUMENTS[name]), decode) for name in DEFERRED_FIELDS}


def test_documents_are_decoded_once_on_first_read() -> None:
    decoded: list[str] = []
    version = _version(_encoded(decoded))
    assert decoded == []
    assert version.params == DOCUMENTS["params"]
    assert version.params is version.params
    assert decoded == [json.dumps(DOCUMENTS["params"])]
    assert version.signature == DOCUMENTS["signature"]
    assert len(decoded) == 2


def test_an_encoded_record_equals_the_decoded_one() -> None:
    plain = _version(DOCUMENTS)
    assert _version(_encoded([])) == plain
    assert repr(_version(_encoded([]))) == repr(plain)
    assert pickle.loads(pickle.dumps(_version(_encoded([])))) == plain
    assert dataclasses.replace(_version(_encoded([])), version=7) == plain
    assert dataclasses.asdict(_version(_encoded([])))["gate_report"] == DOCUMENTS["gate_report"]


def test_an_encoded_record_stays_frozen() -> None:
    version = _version(_encoded([]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        version.params = {}  # type: ignore[misc]
    assert version.params == DOCUMENTS["params"]


def test_stored_model_version_builds_the_same_record() -> None:
    plain = _version(DOCUMENTS)
    values = [getattr(plain, f.name) for f in dataclasses.fields(ModelVersion)]
    built = stored_model_version(*values)
    assert type(built) is ModelVersion
    assert built == plain
    with pytest.raises(ValueError, match="zip"):
        stored_model_version(*values[:-1])
