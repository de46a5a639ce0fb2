"""The data contract: what every column and every batch of a data set must satisfy.

Declared in ``decisionloop.yaml`` under ``data.columns`` (per column) and ``data.contract``
(per data set); ``decisionloop init`` writes one from a profile for you to tighten.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["integer", "number", "string", "boolean", "datetime"]
Severity = Literal["error", "warn"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutlierRule(_Spec):
    """Values outside a robust range learned from the reference snapshot are outliers.

    ``iqr``: outside [Q1 - factor x IQR, Q3 + factor x IQR]; ``mad``: further than
    factor x 1.4826 x MAD from the median.
    """

    method: Literal["iqr", "mad"] = "iqr"
    factor: float = Field(default=3.0, gt=0)
    severity: Severity = "warn"


class ColumnSpec(_Spec):
    """One column of the contract. Row-level checks with severity ``error`` quarantine the row."""

    type: ColumnType
    nullable: bool = True
    description: str = ""
    allowed: list[str | int | float | bool] | None = Field(
        default=None, description="The only values accepted."
    )
    min: float | None = None
    max: float | None = None
    pattern: str | None = Field(
        default=None, description="A regular expression every value fully matches."
    )
    max_length: int | None = Field(default=None, ge=1)
    unique: bool = False
    outliers: OutlierRule | None = None
    severity: Severity = Field(default="error", description="Severity of this column's checks.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if (self.min is not None or self.max is not None) and self.type not in (
            "integer",
            "number",
        ):
            raise ValueError("min/max apply to integer and number columns")
        return self


class FreshnessRule(_Spec):
    """The newest event timestamp in a batch must be at most ``max_age_hours`` old."""

    column: str
    max_age_hours: float = Field(gt=0)
    severity: Severity = "warn"


class ConsentRule(_Spec):
    """Which entities agreed to which purpose.

    Either ``column`` (a boolean column of the data: true = consent to ``purpose``) or ``table``
    (a CSV/Parquet file with ``entity``, ``purpose``, ``granted`` and ``at`` columns; the latest
    record per entity and purpose wins).
    """

    column: str | None = None
    table: str | None = None
    purpose: str = "training"

    @model_validator(mode="after")
    def _one_source(self) -> ConsentRule:
        if (self.column is None) == (self.table is None):
            raise ValueError("consent needs exactly one of `column` or `table`")
        return self


class ContractSpec(_Spec):
    """Checks on a whole batch, and how streams de-duplicate."""

    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    key: list[str] = Field(
        default_factory=list,
        description="Columns identifying a record: unique in a batch; replays de-duplicate on it.",
    )
    freshness: FreshnessRule | None = None
    consent: ConsentRule | None = None
    extra_columns: Literal["ignore", "warn", "error"] = "warn"
    max_error_rate: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="A batch with a larger share of quarantined rows fails as a whole.",
    )
