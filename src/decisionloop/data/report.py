"""Validation reports: per check, how many rows failed and examples; the batch verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check over one batch. ``failed`` counts rows (or 1 for a batch-level check)."""

    check: str
    column: str | None
    severity: str
    failed: int
    examples: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class BatchReport:
    """What a batch brought in and what became of every row: in = stored + quarantined + skipped."""

    origin: str
    verdict: Verdict
    rows_in: int
    rows_stored: int
    rows_quarantined: int
    rows_skipped: int
    checks: list[CheckResult]
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["balanced"] = (
            self.rows_in == self.rows_stored + self.rows_quarantined + self.rows_skipped
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchReport:
        return cls(
            origin=data["origin"],
            verdict=data["verdict"],
            rows_in=int(data["rows_in"]),
            rows_stored=int(data["rows_stored"]),
            rows_quarantined=int(data["rows_quarantined"]),
            rows_skipped=int(data["rows_skipped"]),
            checks=[CheckResult(**c) for c in data["checks"]],
            skipped={k: int(v) for k, v in data.get("skipped", {}).items()},
            seconds=float(data.get("seconds", 0.0)),
        )

    def summary(self) -> str:
        problems = "; ".join(
            f"{c.check} ({c.failed} row(s), e.g. {', '.join(c.examples[:2])})"
            if c.examples
            else f"{c.check} ({c.detail or c.failed})"
            for c in self.failed_checks[:4]
        )
        counts = (
            f"{self.rows_in} in, {self.rows_stored} stored, {self.rows_quarantined} quarantined"
            + (f", {self.rows_skipped} skipped" if self.rows_skipped else "")
        )
        return f"{self.verdict}: {counts}" + (f"; {problems}" if problems else "")
