"""Gates: checks from the project file; a failed ``block`` gate keeps a version from @champion.

Kinds: ``threshold`` (a metric within bounds), ``overfit`` (the train - test gap),
``champion`` (not worse than @champion on the same test rows, by a paired bootstrap),
``calibration`` (test ECE), ``fairness`` and ``drift`` (read from plain dict reports),
``custom`` (a function in the project folder). See docs/evaluation.md#gates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decisionloop.config import GateSpec
from decisionloop.errors import Invalid, InvalidConfig

PROJECT_FILE = "decisionloop.yaml"


@dataclass(frozen=True)
class GateContext:
    """What gates (and a custom gate function) see: every metric by name, the test rows'
    labels and scores, the task and the decision threshold, and the raw test rows if known."""

    metrics: Mapping[str, float]
    y_true: Any = None
    scores: Any = None
    task: str = "classification"
    threshold: float = 0.5
    test_frame: Any = None
    model: str = ""


@dataclass(frozen=True)
class ChampionScores:
    """The current @champion's scores on the candidate's test rows, or why there are none."""

    version: int | None
    scores: Any = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's outcome: what it measured, its value, its bounds and a sentence saying why."""

    kind: str
    metric: str
    value: float
    min: float | None
    max: float | None
    severity: str
    passed: bool
    why: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bound(self) -> str:
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min:g}")
        if self.max is not None:
            bounds.append(f"<= {self.max:g}")
        return " and ".join(bounds)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else ("FAIL" if self.severity == "block" else "warn")

    def describe(self) -> str:
        return f"{self.metric} = {self.value:.4f} (needs {self.bound}): {self.verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "bound": self.bound,
            "severity": self.severity,
            "passed": self.passed,
            "why": self.why,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        """False only when a ``block`` gate failed."""
        return all(r.passed for r in self.results if r.severity == "block")

    @property
    def blocking_failures(self) -> list[GateResult]:
        return [r for r in self.results if r.severity == "block" and not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "blocking_failures": [r.why for r in self.blocking_failures],
            "results": [r.to_dict() for r in self.results],
        }


# -- checking specs before any work ------------------------------------------------------------


def _bare(metric: str) -> str:
    return metric.removeprefix("test_").removeprefix("train_")


def _champion_metric(gate: GateSpec, task: str) -> str:
    from decisionloop.evaluation.metrics import DEFAULT_GATE_METRIC

    return "test_" + _bare(gate.metric or DEFAULT_GATE_METRIC[task])


def _refuse(index: int, key: str, message: str, hint: str) -> InvalidConfig:
    return InvalidConfig(message, file=PROJECT_FILE, key=f"gates.{index}.{key}", hint=hint)


def check_gates(
    gates: list[GateSpec],
    known: list[str] | set[str],
    *,
    task: str | None = None,
    project_dir: Path | None = None,
) -> None:
    """Refuse gates the loop cannot evaluate (unknown metrics, a calibration gate on a
    regression, a missing custom function), before any work is done."""
    from decisionloop.evaluation.bootstrap import weighted_metric

    names = sorted(known)
    for index, gate in enumerate(gates):
        if gate.kind == "threshold" and gate.metric not in known:
            raise _refuse(
                index, "metric", f"unknown metric {gate.metric!r}", f"use one of {', '.join(names)}"
            )
        if gate.kind == "overfit":
            bare = _bare(gate.metric or "")
            if f"train_{bare}" not in known or f"test_{bare}" not in known:
                pairs = sorted({_bare(n) for n in known if n.startswith("train_")})
                raise _refuse(
                    index, "metric", f"no train and test {bare!r}", f"use one of {', '.join(pairs)}"
                )
        if gate.kind == "champion" and task is not None:
            metric = _champion_metric(gate, task)
            try:
                weighted_metric(metric, task=task)
            except Invalid as exc:
                raise _refuse(
                    index, "metric", f"cannot compare {metric!r} with @champion", str(exc)
                ) from exc
        if gate.kind == "calibration" and task == "regression":
            raise _refuse(
                index, "kind", "a calibration gate needs a classifier", "drop it or use threshold"
            )
        if gate.kind == "custom" and project_dir is not None:
            assert gate.function is not None
            load_gate_function(gate.function, project_dir, key=f"gates.{index}.function")


def load_gate_function(
    spec: str, project_dir: Path, *, key: str = "gates.function"
) -> Callable[[GateContext], Any]:
    """Load ``module:function`` from a ``.py`` file (or package) inside the project folder
    only: nothing is looked up on ``sys.path``, and a file resolving outside the folder (via a
    symlink) is refused."""
    from decisionloop.project_code import load_function

    function: Callable[[GateContext], Any] = load_function(
        spec,
        project_dir,
        key=key,
        what="custom gate",
        usage=f"def {spec.partition(':')[2]}(context): return passed, message",
    )
    return function


