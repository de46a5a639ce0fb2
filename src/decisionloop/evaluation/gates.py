"""Gates: metric thresholds from the project file; a failed ``block`` gate stops promotion."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from decisionloop.config import GateSpec
from decisionloop.errors import InvalidConfig


@dataclass(frozen=True, slots=True)
class GateResult:
    metric: str
    value: float
    min: float | None
    max: float | None
    severity: str
    passed: bool

    def describe(self) -> str:
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        verdict = "pass" if self.passed else ("FAIL" if self.severity == "block" else "warn")
        return f"{self.metric} = {self.value:.4f} (needs {' and '.join(bounds)}): {verdict}"


@dataclass(frozen=True, slots=True)
class GateReport:
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.severity == "block")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "results": [asdict(r) for r in self.results]}


def check_gates(gates: list[GateSpec], known: list[str] | set[str]) -> None:
    """Refuse gates on metrics the loop does not compute, before any work is done."""
    for index, gate in enumerate(gates):
        if gate.metric not in known:
            raise InvalidConfig(
                f"unknown metric {gate.metric!r}",
                file="decisionloop.yaml",
                key=f"gates.{index}.metric",
                hint=f"use one of {', '.join(sorted(known))}",
            )


def evaluate_gates(gates: list[GateSpec], metrics: dict[str, float]) -> GateReport:
    check_gates(gates, set(metrics))
    results = []
    for gate in gates:
        value = metrics[gate.metric]
        passed = (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)
        results.append(GateResult(gate.metric, value, gate.min, gate.max, gate.severity, passed))
    return GateReport(tuple(results))
