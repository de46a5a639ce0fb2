"""Platform: the one object every surface (CLI, HTTP, tests) calls. Built from Settings."""

from __future__ import annotations

import getpass
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.config import Settings, load_settings
from decisionloop.refs import ModelRef

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from decisionloop.backends.artifacts.base import ArtifactStore
    from decisionloop.backends.metadata.base import MetadataStore
    from decisionloop.backends.metadata.records import ModelVersion, RegisteredModel
    from decisionloop.data.service import DataService
    from decisionloop.pipelines.loop import LoopResult
    from decisionloop.registry.bundle import ModelBundle

#: called with (step, message) as long work advances
ProgressCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Predictions:
    """Scores and labels for a batch, with the version that produced them."""

    model_name: str
    version: int
    probabilities: np.ndarray
    labels: list[str]
    threshold: float

    def records(self) -> list[dict[str, Any]]:
        return [
            {"probability": float(p), "label": label}
            for p, label in zip(self.probabilities, self.labels, strict=True)
        ]


class Platform:
    """Every DecisionLoop verb for one project; backends are opened lazily and once."""

    def __init__(self, settings: Settings, *, actor: str | None = None) -> None:
        self.settings = settings
        self.actor = actor or f"local:{_user()}"
        self._metadata: MetadataStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._data: DataService | None = None
        self._models: dict[tuple[str, int, str], ModelBundle] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, project_dir: str | Path | None = None, **overrides: Any) -> Platform:
        """Load the project's Settings (see :func:`load_settings`) and build a Platform."""
        return cls(load_settings(project_dir, **overrides))

    @property
    def metadata(self) -> MetadataStore:
        if self._metadata is None:
            from decisionloop.backends.registry import open_metadata_store

            store = open_metadata_store(self.settings.metadata_url, self.settings)
            store.migrate()
            self._metadata = store
        return self._metadata

    @property
    def data(self) -> DataService:
        """Ingestion, snapshots and the quarantine of this project's data set."""
        if self._data is None:
            from decisionloop.data.service import DataService

            self._data = DataService(self)
        return self._data

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            from decisionloop.backends.registry import open_artifact_store

            self._artifacts = open_artifact_store(self.settings.artifacts_url, self.settings)
        return self._artifacts

    # -- the loop -----------------------------------------------------------------------

    def run(self, progress: ProgressCallback | None = None) -> LoopResult:
        """Ingest, validate, train, evaluate, gate, register and promote: one loop iteration."""
        from decisionloop.pipelines.loop import run_loop

        return run_loop(self, progress or (lambda step, message: None))

    # -- registry -------------------------------------------------------------------------

    def list_models(self) -> list[RegisteredModel]:
        return self.metadata.models.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.metadata.models.list_versions(name)

    def get_version(self, ref: ModelRef | str) -> ModelVersion:
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        alias = ref.resolved_alias()
        if alias is not None:
            return self.metadata.models.get_by_alias(ref.name, alias)
        assert ref.version is not None
        return self.metadata.models.get_version(ref.name, ref.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.metadata.models.set_alias(name, alias, version, actor=self.actor)

    def load_model(self, ref: ModelRef | str) -> tuple[ModelVersion, ModelBundle]:
        """Resolve a reference and load its bundle (hash-verified, cached per version)."""
        from decisionloop.registry.bundle import ModelBundle

        version = self.get_version(ref)
        key = (version.model_name, version.version, version.artifact_sha256)
        with self._lock:
            bundle = self._models.get(key)
        if bundle is None:
            bundle = ModelBundle.load(self.artifacts, version.artifact_key, version.artifact_sha256)
            with self._lock:
                self._models[key] = bundle
        return version, bundle

    def predict(self, ref: ModelRef | str, frame: pd.DataFrame) -> Predictions:
        """Score raw rows with the referenced version (default alias ``champion``)."""
        from decisionloop.errors import Invalid

        if len(frame) == 0:
            raise Invalid("no rows to score", hint="send at least one row")
        version, bundle = self.load_model(ref)
        proba = bundle.predict_proba(frame)
        return Predictions(
            model_name=version.model_name,
            version=version.version,
            probabilities=proba,
            labels=bundle.labels(proba),
            threshold=bundle.threshold,
        )

    def close(self) -> None:
        if self._metadata is not None:
            self._metadata.close()
            self._metadata = None

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
