"""References to model versions: ``churn``, ``churn@champion``, ``churn/7``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from decisionloop.backends.metadata.records import MetricFilter
from decisionloop.errors import Invalid

_REF = re.compile(
    r"^(?P<name>[A-Za-z][A-Za-z0-9_.-]{0,99})(?:@(?P<alias>[A-Za-z][A-Za-z0-9_-]{0,49})|/(?P<version>[0-9]{1,9}))?$"
)
DEFAULT_ALIAS = "champion"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model name plus either an alias or a version number (neither means ``@champion``)."""

    name: str
    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        match = _REF.match(text.strip())
        if match is None:
            raise Invalid(
                f"not a model reference: {text!r}",
                hint="write NAME, NAME@ALIAS (e.g. churn@champion) or NAME/VERSION (e.g. churn/3)",
            )
        version = match.group("version")
        return cls(
            name=match.group("name"),
            alias=match.group("alias"),
            version=int(version) if version is not None else None,
        )

    def resolved_alias(self) -> str | None:
        """The alias to look up: the explicit one, else ``champion`` unless a version is given."""
        if self.version is not None:
            return None
        return self.alias or DEFAULT_ALIAS

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


_METRIC_FILTER = re.compile(
    r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_.:/-]*)\s*(?P<op>>=|<=|>|<|==|=)\s*(?P<value>\S+)\s*$"
)
_OPERATORS: dict[str, Literal[">", ">=", "<", "<=", "="]] = {
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
    "=": "=",
    "==": "=",
}


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value`` as ``(key, value)``; the value may contain ``=``, the key may not be empty."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise Invalid(f"not a tag: {text!r}", hint="write KEY=VALUE, e.g. team=growth")
    return key.strip(), value


def parse_metric_filter(text: str) -> MetricFilter:
    """``auc>=0.8`` (also ``>``, ``<``, ``<=``, ``=``) as a :class:`MetricFilter`."""
    match = _METRIC_FILTER.match(text)
    value = _float(match.group("value")) if match else None
    if match is None or value is None:
        raise Invalid(
            f"not a metric filter: {text!r}",
            hint="write METRIC OP NUMBER with OP one of > >= < <= =, e.g. 'test_auc>=0.8'",
        )
    return MetricFilter(match.group("key"), _OPERATORS[match.group("op")], value)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