# -- evaluating --------------------------------------------------------------------------------


def evaluate_gates(
    gates: list[GateSpec],
    metrics: Mapping[str, float],
    *,
    context: GateContext | None = None,
    champion: ChampionScores | None = None,
    reports: Mapping[str, Mapping[str, Any]] | None = None,
    project_dir: Path | None = None,
    seed: int = 0,
) -> GateReport:
    """Evaluate every gate. ``reports`` holds the ``to_dict()`` of the fairness and drift
    reports under ``"fairness"`` and ``"drift"``; a gate whose report is missing fails."""
    context = context or GateContext(metrics=metrics)
    check_gates(gates, set(metrics) | _computable(context), task=None)
    results = []
    for gate in gates:
        if gate.kind == "threshold":
            results.append(_threshold(gate, metrics))
        elif gate.kind == "overfit":
            results.append(_overfit(gate, metrics))
        elif gate.kind == "champion":
            results.append(_champion(gate, context, champion, seed))
        elif gate.kind == "calibration":
            results.append(_calibration(gate, context))
        elif gate.kind == "fairness":
            results.append(fairness_gate(gate, (reports or {}).get("fairness")))
        elif gate.kind == "drift":
            results.append(drift_gate(gate, (reports or {}).get("drift")))
        else:
            results.append(_custom(gate, context, project_dir or Path(".")))
    return GateReport(tuple(results))


def _computable(context: GateContext) -> set[str]:
    return {"test_ece"} if context.scores is not None else set()


def _result(
    gate: GateSpec, metric: str, value: float, passed: bool, why: str, **kw: Any
) -> GateResult:
    details = kw.pop("details", {})
    return GateResult(
        gate.kind, metric, float(value), kw.get("min"), kw.get("max"), gate.severity, passed, why,
        details,
    )  # fmt: skip


def _threshold(gate: GateSpec, metrics: Mapping[str, float]) -> GateResult:
    assert gate.metric is not None
    value = metrics[gate.metric]
    low, high = gate.min, gate.max
    if low is not None and value < low:
        why = f"{gate.metric} is {value:.4f}, below the minimum {low:g}"
    elif high is not None and value > high:
        why = f"{gate.metric} is {value:.4f}, above the maximum {high:g}"
    else:
        why = f"{gate.metric} is {value:.4f}, within bounds"
    passed = why.endswith("within bounds")
    return _result(gate, gate.metric, value, passed, why, min=low, max=high)


def _overfit(gate: GateSpec, metrics: Mapping[str, float]) -> GateResult:
    from decisionloop.evaluation.metrics import lower_is_better

    assert gate.metric is not None
    assert gate.max_gap is not None
    bare = _bare(gate.metric)
    train, test = metrics[f"train_{bare}"], metrics[f"test_{bare}"]
    gap = (test - train) if lower_is_better(bare) else (train - test)
    passed = gap <= gate.max_gap
    numbers = f"train {bare} {train:.4f} vs test {test:.4f}: a gap of {gap:.4f}"
    why = (
        f"{numbers} is within {gate.max_gap:g}"
        if passed
        else f"{numbers} exceeds {gate.max_gap:g}: the model overfits its training rows"
    )
    details = {"train": train, "test": test}
    return _result(gate, f"{bare}_gap", gap, passed, why, max=gate.max_gap, details=details)


def _champion(
    gate: GateSpec, context: GateContext, champion: ChampionScores | None, seed: int
) -> GateResult:
    from decisionloop.evaluation.bootstrap import paired_difference
    from decisionloop.evaluation.metrics import lower_is_better

    metric = _champion_metric(gate, context.task)
    label = f"{metric}_vs_champion"
    floor = -gate.margin
    if champion is None or champion.scores is None or context.scores is None:
        note = (champion.note if champion else "") or "no @champion to compare with"
        return _result(gate, label, 0.0, True, f"{note}: passes", min=floor)
    interval = paired_difference(
        context.y_true,
        context.scores,
        champion.scores,
        metric,
        task=context.task,
        threshold=context.threshold,
        resamples=gate.resamples,
        confidence=gate.confidence,
        seed=seed,
        lower_is_better=lower_is_better(metric),
    )
    passed = not interval.high < floor
    level = f"{gate.confidence:.0%}"
    what = (
        f"{metric} differs from @champion (version {champion.version}) by {interval.estimate:+.4f} "
        f"on the same {len(context.y_true)} test rows ({level} interval {interval.low:+.4f} to "
        f"{interval.high:+.4f}; positive is better)"
    )
    why = (
        f"{what}: not worse by more than the margin {gate.margin:g}"
        if passed
        else f"{what}: worse than @champion, the whole interval is below -{gate.margin:g}"
    )
    details = {"champion_version": champion.version, **interval.to_dict()}
    return _result(gate, label, interval.estimate, passed, why, min=floor, details=details)


