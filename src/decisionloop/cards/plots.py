"""The card's plots as base64 PNG data, drawn by matplotlib's Agg backend (imported lazily:
only the HTML card needs it)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decisionloop.cards.model_card import ModelCard

__all__ = ["card_plots"]

_BLUE, _ORANGE, _GREY = "#2563eb", "#ea580c", "#9ca3af"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    # no Software metadata: the same card gives the same bytes
    figure.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _roc(card: ModelCard) -> str | None:
    curve = card.quantitative_analysis.roc_curve
    if not curve:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.2, 4))
    auc = card.metric("auc")
    label = f"test AUC {auc.test:.3f}" if auc and auc.test is not None else "test"
    axes.plot(curve["fpr"], curve["tpr"], color=_BLUE, label=label)
    axes.plot([0, 1], [0, 1], linestyle="--", color=_GREY, label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    return _png(figure)


def _calibration(card: ModelCard) -> str | None:
    curve = card.quantitative_analysis.calibration_curve
    if not curve:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.2, 4))
    ece = card.quantitative_analysis.expected_calibration_error
    axes.plot(
        curve["mean_predicted"],
        curve["fraction_positive"],
        marker="o",
        color=_ORANGE,
        label=f"model (ECE {ece:.3f})" if ece is not None else "model",
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color=_GREY, label="perfect")
    axes.set(xlabel="mean predicted probability", ylabel="observed positive rate")
    axes.set_title("Calibration")
    axes.legend(loc="upper left")
    return _png(figure)


def _importance(card: ModelCard) -> str | None:
    ranked = card.quantitative_analysis.feature_importance
    if not ranked:
        return None
    plt = _pyplot()
    names = [name for name, _ in ranked][::-1]
    values = [value for _, value in ranked][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
    axes.barh(names, values, color=_BLUE)
    kind = card.quantitative_analysis.importance_type or "importance"
    axes.set(xlabel=kind, title=f"Feature importance (top {len(names)})")
    return _png(figure)


def _fairness(card: ModelCard) -> str | None:
    columns = [c for c in card.quantitative_analysis.fairness if c.groups]
    if not columns:
        return None
    plt = _pyplot()
    figure, axes_list = plt.subplots(
        1, len(columns), figsize=(3.4 * len(columns) + 0.6, 3.4), squeeze=False
    )
    for axes, column in zip(axes_list[0], columns, strict=True):
        names = [str(g["group"]) for g in column.groups]
        rates = [g["selection_rate"] or 0.0 for g in column.groups]
        axes.bar(names, rates, color=_BLUE)
        ratio = column.statistical_parity_ratio
        title = column.column + (f"\nparity ratio {ratio:.2f}" if ratio is not None else "")
        axes.set(title=title, ylabel="selection rate")
        axes.tick_params(axis="x", labelrotation=30)
    return _png(figure)


def _drift(card: ModelCard) -> str | None:
    drift = card.considerations.drift
    measured = [c for c in drift.columns if c.get("statistic") is not None] if drift else []
    if not measured:
        return None
    plt = _pyplot()
    measured = sorted(measured, key=lambda c: -float(c["statistic"]))[:20][::-1]
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(measured) + 1.2))
    axes.barh(
        [str(c["column"]) for c in measured],
        [float(c["statistic"]) for c in measured],
        color=[_ORANGE if c["drifted"] else _BLUE for c in measured],
    )
    axes.set(xlabel="drift statistic (orange: drifted)", title="Drift by column")
    return _png(figure)


def card_plots(card: ModelCard) -> dict[str, str]:
    """Plot name -> base64 PNG, for the plots the card has data for."""
    drawn = {
        "roc": _roc(card),
        "calibration": _calibration(card),
        "importance": _importance(card),
        "fairness": _fairness(card),
        "drift": _drift(card),
    }
    return {name: data for name, data in drawn.items() if data is not None}
