"""The building blocks of compiled on-demand SQL (see sql_expressions): compiled values, the
type rules shared by operators and functions, and the functions with DuckDB's semantics."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
Evaluate = Callable[[Row], Any]
NUMERIC = frozenset({"integer", "number", "null"})


def order_key(value: Any) -> Any:
    """DuckDB's order of values: NaN equals NaN and is above every number (+inf too)."""
    if isinstance(value, float) and value != value:
        return (1, 0.0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return value


class Unsupported(Exception):
    """The expression uses SQL outside the compiled subset (DuckDB evaluates it instead)."""


@dataclass(frozen=True)
class Compiled:
    """A compiled expression: ``evaluate(row)`` and the SQL type it yields."""

    evaluate: Evaluate
    kind: str  # "integer", "number", "string", "boolean" or "null"


def common(kinds: list[str]) -> str:
    """The result type of values of these kinds (CASE, COALESCE, LEAST...)."""
    concrete = {k for k in kinds if k != "null"}
    if not concrete:
        return "null"
    if concrete <= {"integer", "number"}:
        return "number" if "number" in concrete else "integer"
    if len(concrete) == 1:
        return concrete.pop()
    raise Unsupported(f"mixed types {sorted(concrete)}")


def widen(value: Any, to_float: bool) -> Any:
    return float(value) if to_float and value is not None else value


def as_float(value: Any) -> Any:
    return None if value is None else float(value)


def nullable(function: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    return function(left, right)


_INT64 = (-(2**63), 2**63 - 1)


def int64(value: int) -> int:
    """An integer result as DuckDB's BIGINT: out of range raises there, so not compiled."""
    if not _INT64[0] <= value <= _INT64[1]:
        raise Unsupported("integer overflow")
    return value


def _std_round(value: float) -> float:
    """C's ``round``: half away from zero, exactly (no ``x + 0.5`` error)."""
    whole = float(math.trunc(value))
    if abs(value - whole) >= 0.5:
        whole += math.copysign(1.0, value)
    return whole


def _duckdb_round(value: float, digits: int) -> float:
    """DuckDB's ``ROUND(double, n)``: ``round(x * 10^n) / 10^n``, the input when that
    overflows."""
    if digits == 0:
        return _std_round(value)
    modifier = math.pow(10.0, digits)
    rounded = _std_round(value * modifier) / modifier
    return value if math.isinf(rounded) or math.isnan(rounded) else rounded


def function_call(name: str, arguments: list[Compiled]) -> Compiled:
    kinds = [a.kind for a in arguments]
    calls = [a.evaluate for a in arguments]
    if name == "NULLIF" and len(arguments) == 2:
        common(kinds)  # the two must compare; the result has the first argument's type
        kind = kinds[0]
        a, b = calls
        return Compiled(
            lambda row: (
                None
                if (x := a(row)) is not None
                and (y := b(row)) is not None
                and order_key(x) == order_key(y)
                else a(row)
            ),
            kind,
        )
    if name == "COALESCE" and arguments:
        kind = common(kinds)
        to_float = kind == "number"

        def coalesce(row: Row) -> Any:
            for call in calls:
                value = call(row)
                if value is not None:
                    return widen(value, to_float)
            return None

        return Compiled(coalesce, kind)
    if name in ("LEAST", "GREATEST") and arguments:
        kind = common(kinds)
        if kind not in ("integer", "number", "null"):
            raise Unsupported(f"{name} of {kind}")
        pick = min if name == "LEAST" else max
        to_float = kind == "number"

        def extreme(row: Row) -> Any:
            values = [v for v in (call(row) for call in calls) if v is not None]
            return widen(pick(values, key=order_key), to_float) if values else None

        return Compiled(extreme, kind)
    if name in ("LOWER", "UPPER", "LENGTH") and len(arguments) == 1:
        if kinds[0] not in ("string", "null"):
            raise Unsupported(f"{name} of {kinds[0]}")
        (a,) = calls
        if name == "LENGTH":
            return Compiled(lambda row: None if (x := a(row)) is None else len(x), "integer")
        method = str.lower if name == "LOWER" else str.upper
        return Compiled(lambda row: None if (x := a(row)) is None else method(x), "string")
    if any(k not in NUMERIC for k in kinds):
        raise Unsupported(f"{name} of non-numbers")
    if name == "ABS" and len(arguments) == 1:
        (a,) = calls
        return Compiled(lambda row: None if (x := a(row)) is None else abs(x), kinds[0])
    if name == "ROUND" and len(arguments) in (1, 2):
        if len(arguments) == 2 and not _constant_integer(arguments[1]):
            raise Unsupported("ROUND with a computed precision")
        (a, *rest) = calls
        digits = rest[0]({}) if rest else 0
        if kinds[0] == "integer":
            if digits < 0:
                raise Unsupported("ROUND of an integer to tens")
            return Compiled(a, "integer")

        def round_(row: Row) -> Any:
            x = a(row)
            if x is None:
                return None
            if math.isnan(x) or math.isinf(x):
                return x
            return _duckdb_round(float(x), digits)

        return Compiled(round_, "number")
    if name in ("CEIL", "CEILING", "FLOOR") and len(arguments) == 1:
        (a,) = calls
        if kinds[0] == "integer":
            return Compiled(a, "integer")
        step = math.ceil if name.startswith("CEIL") else math.floor

        def bound(row: Row) -> Any:
            x = a(row)
            if x is None or math.isnan(x) or math.isinf(x):
                return x
            return float(step(x))

        return Compiled(bound, "number")
    if name in ("SQRT", "LN", "LOG10", "EXP") and len(arguments) == 1:
        (a,) = calls
        unary = {"SQRT": _sqrt, "LN": _ln, "LOG10": _log10, "EXP": _exp}[name]
        return Compiled(lambda row: None if (x := a(row)) is None else unary(float(x)), "number")
    if name in ("POWER", "POW") and len(arguments) == 2:
        a, b = calls
        return Compiled(lambda row: nullable(_power, as_float(a(row)), as_float(b(row))), "number")
    raise Unsupported(f"function {name}/{len(arguments)}")


def _constant_integer(argument: Compiled) -> bool:
    if argument.kind != "integer":
        return False
    try:
        return isinstance(argument.evaluate({}), int)
    except (KeyError, TypeError):
        return False


def _sqrt(x: float) -> float:
    return math.nan if x < 0 or math.isnan(x) else math.sqrt(x)


def _ln(x: float) -> float:
    if math.isnan(x) or x < 0:
        return math.nan
    return -math.inf if x == 0 else math.log(x)


def _log10(x: float) -> float:
    if math.isnan(x) or x < 0:
        return math.nan
    return -math.inf if x == 0 else math.log10(x)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _power(x: float, y: float) -> float:
    if x == 0 and y < 0:  # C's pow: a pole, signed for an odd integer exponent
        odd = y.is_integer() and int(y) % 2 == 1
        return math.copysign(math.inf, x) if odd else math.inf
    try:
        return math.pow(x, y)
    except ValueError:  # a negative base to a fractional power
        return math.nan
    except OverflowError as exc:
        raise Unsupported("power out of range") from exc
