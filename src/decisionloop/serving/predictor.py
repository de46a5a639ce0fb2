"""The transport-free predictor: request payload in, predictions out. HTTP and gRPC wrap it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid, TooLarge
from decisionloop.refs import ModelRef

if TYPE_CHECKING:
    import pandas as pd

    from decisionloop.platform import Platform

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class PredictResponse:
    request_id: str
    model: str
    version: int
    threshold: float | None  # None for regression models, which have no decision threshold
    predictions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
        }
        if self.threshold is not None:
            document["threshold"] = self.threshold
        document["predictions"] = self.predictions
        return document


class Predictor:
    """Resolves references (alias lookups cached for ``alias_ttl`` seconds) and scores payloads."""

    def __init__(self, platform: Platform, *, max_rows: int, alias_ttl: float = 2.0) -> None:
        self.platform = platform
        self.max_rows = max_rows
        self.alias_ttl = alias_ttl
        self._resolved: dict[ModelRef, tuple[float, ModelRef]] = {}

    def resolve(self, ref: ModelRef) -> ModelRef:
        """Pin an alias to a version; aliases moved elsewhere are seen within ``alias_ttl``."""
        if ref.version is not None:
            return ref
        now = time.monotonic()
        cached = self._resolved.get(ref)
        if cached is not None and now - cached[0] < self.alias_ttl:
            return cached[1]
        version = self.platform.get_version(ref)
        pinned = ModelRef(ref.name, version=version.version)
        self._resolved[ref] = (now, pinned)
        return pinned

    def frame(self, payload: Any) -> pd.DataFrame:
        """Turn ``{"instances": [{...}]}`` or ``{"inputs": {col: [...]}}`` into a DataFrame."""
        import pandas as pd

        if not isinstance(payload, dict):
            raise Invalid("the body must be a JSON object", hint='send {"instances": [{...}]}')
        if "instances" in payload:
            rows = payload["instances"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise Invalid(
                    "`instances` must be a list of objects", hint='{"instances": [{"tenure": 3}]}'
                )
            self._check_size(len(rows))
            for row in rows:
                for column, value in row.items():
                    if not isinstance(value, _SCALARS):
                        raise Invalid(
                            f"column {column!r} holds a {type(value).__name__}, not a scalar"
                        )
            return pd.DataFrame.from_records(rows)
        if "inputs" in payload:
            columns = payload["inputs"]
            if not isinstance(columns, dict) or not all(
                isinstance(v, list) for v in columns.values()
            ):
                raise Invalid(
                    "`inputs` must map column names to lists", hint='{"inputs": {"tenure": [3, 4]}}'
                )
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise Invalid("every column in `inputs` must have the same length")
            self._check_size(lengths.pop() if lengths else 0)
            return pd.DataFrame(columns)
        raise Invalid("the body needs `instances` or `inputs`", hint='send {"instances": [{...}]}')

    def _check_size(self, rows: int) -> None:
        if rows == 0:
            raise Invalid("no rows to score", hint="send at least one instance")
        if rows > self.max_rows:
            raise TooLarge(
                f"{rows} rows exceed the limit of {self.max_rows} per request",
                hint="split the batch or raise serving.max_rows_per_request",
            )

    def predict(
        self, ref: ModelRef, payload: Any, request_id: str | None = None
    ) -> PredictResponse:
        frame = self.frame(payload)
        result = self.platform.predict(self.resolve(ref), frame)
        return PredictResponse(
            request_id=request_id or uuid.uuid4().hex,
            model=result.model_name,
            version=result.version,
            threshold=result.threshold,
            predictions=result.records(),
        )
