"""A trained model as stored: a manifest naming hash-verified, pickle-free components.

Layout in the artifact store (all content-addressed)::

    manifest.json  {"format", "flavor", "task", "signature",
                    "components": {"model": {"key", "sha256"}, "preprocessor": {...}}}
    model          the trainer's own format (see docs/training.md): XGBoost UBJSON,
                   LightGBM text, a JSON coefficient list, or a canonical skops archive
    preprocessor   JSON (see training.preprocess)

The registry records the manifest's sha256; the manifest records each component's. Manifests
of format ``decisionloop.model/1`` (XGBoost classifiers, component ``booster``) still load.

XGBoost and LightGBM models load for scoring without their libraries: the native tree scorer
(``training.tree_scoring``) reads the verified bytes and scores in numpy, exactly as the
library does; a model it does not support is loaded by its library, as is any model when
``load(..., native=False)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.backends.artifacts.base import ArtifactInfo, ArtifactStore
from decisionloop.config import ColumnSpec
from decisionloop.data.validation import validate_frame
from decisionloop.errors import IntegrityError, Invalid
from decisionloop.training.base import Task, Trainer
from decisionloop.training.preprocess import Preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "decisionloop.model/2"
LEGACY_FORMAT = "decisionloop.model/1"


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to turn raw input columns into scores and labels, or values."""

    preprocessor: Preprocessor
    model: Trainer
    inputs: dict[str, ColumnSpec]
    threshold: float = 0.5
    positive_label: str = ""
    negative_label: str = ""
    #: the feature service that feeds it: {"service", "version", "join_keys", "request"}
    features: dict[str, Any] | None = None

    @property
    def task(self) -> Task:
        return self.model.task

    @property
    def flavor(self) -> str:
        return self.model.flavor

    def signature(self) -> dict[str, Any]:
        inputs = [
            {"name": name, "type": spec.type, "nullable": spec.nullable}
            for name, spec in self.inputs.items()
        ]
        features = {"features": self.features} if self.features is not None else {}
        if self.task == "regression":
            return {
                "task": "regression",
                "inputs": inputs,
                "outputs": [{"name": "value", "type": "number"}],
                **features,
            }
        return {
            **features,
            "task": "classification",
            "inputs": inputs,
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
        """Classification: the positive class's probability for each raw row."""
        prepared = self.prepare(frame)
        return self.model.predict_proba(self.preprocessor.transform(prepared))

    def predict_value(self, frame: pd.DataFrame) -> np.ndarray:
        """Regression: the predicted value for each raw row."""
        prepared = self.prepare(frame)
        return self.model.predict(self.preprocessor.transform(prepared))

    def labels(self, proba: np.ndarray) -> list[str]:
        return [self.positive_label if p >= self.threshold else self.negative_label for p in proba]

    def save(self, store: ArtifactStore) -> ArtifactInfo:
        model = store.put(self.model.to_bytes())
        preprocessor = store.put(_json_bytes(self.preprocessor.to_dict()))
        manifest = {
            "format": FORMAT,
            "flavor": self.flavor,
            "task": self.task,
            "signature": self.signature(),
            "components": {
                "model": {"key": model.key, "sha256": model.sha256},
                "preprocessor": {"key": preprocessor.key, "sha256": preprocessor.sha256},
            },
        }
        return store.put(_json_bytes(manifest))

    @classmethod
    def load(
        cls, store: ArtifactStore, key: str, sha256: str, *, native: bool = True
    ) -> ModelBundle:
        """Load a bundle; every byte is checked against its recorded sha256 before parsing,
        and the model is read by the loader its flavor names (an unknown flavor is refused).

        With ``native`` (the default) an XGBoost or LightGBM model the native tree scorer
        supports is scored without importing its library (which still loads on first use of
        ``model.booster``); otherwise, and for every other flavor, the library loads it."""
        from decisionloop.training.registry import TRAINERS

        manifest = _json_load(store.get(key, sha256=sha256), key)
        form, flavor = manifest.get("format"), manifest.get("flavor")
        if form not in (FORMAT, LEGACY_FORMAT):
            raise Invalid(
                f"unsupported model format {form!r}",
                hint="the model was saved by another DecisionLoop version",
            )
        if flavor not in TRAINERS or (form == LEGACY_FORMAT and flavor != "xgboost"):
            raise Invalid(
                f"unknown model flavor {flavor!r}",
                hint=f"this DecisionLoop loads {', '.join(sorted(TRAINERS))}; "
                "a newer version may know it",
            )
        try:
            parts = manifest["components"]
            model_part = parts["booster" if form == LEGACY_FORMAT else "model"]
            task = manifest.get("task", "classification")
            signature = manifest["signature"]
            inputs = {
                col["name"]: ColumnSpec(type=col["type"], nullable=col["nullable"])
                for col in signature["inputs"]
            }
            model_key, model_sha = model_part["key"], model_part["sha256"]
            pre_key, pre_sha = parts["preprocessor"]["key"], parts["preprocessor"]["sha256"]
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"the manifest {key!r} is malformed: {exc}") from exc
        model = _load_model(flavor, store.get(model_key, sha256=model_sha), native=native)
        if model.task != task:
            raise IntegrityError(
                f"the manifest says {task!r} but the stored {flavor} model is {model.task!r}"
            )
        preprocessor = Preprocessor.from_dict(
            _json_load(store.get(pre_key, sha256=pre_sha), pre_key)
        )
        features = signature.get("features")
        if task == "regression":
            return cls(preprocessor=preprocessor, model=model, inputs=inputs, features=features)
        negative, positive = signature["classes"]
        return cls(
            preprocessor=preprocessor,
            model=model,
            inputs=inputs,
            threshold=float(signature["threshold"]),
            positive_label=str(positive),
            negative_label=str(negative),
            features=features,
        )


def _load_model(flavor: str, data: bytes, *, native: bool) -> Trainer:
    """The model read from its verified bytes: natively when asked and supported."""
    if native:
        from decisionloop.training.tree_scoring import NATIVE_MODELS, load_native

        if flavor in NATIVE_MODELS:
            scored = load_native(flavor, data)
            if scored is not None:
                return scored
    from decisionloop.training.registry import TRAINERS

    return TRAINERS[flavor].from_bytes(data)


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
