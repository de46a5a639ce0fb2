"""Online retrieval: a feature service's features for a few entities, from the online store,
with the TTL enforced on read and on-demand features computed by the same code as offline."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid, TooLarge
from decisionloop.features.sql_expressions import (
    cast_output,
    compile_expression,
    output_supported,
)
from decisionloop.features.sql_functions import Compiled, Unsupported
from decisionloop.features.transforms import (
    apply_python,
    apply_sql_online,
    cast_scalar,
    typed_inputs,
)

if TYPE_CHECKING:
    import pandas as pd

    from decisionloop.backends.online.base import OnlineStore
    from decisionloop.features.definitions import OnDemandFeatureView
    from decisionloop.features.repo import ResolvedService

#: the most entities one online call may ask for
MAX_ENTITIES = 10_000


@dataclass(frozen=True)
class OnlineFeatures:
    """Features of each requested entity, column by column (None: missing or older than the
    view's TTL), in the order the entities were given."""

    service: str
    columns: dict[str, list[Any]]
    #: which view found each entity (False: no row, or too old), by view name
    found: dict[str, list[bool]]
    join_keys: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "features": self.columns, "found": self.found}

    def unknown_entities(self) -> list[Any]:
        """The entities no view had a (fresh enough) row for: their features are all missing."""
        if not self.found:
            return []
        key = self.join_keys[0] if self.join_keys else None
        flags = list(zip(*self.found.values(), strict=True))
        return [self.columns[key][i] if key else i for i, row in enumerate(flags) if not any(row)]

    def records(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        return [
            dict(zip(names, row, strict=True)) for row in zip(*self.columns.values(), strict=True)
        ]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns)


def entity_keys(plan: ResolvedService, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each join key's values as text (the online store's keys), checked."""
    if not rows:
        raise Invalid("no entities asked for", hint='pass rows such as [{"customer_id": "C1"}]')
    if len(rows) > MAX_ENTITIES:
        raise TooLarge(
            f"{len(rows)} entities exceed the limit of {MAX_ENTITIES} per call",
            hint="split the request",
        )
    keys: dict[str, list[str]] = {}
    for join_key in plan.join_keys:
        values = []
        for index, row in enumerate(rows):
            value = row.get(join_key)
            if value is None or isinstance(value, bool) or not isinstance(value, str | int):
                raise Invalid(
                    f"entity row {index} has no usable {join_key!r} (got {value!r})",
                    hint=f"each row names its {join_key!r} as text or an integer",
                )
            values.append(str(value))
        keys[join_key] = values
    return keys


def retrieve(
    plan: ResolvedService,
    store: OnlineStore,
    join_keys: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
    functions: Mapping[str, Callable[..., Any]],
    *,
    now_us: int | None = None,
) -> OnlineFeatures:
    """Read every view of the service for ``rows``, then compute its on-demand features.
    ``join_keys`` maps each feature view to its entity's join key."""
    keys = entity_keys(plan, rows)
    now = time.time_ns() // 1000 if now_us is None else now_us
    # join keys come back as the caller gave them (an integer key stays an integer)
    columns: dict[str, list[Any]] = {key: [row[key] for row in rows] for key in keys}
    found: dict[str, list[bool]] = {}
    for view, features in plan.views:
        min_ts = None if view.ttl is None else now - view.ttl // timedelta(microseconds=1)
        stored = store.read(view.name, keys[join_keys[view.name]], min_event_ts=min_ts)
        found[view.name] = [row is not None for row in stored]
        for feature in features:
            columns[feature] = [None if row is None else row.values.get(feature) for row in stored]
    if plan.on_demand:
        _on_demand(plan, columns, rows, functions)
    outputs = {key: columns[key] for key in plan.join_keys}
    outputs.update({name: columns[name] for name in plan.outputs})
    return OnlineFeatures(service=plan.name, columns=outputs, found=found, join_keys=plan.join_keys)


def _on_demand(
    plan: ResolvedService,
    columns: dict[str, list[Any]],
    rows: Sequence[Mapping[str, Any]],
    functions: Mapping[str, Callable[..., Any]],
) -> None:
    """Compute each on-demand view for the looked-up rows: compiled SQL and row functions run
    on plain values (fast); vectorized functions, and SQL outside the compiled subset, run on
    a DataFrame exactly as in training."""
    for name, dtype in plan.request.items():
        if any(name not in row for row in rows):
            raise Invalid(
                f"the request field {name!r} ({dtype}) is missing",
                hint=f"send {name!r} with each entity row; on-demand features compute from it",
            )
        columns[name] = [row[name] for row in rows]
    types = {**plan_types(plan), **plan.request}
    views = {view.name: features for view, features in plan.views}
    count = len(rows)
    for odfv in plan.on_demand:
        names = list(
            dict.fromkeys([f for source in odfv.sources for f in views[source]] + [*odfv.request])
        )
        outputs: dict[str, list[Any]] | None = None
        if odfv.sql is not None:
            outputs = _compiled_sql(odfv, names, columns, types, count)
        elif odfv.mode == "row":
            outputs = _row_function(odfv, functions[odfv.name], names, columns, types, count)
        if outputs is None:
            outputs = _on_frame(odfv, functions, names, columns, types)
        columns.update(outputs)


