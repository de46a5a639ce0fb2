"""The contract as SQL: typed-value expressions and one boolean expression per check.

Each check is evaluated by DuckDB over a whole batch at once (vectorized, multi-threaded);
a check expression is TRUE exactly for the rows that fail it.
"""

from __future__ import annotations

from dataclasses import dataclass

from decisionloop.data.contract import ColumnSpec, ContractSpec

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def quote(name: str) -> str:
    """A SQL identifier, whatever characters the name holds."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return sql_text(str(value))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    column: str | None
    severity: str
    #: TRUE for rows that fail; for a ``partition`` check, the expressions whose repeats fail
    sql: str
    #: duplicates after the first occurrence fail (evaluated in a second pass)
    partition: bool = False


#: DuckDB's type for each contract type
DUCKDB_TYPES = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMP WITH TIME ZONE",
}
_NATIVE = {
    "integer": {
        "BIGINT",
        "INTEGER",
        "SMALLINT",
        "TINYINT",
        "UBIGINT",
        "UINTEGER",
        "USMALLINT",
        "UTINYINT",
    },
    "number": {"DOUBLE", "FLOAT"},
    "string": {"VARCHAR"},
    "boolean": {"BOOLEAN"},
    "datetime": {"TIMESTAMP WITH TIME ZONE"},
}


def typed_expression(raw: str, spec: ColumnSpec, raw_is_text: bool, source_type: str = "") -> str:
    """The column's value as its declared type; NULL when missing or not convertible."""
    if source_type in _NATIVE[spec.type]:
        return (
            raw
            if source_type == DUCKDB_TYPES[spec.type]
            else f"CAST({raw} AS {DUCKDB_TYPES[spec.type]})"
        )
    text = f"NULLIF(trim(CAST({raw} AS VARCHAR)), '')"
    if spec.type == "integer" and source_type.startswith("DECIMAL"):
        # exact: no detour through DOUBLE, which rounds integers beyond 2^53
        return f"CASE WHEN {raw} = trunc({raw}) THEN TRY_CAST({raw} AS BIGINT) END"
    if spec.type == "integer" and raw_is_text:
        # fast path: text that is already a canonical integer ("42", "-7"); anything else
        # ("4.0", "+5", "1e3", "4.5") goes through an exact decimal, so nothing is rounded
        whole = f"TRY_CAST({text} AS BIGINT)"
        exact = f"TRY_CAST({text} AS DECIMAL(38,18))"
        return (
            f"CASE WHEN CAST({whole} AS VARCHAR) = {text} THEN {whole} "
            f"WHEN {exact} = trunc({exact}) THEN TRY_CAST({exact} AS BIGINT) END"
        )
    if spec.type == "integer":
        number = f"TRY_CAST({raw} AS DOUBLE)"
        return f"CASE WHEN {number} = floor({number}) THEN TRY_CAST({number} AS BIGINT) END"
    if spec.type == "number":
        return f"TRY_CAST({text if raw_is_text else raw} AS DOUBLE)"
    if spec.type == "boolean":
        words = f"lower({text})"
        trues = ", ".join(literal(w) for w in TRUE_WORDS)
        falses = ", ".join(literal(w) for w in FALSE_WORDS)
        return f"CASE WHEN {words} IN ({trues}) THEN TRUE WHEN {words} IN ({falses}) THEN FALSE END"
    if spec.type == "datetime":
        return f"TRY_CAST({text if raw_is_text else raw} AS TIMESTAMPTZ)"
    return f"CAST({raw} AS VARCHAR)"


def present_expression(raw: str, raw_is_text: bool, spec: ColumnSpec) -> str:
    """TRUE when the raw value is there (an empty string is missing except for strings)."""
    if raw_is_text and spec.type != "string":
        return f"NULLIF(trim(CAST({raw} AS VARCHAR)), '') IS NOT NULL"
    return f"{raw} IS NOT NULL"


def column_checks(
    name: str,
    spec: ColumnSpec,
    raw: str,
    raw_is_text: bool,
    outlier_bounds: tuple[float, float] | None,
    source_type: str = "",
    typed: str | None = None,
) -> list[Check]:
    """The column's row checks; ``typed`` names its typed value when the caller computed it
    once (else each check converts the raw value itself)."""
    typed = typed or typed_expression(raw, spec, raw_is_text, source_type)
    present = present_expression(raw, raw_is_text, spec)
    severity = spec.severity
    checks = []
    if source_type not in _NATIVE[spec.type]:
        checks.append(Check(f"{name}: type", name, severity, f"({present} AND {typed} IS NULL)"))
    if not spec.nullable:
        checks.append(Check(f"{name}: not null", name, severity, f"(NOT {present})"))
    if spec.type == "number":
        checks.append(Check(f"{name}: finite", name, severity, f"(NOT isfinite({typed}))"))
    if spec.allowed is not None:
        checks.append(Check(f"{name}: allowed", name, severity, _not_allowed(typed, spec)))
    if spec.min is not None:
        checks.append(Check(f"{name}: min", name, severity, f"({typed} < {spec.min!r})"))
    if spec.max is not None:
        checks.append(Check(f"{name}: max", name, severity, f"({typed} > {spec.max!r})"))
    if spec.pattern is not None:
        checks.append(
            Check(
                f"{name}: pattern",
                name,
                severity,
                f"(NOT regexp_full_match(CAST({typed} AS VARCHAR), {literal(spec.pattern)}))",
            )
        )
    if spec.max_length is not None:
        checks.append(
            Check(
                f"{name}: max_length",
                name,
                severity,
                f"(length(CAST({typed} AS VARCHAR)) > {spec.max_length})",
            )
        )
    if spec.unique:
        checks.append(
            Check(
                f"{name}: unique",
                name,
                severity,
                typed,
                partition=True,
            )
        )
    if spec.outliers is not None and outlier_bounds is not None:
        low, high = outlier_bounds
        checks.append(
            Check(
                f"{name}: outlier",
                name,
                spec.outliers.severity,
                f"({typed} < {low!r} OR {typed} > {high!r})",
            )
        )
    return checks


#: longer lists of allowed text values are looked up through an ENUM cast (a hash lookup)
ENUM_LOOKUP_FROM = 8


def _not_allowed(typed: str, spec: ColumnSpec) -> str:
    """TRUE for a value outside ``spec.allowed``. Not NOT IN or list_contains: DuckDB plans
    those over a constant list as a join, which loses the rows' source order."""
    assert spec.allowed is not None
    values = list(dict.fromkeys(spec.allowed))
    if spec.type == "string" and len(values) >= ENUM_LOOKUP_FROM:
        members = ", ".join(sql_text(str(v)) for v in values)
        return f"({typed} IS NOT NULL AND TRY_CAST({typed} AS ENUM({members})) IS NULL)"
    return "(" + (" AND ".join(f"{typed} <> {literal(v)}" for v in values) or "TRUE") + ")"


def key_check(contract: ContractSpec, typed: dict[str, str]) -> Check | None:
    if not contract.key:
        return None
    keys = ", ".join(typed[k] for k in contract.key)
    return Check(
        "key: duplicate in batch",
        None,
        "error",
        keys,
        partition=True,
    )
