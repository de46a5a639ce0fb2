"""On-demand SQL expressions evaluated in Python, for online lookups of a few rows.

Training sets run an on-demand view's SQL in DuckDB. Online, starting DuckDB costs ~0.3 ms a
statement, more than the whole lookup, so the common subset of SQL is compiled here into
Python closures with DuckDB's semantics (checked against DuckDB by a property test): NULL
propagation and three-valued logic; ``/`` is true division, by zero +-inf (NaN for 0/0);
``%`` takes the dividend's sign; integer ``+ - *`` stay integers; ``ROUND`` rounds half away
from zero; ``LEAST``/``GREATEST`` skip NULLs. Anything outside the subset (another function,
``CAST``, a subquery...) is not compiled, and the lookup runs the expression in DuckDB instead:
slower, never different.

Supported: numbers, 'strings', NULL, TRUE, FALSE, column names (bare or "quoted"), unary
``-``/``+``/``NOT``, ``* / % + - ||``, comparisons (``= <> != < <= > >=``), ``IS [NOT] NULL``,
``AND``, ``OR``, ``CASE WHEN ... THEN ... [ELSE ...] END``, and ``ABS``, ``CEIL``, ``FLOOR``,
``ROUND(x[, n])``, ``SQRT``, ``LN``, ``LOG10``, ``EXP``, ``POWER``, ``NULLIF``, ``COALESCE``,
``LEAST``, ``GREATEST``, ``LOWER``, ``UPPER``, ``LENGTH``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from decisionloop.features.sql_functions import (
    NUMERIC,
    Compiled,
    Evaluate,
    Row,
    Unsupported,
    as_float,
    common,
    function_call,
    int64,
    nullable,
    order_key,
    widen,
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><>|!=|<=|>=|\|\||[-+*/%(),=<>])
    )""",
    re.VERBOSE,
)


def compile_expression(text: str, input_types: Mapping[str, str]) -> Compiled | None:
    """The expression as a Python function of a row, or None when it is outside the subset.
    ``input_types`` gives each input column's type (integer, number, string, boolean)."""
    try:
        parser = _Parser(_tokens(text), input_types)
        compiled = parser.expression(0)
        if parser.peek() is not None:
            raise Unsupported(f"unexpected {parser.peek()!r}")
    except Unsupported:
        return None
    return compiled


def cast_output(value: Any, kind: str, declared: str) -> Any:
    """``CAST(value AS declared)`` as DuckDB does it for the compiled kinds; raises
    Unsupported for casts it does not mirror."""
    if value is None:
        return None
    if declared == "number":
        if kind in ("integer", "number"):
            return float(value)
    elif declared == "integer":
        if kind == "integer":
            return int(value)
        if kind == "number":
            if math.isnan(value) or math.isinf(value):
                raise Unsupported("a non-finite number cast to an integer")
            return int64(round(value))  # DuckDB rounds half to even here
    elif declared == "string":
        if kind == "string":
            return value
    elif declared == "boolean" and kind == "boolean":
        return value
    raise Unsupported(f"{kind} cast to {declared}")


