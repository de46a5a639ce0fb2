"""A trained model as stored: a manifest naming hash-verified, pickle-free components.

Layout in the artifact store (all content-addressed)::

    manifest.json  {"format", "flavor", "signature", "threshold", "classes",
                    "components": {"booster": {"key", "sha256"}, "preprocessor": {...}}}
    booster        XGBoost UBJSON
    preprocessor   JSON (see training.preprocess)

The registry records the manifest's sha256; the manifest records each component's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore
from decisionloop.config import ColumnSpec
from decisionloop.data.validation import validate_frame
from decisionloop.errors import IntegrityError, Invalid
from decisionloop.training.preprocess import Preprocessor
from decisionloop.training.xgboost_trainer import XGBoostTrainer

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "decisionloop.model/1"


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to turn raw input columns into scores and labels."""

    preprocessor: Preprocessor
    model: XGBoostTrainer
    inputs: dict[str, ColumnSpec]
    threshold: float
    positive_label: str
    negative_label: str

    def signature(self) -> dict[str, Any]:
        return {
            "inputs": [
                {"name": name, "type": spec.type, "nullable": spec.nullable}
                for name, spec in self.inputs.items()
            ],
            "outputs": [
                {"name": "probability", "type": "number"},
                {"name": "label", "type": "string"},
            ],
            "threshold": self.threshold,
            "classes": [self.negative_label, self.positive_label],
        }

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Validate and coerce raw input columns; extra columns are ignored."""
        required = {name for name in self.inputs if name in self.preprocessor.input_columns}
        return validate_frame(frame, self.inputs, required=required)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        prepared = self.prepare(frame)
        return self.model.predict_proba(self.preprocessor.transform(prepared))

    def labels(self, proba: np.ndarray) -> list[str]:
        return [self.positive_label if p >= self.threshold else self.negative_label for p in proba]

    def save(self, store: ArtifactStore) -> ArtifactInfo:
        booster = store.put(self.model.to_bytes())
        preprocessor = store.put(_json_bytes(self.preprocessor.to_dict()))
        manifest = {
            "format": FORMAT,
            "flavor": "xgboost",
            "signature": self.signature(),
            "components": {
                "booster": {"key": booster.key, "sha256": booster.sha256},
                "preprocessor": {"key": preprocessor.key, "sha256": preprocessor.sha256},
            },
        }
        return store.put(_json_bytes(manifest))

    @classmethod
    def load(cls, store: ArtifactStore, key: str, sha256: str) -> ModelBundle:
        """Load a bundle; every byte is checked against its recorded sha256 before parsing."""
        manifest = _json_load(store.get(key, sha256=sha256), key)
        if manifest.get("format") != FORMAT or manifest.get("flavor") != "xgboost":
            raise Invalid(
                f"unsupported model format {manifest.get('format')!r}/{manifest.get('flavor')!r}",
                hint="the model was saved by another DecisionLoop version",
            )
        parts = manifest["components"]
        booster = store.get(parts["booster"]["key"], sha256=parts["booster"]["sha256"])
        pre = _json_load(
            store.get(parts["preprocessor"]["key"], sha256=parts["preprocessor"]["sha256"]),
            parts["preprocessor"]["key"],
        )
        signature = manifest["signature"]
        negative, positive = signature["classes"]
        return cls(
            preprocessor=Preprocessor.from_dict(pre),
            model=XGBoostTrainer.from_bytes(booster),
            inputs={
                col["name"]: ColumnSpec(type=col["type"], nullable=col["nullable"])
                for col in signature["inputs"]
            },
            threshold=float(signature["threshold"]),
            positive_label=str(positive),
            negative_label=str(negative),
        )


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _json_load(data: bytes, key: str) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"artifact {key!r} is not valid JSON") from exc
    if not isinstance(loaded, dict):
        raise IntegrityError(f"artifact {key!r} is not a JSON object")
    return loaded
