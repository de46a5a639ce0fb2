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

    from decisionloop.features.online import OnlineFeatures
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

    def online_features(self, service: str, payload: Any) -> OnlineFeatures:
        """A feature service's online features for ``{"entities": [...]}`` or
        ``{"entity_ids": [...]}`` (a service with one join key)."""
        if not isinstance(payload, dict) or not ("entities" in payload or "entity_ids" in payload):
            raise Invalid(
                "the body needs `entities` or `entity_ids`",
                hint='send {"entity_ids": ["C00001"]} or {"entities": [{"customer_id": "C1"}]}',
            )
        plan, _ = self.platform.features.online_plan(service)
        rows = self.entity_rows(payload, plan.join_keys)
        return self.platform.features.get_online_features(service, rows)

    def entity_rows(
        self, payload: dict[str, Any], join_keys: tuple[str, ...] | list[str]
    ) -> list[dict[str, Any]]:
        """``{"entities": [{"customer_id": "C1", ...}]}`` (join keys and request fields) or
        ``{"entity_ids": ["C1", ...]}`` when there is one join key."""
        if "entities" in payload:
            rows = payload["entities"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise Invalid(
                    "`entities` must be a list of objects",
                    hint='{"entities": [{"customer_id": "C00001"}]}',
                )
            self._check_size(len(rows))
            for row in rows:
                for column, value in row.items():
                    if not isinstance(value, _SCALARS):
                        raise Invalid(f"field {column!r} holds a {type(value).__name__}")
            return rows
        ids = payload["entity_ids"]
        if not isinstance(ids, list) or not all(
            isinstance(i, str | int) and not isinstance(i, bool) for i in ids
        ):
            raise Invalid(
                "`entity_ids` must be a list of ids (text or integers)",
                hint='{"entity_ids": ["C00001", "C00002"]}',
            )
        self._check_size(len(ids))
        if len(join_keys) != 1:
            raise Invalid(
                "`entity_ids` needs features joined on one key "
                f"(these join on {', '.join(join_keys) or 'none'})",
                hint='send {"entities": [{key: value, ...}]} or {"instances": [...]}',
            )
        return [{join_keys[0]: value} for value in ids]

    def predict(
        self, ref: ModelRef, payload: Any, request_id: str | None = None
    ) -> PredictResponse:
        if isinstance(payload, dict) and ("entities" in payload or "entity_ids" in payload):
            pinned = self.resolve(ref)
            _, bundle = self.platform.load_model(pinned)
            rows = self.entity_rows(payload, (bundle.features or {}).get("join_keys") or [])
            result, online = self.platform.predict_entities(pinned, rows)
            keys = online.join_keys
            records = [
                {**{k: online.columns[k][i] for k in keys}, **record}
                for i, record in enumerate(result.records())
            ]
        else:
            frame = self.frame(payload)
            result = self.platform.predict(self.resolve(ref), frame)
            records = result.records()
        return PredictResponse(
            request_id=request_id or uuid.uuid4().hex,
            model=result.model_name,
            version=result.version,
            threshold=result.threshold,
            predictions=records,
        )