def output_supported(kind: str, declared: str) -> bool:
    """Whether :func:`cast_output` mirrors DuckDB for this pair (checked before serving)."""
    return (
        kind == "null"
        or (declared in ("number", "integer") and kind in ("integer", "number"))
        or (declared == kind and declared in ("string", "boolean"))
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {text[position : position + 10]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


_KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN", "ELSE", "END"}
)
#: binding power of infix operators (higher binds tighter), as in DuckDB's grammar
_INFIX = {
    "OR": 1,
    "AND": 2,
    "=": 4,
    "<>": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "IS": 5,
    "||": 6,
    "+": 7,
    "-": 7,
    "*": 8,
    "/": 8,
    "%": 8,
}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], types: Mapping[str, str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.types = types

    def peek(self) -> str | None:
        if self.index >= len(self.tokens):
            return None
        kind, text = self.tokens[self.index]
        return text.upper() if kind == "name" and text.upper() in _KEYWORDS else text

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise Unsupported("unexpected end")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek() != text:
            raise Unsupported(f"expected {text}")
        self.index += 1

    def expression(self, power: int) -> Compiled:
        left = self.prefix()
        while True:
            operator = self.peek()
            if operator is None:
                return left
            if operator == "NOT" and power < 4:  # `x NOT ...` forms are not supported
                raise Unsupported("NOT after an operand")
            binding = _INFIX.get(operator)
            if binding is None or binding <= power:
                return left
            self.index += 1
            if operator == "IS":
                negate = self.peek() == "NOT"
                if negate:
                    self.index += 1
                self.expect("NULL")
                left = _is_null(left, negate)
                continue
            right = self.expression(binding)
            left = _binary(operator, left, right)

    def prefix(self) -> Compiled:
        kind, text = self.take()
        upper = text.upper()
        if kind == "number":
            if re.fullmatch(r"\d+", text):
                value: Any = int(text)
                return Compiled(lambda row: value, "integer")
            # a decimal literal is DECIMAL in DuckDB: close to DOUBLE, not the same
            raise Unsupported("decimal literal")
        if kind == "string":
            literal = text[1:-1].replace("''", "'")
            return Compiled(lambda row: literal, "string")
        if kind == "quoted":
            return self.column(text[1:-1].replace('""', '"'))
        if kind == "op":
            if text == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if text in ("-", "+"):
                operand = self.expression(9)
                if operand.kind not in NUMERIC:
                    raise Unsupported("sign of a non-number")
                if text == "+":
                    return operand
                evaluate = operand.evaluate
                return Compiled(lambda row: _neg(evaluate(row)), operand.kind)
            raise Unsupported(f"operator {text}")
        if upper == "NULL":
            return Compiled(lambda row: None, "null")
        if upper in ("TRUE", "FALSE"):
            flag = upper == "TRUE"
            return Compiled(lambda row: flag, "boolean")
        if upper == "NOT":
            operand = self.expression(3)
            evaluate = operand.evaluate
            return Compiled(lambda row: _not(evaluate(row)), "boolean")
        if upper == "CASE":
            return self.case()
        if upper in _KEYWORDS:
            raise Unsupported(f"keyword {upper}")
        if self.peek() == "(":
            self.index += 1
            arguments: list[Compiled] = []
            if self.peek() != ")":
                arguments.append(self.expression(0))
                while self.peek() == ",":
                    self.index += 1
                    arguments.append(self.expression(0))
            self.expect(")")
            return function_call(upper, arguments)
        return self.column(text)

    def column(self, name: str) -> Compiled:
        if name not in self.types:
            raise Unsupported(f"unknown column {name}")
        kind = self.types[name]
        if kind not in ("integer", "number", "string", "boolean"):
            raise Unsupported(f"{kind} column")
        return Compiled(lambda row: row[name], kind)

    def case(self) -> Compiled:
        branches: list[tuple[Compiled, Compiled]] = []
        if self.peek() != "WHEN":
            raise Unsupported("CASE x WHEN (simple CASE)")
        while self.peek() == "WHEN":
            self.index += 1
            condition = self.expression(0)
            self.expect("THEN")
            branches.append((condition, self.expression(0)))
        fallback: Compiled = Compiled(lambda row: None, "null")
        if self.peek() == "ELSE":
            self.index += 1
            fallback = self.expression(0)
        self.expect("END")
        kind = common([value.kind for _, value in branches] + [fallback.kind])
        pairs = [(c.evaluate, v.evaluate) for c, v in branches]
        otherwise = fallback.evaluate
        to_float = kind == "number"

        def evaluate(row: Row) -> Any:
            for condition, value in pairs:
                if condition(row) is True:
                    return widen(value(row), to_float)
            return widen(otherwise(row), to_float)

        return Compiled(evaluate, kind)


def _neg(value: Any) -> Any:
    return None if value is None else -value


def _not(value: Any) -> Any:
    return None if value is None else not value


def _is_null(operand: Compiled, negate: bool) -> Compiled:
    evaluate = operand.evaluate
    if negate:
        return Compiled(lambda row: evaluate(row) is not None, "boolean")
    return Compiled(lambda row: evaluate(row) is None, "boolean")


def _binary(operator: str, left: Compiled, right: Compiled) -> Compiled:
    a, b = left.evaluate, right.evaluate
    if operator in ("AND", "OR"):
        if not {left.kind, right.kind} <= {"boolean", "null"}:
            raise Unsupported("AND/OR of non-booleans")
        return Compiled(_and(a, b) if operator == "AND" else _or(a, b), "boolean")
    if operator in ("=", "<>", "!=", "<", "<=", ">", ">="):
        kinds = {left.kind, right.kind} - {"null"}
        if len(kinds) > 1 and not kinds <= {"integer", "number"}:
            raise Unsupported("comparison of different types")
        compare = _COMPARE[operator]
        return Compiled(lambda row: nullable(compare, a(row), b(row)), "boolean")
    if operator == "||":
        if not {left.kind, right.kind} <= {"string", "null"}:
            raise Unsupported("|| of non-strings")
        return Compiled(lambda row: nullable(_concat, a(row), b(row)), "string")
    if left.kind not in NUMERIC or right.kind not in NUMERIC:
        raise Unsupported(f"{operator} of non-numbers")
    if operator == "/":
        return Compiled(lambda row: nullable(_divide, a(row), b(row)), "number")
    integer = left.kind in ("integer", "null") and right.kind in ("integer", "null")
    kind = "integer" if integer else "number"
    if operator == "%":
        return Compiled(lambda row: nullable(_modulo, a(row), b(row)), kind)
    function = _ARITHMETIC[operator]
    if integer:
        return Compiled(
            lambda row: (
                None if (x := a(row)) is None or (y := b(row)) is None else int64(function(x, y))
            ),
            kind,
        )
    return Compiled(lambda row: nullable(function, as_float(a(row)), as_float(b(row))), kind)


def _and(a: Evaluate, b: Evaluate) -> Evaluate:
    def evaluate(row: Row) -> Any:
        left, right = a(row), b(row)
        if left is False or right is False:
            return False
        if left is None or right is None:
            return None
        return True

    return evaluate


def _or(a: Evaluate, b: Evaluate) -> Evaluate:
    def evaluate(row: Row) -> Any:
        left, right = a(row), b(row)
        if left is True or right is True:
            return True
        if left is None or right is None:
            return None
        return False

    return evaluate


def _concat(left: str, right: str) -> str:
    return left + right


def _divide(left: float, right: float) -> float:
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return float(left) / float(right)


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int):
        if right == 0:
            raise Unsupported("integer modulo by zero")  # DuckDB raises: let it say so

        quotient = abs(left) // abs(right)
        remainder = abs(left) - quotient * abs(right)
        return -remainder if left < 0 else remainder
    if right == 0:
        return math.nan
    try:
        return math.fmod(left, right)
    except ValueError:  # an infinite dividend: NaN, as in DuckDB
        return math.nan


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
}
#: comparisons in DuckDB's order (NaN equals NaN and is above every number)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda x, y: bool(order_key(x) == order_key(y)),
    "<>": lambda x, y: bool(order_key(x) != order_key(y)),
    "!=": lambda x, y: bool(order_key(x) != order_key(y)),
    "<": lambda x, y: bool(order_key(x) < order_key(y)),
    "<=": lambda x, y: bool(order_key(x) <= order_key(y)),
    ">": lambda x, y: bool(order_key(x) > order_key(y)),
    ">=": lambda x, y: bool(order_key(x) >= order_key(y)),
}