def _typed_rows(
    names: list[str], columns: Mapping[str, list[Any]], types: Mapping[str, str], count: int
) -> list[dict[str, Any]]:
    typed = {n: [typed_scalar(v, types.get(n, "string")) for v in columns[n]] for n in names}
    return [{n: typed[n][i] for n in names} for i in range(count)]


def _compiled_sql(
    odfv: OnDemandFeatureView,
    names: list[str],
    columns: Mapping[str, list[Any]],
    types: Mapping[str, str],
    count: int,
) -> dict[str, list[Any]] | None:
    assert odfv.sql is not None
    compiled = compiled_outputs(odfv, tuple(sorted((n, types.get(n, "string")) for n in names)))
    if compiled is None:
        return None
    rows = _typed_rows(names, columns, types, count)
    try:
        return {
            output: [cast_output(c.evaluate(row), c.kind, odfv.outputs[output]) for row in rows]
            for output, c in compiled.items()
        }
    except Unsupported:  # a value the subset does not mirror (e.g. an overflow): DuckDB decides
        return None


def compiled_outputs(
    odfv: OnDemandFeatureView, input_types: tuple[tuple[str, str], ...]
) -> dict[str, Compiled] | None:
    """Each output's compiled expression, or None when any is outside the subset."""
    assert odfv.sql is not None
    return _compile_all(tuple(odfv.sql.items()), tuple(odfv.outputs.items()), input_types)


@lru_cache(maxsize=256)
def _compile_all(
    sql: tuple[tuple[str, str], ...],
    outputs: tuple[tuple[str, str], ...],
    input_types: tuple[tuple[str, str], ...],
) -> dict[str, Compiled] | None:
    types, declared = dict(input_types), dict(outputs)
    found = {}
    for output, expression in sql:
        compiled = compile_expression(expression, types)
        if compiled is None or not output_supported(compiled.kind, declared[output]):
            return None
        found[output] = compiled
    return found


def _row_function(
    odfv: OnDemandFeatureView,
    function: Callable[..., Any],
    names: list[str],
    columns: Mapping[str, list[Any]],
    types: Mapping[str, str],
    count: int,
) -> dict[str, list[Any]]:
    outputs: dict[str, list[Any]] = {name: [] for name in odfv.outputs}
    for row in _typed_rows(names, columns, types, count):
        try:
            result = function(row)
        except Exception as exc:
            raise Invalid(
                f"on-demand view {odfv.name!r} failed: {type(exc).__name__}: {exc}",
                hint="fix the function; it gets the inputs as a dict per row",
            ) from exc
        if not isinstance(result, dict) or any(name not in result for name in odfv.outputs):
            raise Invalid(
                f"on-demand view {odfv.name!r} returned {result!r:.80}",
                hint=f"a row-mode function returns a dict of {', '.join(odfv.outputs)}",
            )
        for name, dtype in odfv.outputs.items():
            outputs[name].append(_plain(cast_scalar(result[name], dtype)))
    return outputs


def _on_frame(
    odfv: OnDemandFeatureView,
    functions: Mapping[str, Callable[..., Any]],
    names: list[str],
    columns: Mapping[str, list[Any]],
    types: Mapping[str, str],
) -> dict[str, list[Any]]:
    import pandas as pd

    frame = typed_inputs(pd.DataFrame({n: columns[n] for n in names}), types)
    if odfv.sql is not None:
        result = apply_sql_online(odfv, frame)
    else:
        result = apply_python(odfv, functions[odfv.name], frame)
    return {output: [_plain(v) for v in result[output].tolist()] for output in odfv.outputs}


def typed_scalar(value: Any, dtype: str) -> Any:
    """A stored or requested value as its declared type, the way training sees it (numbers
    float, integers int, times UTC datetimes; None for missing)."""
    if value is None:
        return None
    try:
        if dtype == "number":
            return float(value)
        if dtype == "integer":
            return int(value) if not isinstance(value, float) or value.is_integer() else value
        if dtype == "boolean":
            return bool(value)
        if dtype == "datetime":
            import pandas as pd

            stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            return stamp.to_pydatetime()
    except (TypeError, ValueError) as exc:
        raise Invalid(f"{value!r} is not {dtype}", hint=f"send a {dtype} value") from exc
    return value


def plan_types(plan: ResolvedService) -> dict[str, str]:
    """Each stored feature's declared type."""
    types: dict[str, str] = {}
    for view, features in plan.views:
        types.update({f: view.features[f] for f in features})
    return types


def _plain(value: Any) -> Any:
    """JSON-friendly Python scalars (NaN and pandas' NA become None)."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
