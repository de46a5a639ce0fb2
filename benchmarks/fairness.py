"""Fairness metrics at 1M rows: DecisionLoop's ``fairness_report`` beside fairlearn's MetricFrame.

    .venv/bin/python benchmarks/fairness.py [--quick] [--markdown] [--rows N] [--output PATH]

Both sides get the same seeded data (labels, scores, two sensitive columns: a 0/1 flag and a
five-valued region) and compute the same things per column: per group selection rate, TPR, FPR,
precision and AUC, then the statistical parity difference and ratio, the equal opportunity
difference and the equalized odds difference. fairlearn installs into our environment without
changing anything (it is in the ``dev`` extra), so both run in this process. Every number must
agree within 1e-6; the ratio is fairlearn / DecisionLoop. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import host

from decisionloop.evaluation.fairness import FairnessReport, fairness_report

RESULTS = Path(__file__).resolve().parent / "results" / "fairness.json"
SEED = 20261126
THRESHOLD = 0.5
TOLERANCE = 1e-6
GOAL = 100.0
PER_GROUP = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "auc")
BETWEEN = (
    "statistical_parity_difference",
    "statistical_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)


def make_data(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    senior = rng.integers(0, 2, rows)
    region = rng.choice(np.array(["north", "south", "east", "west", "central"]), rows)
    y = (rng.random(rows) < 0.25 + 0.1 * senior).astype(np.int64)
    # scores on a 0.001 grid: plenty of ties, which the AUC must handle as scikit-learn does
    scores = np.round(np.clip(rng.normal(0.35 + 0.25 * y - 0.05 * senior, 0.2), 0, 1), 3)
    return {"y": y, "scores": scores, "senior": senior, "region": region}


def run_decisionloop(data: dict[str, np.ndarray]) -> FairnessReport:
    sensitive = {"senior": data["senior"], "region": data["region"]}
    return fairness_report(data["y"], data["scores"], THRESHOLD, sensitive)


def run_fairlearn(data: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per column: the by-group table and the between-group numbers, as fairlearn computes them
    (``MetricFrame.difference``/``ratio`` are what its demographic parity and equalized odds
    functions call, on one frame here instead of one frame per function)."""
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import precision_score, roc_auc_score

    def precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(precision_score(y_true, y_pred, zero_division=0))

    y, scores = data["y"], data["scores"]
    predicted = (scores >= THRESHOLD).astype(np.int64)
    out: dict[str, dict[str, Any]] = {}
    for column in ("senior", "region"):
        rates = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
                "precision": precision,
            },
            y_true=y,
            y_pred=predicted,
            sensitive_features=data[column],
        )
        auc = MetricFrame(
            metrics={"auc": roc_auc_score},
            y_true=y,
            y_pred=scores,
            sensitive_features=data[column],
        )
        difference, ratio = rates.difference(), rates.ratio()
        out[column] = {
            "by_group": {
                str(group): {
                    **{k: float(v) for k, v in rates.by_group.loc[group].items()},
                    "auc": float(auc.by_group.loc[group, "auc"]),
                }
                for group in rates.by_group.index
            },
            "statistical_parity_difference": float(difference["selection_rate"]),
            "statistical_parity_ratio": float(ratio["selection_rate"]),
            "equal_opportunity_difference": float(difference["true_positive_rate"]),
            "equalized_odds_difference": float(
                max(difference["true_positive_rate"], difference["false_positive_rate"])
            ),
        }
    return out


def compare(report: FairnessReport, fairlearn: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The largest absolute difference between the two sides, per metric."""
    worst: dict[str, float] = {}
    for column in report.columns:
        theirs = fairlearn[column.column]
        assert sorted(theirs["by_group"]) == sorted(g.group for g in column.groups)
        for group in column.groups:
            for metric in PER_GROUP:
                ours = getattr(group, metric)
                gap = abs(ours - theirs["by_group"][group.group][metric])
                worst[metric] = max(worst.get(metric, 0.0), gap)
        for metric in BETWEEN:
            gap = abs(getattr(column, metric) - theirs[metric])
            worst[metric] = max(worst.get(metric, 0.0), gap)
    return {"max_abs_difference": worst, "identical": max(worst.values()) <= TOLERANCE}


def timed(function: Any, data: dict[str, np.ndarray], repeats: int) -> tuple[Any, list[float]]:
    result, samples = None, []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(data)
        samples.append(time.perf_counter() - started)
    return result, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one fairlearn run (about 1 min)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    data = make_data(args.rows)
    run_decisionloop(data)  # warm-up: imports and first-touch allocations
    report, ours = timed(run_decisionloop, data, 3 if args.quick else 7)
    theirs_result, theirs = timed(run_fairlearn, data, 1 if args.quick else 3)
    check = compare(report, theirs_result)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    rows = [
        {
            "step": "DecisionLoop `fairness_report` (2 columns, 7 groups)",
            "n": len(ours),
            "seconds": ours_s,
            "ratio": 1.0,
        },
        {
            "step": "fairlearn `MetricFrame` x2 per column (rates; AUC) + difference/ratio",
            "n": len(theirs),
            "seconds": theirs_s,
            "ratio": theirs_s / ours_s,
        },
    ]
    result = {
        "command": " ".join(["python", "benchmarks/fairness.py", *sys.argv[1:]]),
        "quick": args.quick,
        "rows": args.rows,
        "seed": SEED,
        "machine": {
            **host(),
            "versions": {p: metadata.version(p) for p in ("numpy", "fairlearn", "scikit-learn")},
        },
        "table": rows,
        "speedup": theirs_s / ours_s,
        "goal": {"at_least": GOAL, "met": theirs_s / ours_s >= GOAL},
        "agreement": {"tolerance": TOLERANCE, **check},
        "samples": {"decisionloop": ours, "fairlearn": theirs},
        "report": report.to_dict(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['step']:<75} n={row['n']}  {row['seconds']:8.3f} s  {row['ratio']:7.1f}x")
    print(f"agreement within {TOLERANCE}: {check['identical']}; largest difference per metric:")
    for metric, gap in check["max_abs_difference"].items():
        print(f"  {metric:<32} {gap:.2e}")
    if args.markdown:
        print("\n| step | n | seconds | fairlearn / DecisionLoop |\n|---|--:|--:|--:|")
        for row in rows:
            print(f"| {row['step']} | {row['n']} | {row['seconds']:.3f} s | {row['ratio']:.1f}x |")
    print(f"wrote {args.output} in {result['total_seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
