"""Feature importance of a trained model, in the terms its library uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decisionloop.registry.bundle import ModelBundle

__all__ = ["feature_importance"]


def feature_importance(
    bundle: ModelBundle, top: int = 15
) -> tuple[list[tuple[str, float]], str | None]:
    """The ``top`` features by importance, largest first, and the importance's kind: gain
    (XGBoost, LightGBM), impurity (scikit-learn trees) or |coefficient| (linear models,
    on the unscaled features). Empty with None when the model offers none."""
    import numpy as np

    names = list(bundle.preprocessor.feature_names)
    model: Any = bundle.model
    values: dict[str, float] = {}
    kind: str | None = None
    booster = getattr(model, "booster", None)
    if bundle.flavor == "xgboost" and booster is not None:
        scores = booster.get_score(importance_type="gain")
        # a booster trained on unnamed columns calls them f0, f1, ...
        for key, value in scores.items():
            if key.startswith("f") and key[1:].isdigit() and key not in names:
                index = int(key[1:])
                key = names[index] if index < len(names) else key
            values[key] = float(value)
        kind = "gain"
    elif bundle.flavor == "lightgbm" and booster is not None:
        gains = booster.feature_importance(importance_type="gain")
        values = {name: float(v) for name, v in zip(names, gains, strict=False)}
        kind = "gain"
    elif getattr(model, "estimator", None) is not None and hasattr(
        model.estimator, "feature_importances_"
    ):
        raw = np.asarray(model.estimator.feature_importances_, dtype="float64")
        values = {name: float(v) for name, v in zip(names, raw, strict=False)}
        kind = "impurity"
    elif getattr(model, "coefficients", None) is not None:
        raw = np.abs(np.asarray(model.coefficients, dtype="float64"))
        values = {name: float(v) for name, v in zip(names, raw, strict=False)}
        kind = "|coefficient|"
    ranked = sorted(
        ((name, value) for name, value in values.items() if value > 0),
        key=lambda item: (-item[1], item[0]),
    )
    return ranked[:top], kind if ranked else None
