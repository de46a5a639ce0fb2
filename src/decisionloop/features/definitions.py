"""Feature store definitions: entities, feature views, on-demand feature views and services.

Frozen, keyword-only and validated; written under ``features:`` in ``decisionloop.yaml`` or
built in a Python module the file names (``features.module``), which lists them explicitly in
a ``definitions`` list. Each has a ``version``: the hash of its definition, so a change is a
new version that ``decisionloop features plan`` shows and ``apply`` records.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from decisionloop.data.contract import ColumnType

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureView",
    "OnDemandFeatureView",
    "parse_duration",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta | None:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"``, seconds as a number, or a
    timedelta; ``None`` means no limit."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as '30d'")
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. '30d', '12h', '90m', '45s', '2w')")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:  # inf, or more than timedelta's ~2.7 million years
        raise ValueError(f"duration {value!r} is too long") from exc


def _duration_text(value: timedelta | None) -> str | None:
    if value is None:
        return None
    micros = value // timedelta(microseconds=1)
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit] * 1_000_000
        if micros % size == 0:
            return f"{micros // size}{unit}"
    # exact: seconds with up to six decimals (parse_duration reads it back to the microsecond)
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}s"


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "a name starts with a letter or '_' and holds only letters, digits and '_'"
            )
        return value

    def spec(self) -> dict[str, Any]:
        """The definition as JSON (what ``apply`` records)."""
        return self.model_dump(mode="json")

    @property
    def version(self) -> str:
        """A hash of the whole definition: any change is a new version (the order of
        features and outputs too, which orders a service's columns)."""
        return _digest(_ordered(self.spec()))


def _ordered(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec plus the key order of its mappings, which sorted JSON would lose."""
    order = {key: list(value) for key, value in spec.items() if isinstance(value, dict)}
    return {**spec, "_order": order}


def _digest(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Entity(_Definition):
    """A business object features describe (a customer), identified by its join key."""

    join_key: str = Field(description="The column naming the entity, e.g. customer_id.")


class FeatureView(_Definition):
    """Features of an entity over time, read from an ingested data set.

    ``ttl`` bounds how old a value may be: at time t a row with event time older than
    t - ttl is missing (offline and online alike), never silently stale."""

    entity: str
    source: str = Field(description="The ingested data set the features are read from.")
    timestamp: str = Field(description="The source column with each row's event time.")
    features: dict[str, ColumnType] = Field(min_length=1)
    ttl: timedelta | None = None
    created_timestamp: str | None = Field(
        default=None,
        description="Tie-break for equal event times: the row created last wins.",
    )
    online: bool = Field(default=True, description="Materialize into the online store.")

    @field_validator("ttl", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        ttl = parse_duration(value)
        if ttl is not None and ttl.total_seconds() <= 0:
            raise ValueError("ttl must be positive (omit it for no limit)")
        return ttl

    @field_serializer("ttl")
    def _ttl_text(self, value: timedelta | None) -> str | None:
        return _duration_text(value)

    @property
    def data_version(self) -> str:
        """What decides the stored values (not the TTL, owner or description): materialized
        rows of another data version are rebuilt."""
        parts = {
            "source": self.source,
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
            "features": self.features,
            "entity": self.entity,
        }
        return _digest(parts)


class OnDemandFeatureView(_Definition):
    """Features computed at request time from stored features and request fields, by the same
    code offline (training sets) and online (serving): SQL expressions (DuckDB) or a Python
    function, row by row (``row``: dict -> dict) or on a whole frame (``vectorized``:
    DataFrame -> DataFrame)."""

    sources: list[str] = Field(
        default_factory=list, description="Feature views whose features it reads."
    )
    request: dict[str, ColumnType] = Field(
        default_factory=dict, description="Fields the request (or entity frame) carries."
    )
    outputs: dict[str, ColumnType] = Field(min_length=1)
    sql: dict[str, str] | None = Field(
        default=None, description="Output -> a SQL expression over the inputs."
    )
    function: str | Callable[..., Any] | None = Field(
        default=None, description="`module:function` in the project folder, or a callable."
    )
    mode: Literal["row", "vectorized"] = "vectorized"

    @field_validator("sql")
    @classmethod
    def _sql_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            for name, expression in value.items():
                if ";" in expression:
                    raise ValueError(f"the expression of {name!r} must be one expression, no ';'")
        return value

    @field_serializer("function")
    def _function_text(self, value: str | Callable[..., Any] | None) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', '?')}"

    def check(self) -> None:
        """Exactly one of ``sql`` and ``function``, and SQL names every output."""
        if (self.sql is None) == (self.function is None):
            raise ValueError(f"on-demand view {self.name!r} needs exactly one of sql, function")
        if self.sql is not None and set(self.sql) != set(self.outputs):
            raise ValueError(
                f"on-demand view {self.name!r}: `sql` must give one expression per output "
                f"(outputs: {', '.join(self.outputs)})"
            )

    def version_with(self, function: Callable[..., Any] | None) -> str:
        """The version, counting the function's source code: editing it is a new version."""
        document = _ordered(self.spec())
        if function is not None:
            try:
                document["function_source"] = inspect.getsource(function)
            except (OSError, TypeError):
                document["function_source"] = None
        return _digest(document)


class FeatureService(_Definition):
    """The features a model consumes: ``view`` (all its features) or ``view:feature``."""

    features: list[str] = Field(min_length=1)