def _calibration(gate: GateSpec, context: GateContext) -> GateResult:
    from decisionloop.evaluation.calibration import expected_calibration_error

    assert gate.max_ece is not None
    if context.scores is not None:
        ece = expected_calibration_error(context.y_true, context.scores, bins=gate.bins)
    else:
        ece = context.metrics["test_ece"]
    passed = ece <= gate.max_ece
    why = (
        f"test ECE is {ece:.4f} ({gate.bins} bins), "
        + ("within " if passed else "above the maximum; probabilities are miscalibrated: ")
        + f"{gate.max_ece:g}"
    )
    return _result(gate, "test_ece", ece, passed, why, max=gate.max_ece)


def report_columns(report: Mapping[str, Any]) -> dict[str, Any]:
    """``report["columns"]`` by column name: a mapping as is, or a list of dicts each naming
    its column under ``"column"`` (or ``"name"``), as the fairness and drift reports do."""
    columns = report.get("columns") or {}
    if isinstance(columns, Mapping):
        return dict(columns)
    return {str(c.get("column", c.get("name"))): c for c in columns if isinstance(c, Mapping)}


def fairness_gate(gate: GateSpec, report: Mapping[str, Any] | None) -> GateResult:
    """Check ``report["columns"][column][measure]`` (see :func:`report_columns`; ``measure``
    may be a dotted path into nested dicts) against ``min``/``max``; a missing report, column
    or measure fails."""
    assert gate.column is not None
    assert gate.measure is not None
    label = f"fairness:{gate.column}.{gate.measure}"
    bounds = {"min": gate.min, "max": gate.max}
    if report is None:
        why = "no fairness report was computed for this version"
        return _result(gate, label, 0.0, False, why, **bounds)
    columns = report_columns(report)
    node: Any = columns.get(gate.column)
    if node is None:
        why = f"the fairness report has no column {gate.column!r} (has: {', '.join(columns)})"
        return _result(gate, label, 0.0, False, why, **bounds)
    for part in gate.measure.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, int | float):
        why = f"the fairness report has no number {gate.measure!r} for column {gate.column!r}"
        return _result(gate, label, 0.0, False, why, **bounds)
    value = float(node)
    if gate.min is not None and value < gate.min:
        why = f"{gate.measure} for {gate.column} is {value:.4f}, below {gate.min:g}: unfair"
    elif gate.max is not None and value > gate.max:
        why = f"{gate.measure} for {gate.column} is {value:.4f}, above {gate.max:g}: unfair"
    else:
        why = f"{gate.measure} for {gate.column} is {value:.4f}, within bounds"
    return _result(gate, label, value, why.endswith("within bounds"), why, **bounds)


def drift_gate(gate: GateSpec, report: Mapping[str, Any] | None) -> GateResult:
    """Check the share of drifted columns: ``report["share"]`` or ``report["share_drifted"]``
    when present, else the share of ``report["columns"][*]["drifted"]`` that are true; a
    missing report fails."""
    assert gate.max_share is not None
    if report is None:
        why = "no drift report was computed for this version"
        return _result(gate, "drift_share", 0.0, False, why, max=gate.max_share)
    columns = report_columns(report)
    drifted = sorted(name for name, c in columns.items() if c.get("drifted"))
    share = report.get("share", report.get("share_drifted"))
    if not isinstance(share, int | float):
        share = len(drifted) / len(columns) if columns else 0.0
    passed = share <= gate.max_share
    named = f" ({', '.join(drifted)})" if drifted else ""
    why = f"{share:.0%} of columns drifted{named}, " + (
        f"within {gate.max_share:g}" if passed else f"above the maximum share {gate.max_share:g}"
    )
    details = {"drifted": drifted}
    return _result(gate, "drift_share", share, passed, why, max=gate.max_share, details=details)


def _custom(gate: GateSpec, context: GateContext, project_dir: Path) -> GateResult:
    assert gate.function is not None
    function = load_gate_function(gate.function, project_dir)
    label = f"custom:{gate.function}"
    try:
        outcome = function(context)
    except Exception as exc:  # noqa: BLE001 - a crashing check must not let a version through
        why = f"{gate.function} raised {type(exc).__name__}: {exc}"
        return _result(gate, label, 0.0, False, why, min=1.0)
    ok = isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[0], bool)
    if not ok:
        why = f"{gate.function} must return (passed: bool, message: str), got {outcome!r}"
        return _result(gate, label, 0.0, False, why, min=1.0)
    passed, message = outcome
    return _result(gate, label, float(passed), passed, str(message), min=1.0)
