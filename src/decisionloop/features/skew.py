"""Training/serving skew: logged online feature vectors recomputed offline, point in time at
the moment each was served, compared feature by feature."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

#: numbers closer than this (relative, or absolute near zero) are the same value
TOLERANCE = 1e-9
MAX_EXAMPLES = 5
#: the entity frame column holding when each logged lookup was served
SERVED_AT = "decisionloop_served_at"


@dataclass(frozen=True)
class FeatureSkew:
    """One feature: how many logged values were compared and how many differ offline."""

    name: str
    compared: int
    mismatches: int
    #: (entity, online value, offline value) of the first mismatches
    examples: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class SkewReport:
    """Every feature of a service over the sampled lookups."""

    service: str
    rows: int
    features: list[FeatureSkew]

    @property
    def consistent(self) -> bool:
        return all(f.mismatches == 0 for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "rows": self.rows,
            "consistent": self.consistent,
            "features": [
                {
                    "name": f.name,
                    "compared": f.compared,
                    "mismatches": f.mismatches,
                    "rate": f.rate,
                    "examples": [
                        {"entity": e, "online": _jsonable(on), "offline": _jsonable(off)}
                        for e, on, off in f.examples
                    ],
                }
                for f in self.features
            ],
        }


def entity_table(
    logged: Sequence[Mapping[str, Any]], join_keys: Sequence[str], request: Sequence[str]
) -> pa.Table:
    """The logged lookups as an entity frame: join keys, request fields, and the time each
    was served (``decisionloop_served_at``)."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for key in [*join_keys, *request]:
        columns[key] = [entry["row"].get(key) for entry in logged]
    for key in join_keys:
        columns[key] = pa.array([None if v is None else str(v) for v in columns[key]], pa.string())
    columns[SERVED_AT] = pa.array(
        [entry["at_us"] for entry in logged], pa.timestamp("us", tz="UTC")
    )
    return pa.table(columns)


def compare(
    service: str,
    logged: Sequence[Mapping[str, Any]],
    offline: pa.Table,
    outputs: Mapping[str, str],
    join_keys: Sequence[str],
) -> SkewReport:
    """Each output feature's online values (as logged) against the offline recomputation."""
    skews = []
    keys = offline.column(join_keys[0]).to_pylist() if join_keys else [""] * len(logged)
    for name, dtype in outputs.items():
        offline_values = offline.column(name).to_pylist()
        mismatches, examples = 0, list[tuple[str, Any, Any]]()
        for index, entry in enumerate(logged):
            online = entry["features"].get(name)
            if not same(online, offline_values[index], dtype):
                mismatches += 1
                if len(examples) < MAX_EXAMPLES:
                    examples.append((str(keys[index]), online, offline_values[index]))
        skews.append(FeatureSkew(name, len(logged), mismatches, examples))
    return SkewReport(service=service, rows=len(logged), features=skews)


def same(online: Any, offline: Any, dtype: str) -> bool:
    """Equal as the feature's type: numbers within TOLERANCE, times as instants, missing
    (None or NaN) only equal to missing."""
    if _missing(online) or _missing(offline):
        return _missing(online) and _missing(offline)
    if dtype in ("number", "integer"):
        try:
            a, b = float(online), float(offline)
        except (TypeError, ValueError):
            return False
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    if dtype == "datetime":
        import pandas as pd

        try:
            return bool(pd.Timestamp(online, tz=None) == _utc(pd.Timestamp(offline)))
        except (TypeError, ValueError):
            return False
    if dtype == "boolean":
        return bool(online) == bool(offline)
    return str(online) == str(offline)


def _utc(value: Any) -> Any:
    return value.tz_localize("UTC") if value.tzinfo is None else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
