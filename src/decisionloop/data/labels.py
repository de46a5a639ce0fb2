"""Binary targets: which value is positive, and the 0/1 vector for training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_POSITIVE_WORDS = ("yes", "true", "1", "y", "t", "churn", "churned", "positive", "bad", "default")


def label_text(value: Any) -> str:
    """One spelling per value: 1, 1.0 and True read from different files compare equal."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def target_classes(series: pd.Series, target: str) -> list[str]:
    values = sorted({label_text(v) for v in series.dropna().tolist()})
    if len(values) < 2:
        raise Invalid(
            f"target column {target!r} has only one class ({', '.join(values) or 'no values'})",
            hint="a binary classifier needs rows of both classes",
        )
    if len(values) > 2:
        shown = ", ".join(values[:5]) + ("..." if len(values) > 5 else "")
        raise Invalid(
            f"target column {target!r} has {len(values)} classes ({shown}); binary is supported",
            hint="choose a two-valued column, or derive one (e.g. churn = Yes/No)",
        )
    return values


def infer_positive(series: pd.Series, target: str) -> str:
    """The positive class: a yes-like value if there is one, else the rarer value."""
    classes = target_classes(series, target)
    for word in _POSITIVE_WORDS:
        for value in classes:
            if value.lower() == word:
                return value
    counts = series.dropna().map(label_text).value_counts()
    return str(min(classes, key=lambda c: (counts.get(c, 0), c)))


def encode_target(series: pd.Series, target: str, positive: str) -> tuple[np.ndarray, str]:
    """0/1 labels and the negative class's spelling; rows with a missing target are refused."""
    if series.isna().any():
        raise Invalid(
            f"target column {target!r} has {int(series.isna().sum())} missing value(s)",
            hint="drop or fill rows without a label before training",
        )
    classes = target_classes(series, target)
    if positive not in classes:
        raise Invalid(
            f"positive class {positive!r} is not a value of {target!r} ({', '.join(classes)})",
            hint="set data.positive in decisionloop.yaml to one of those values",
        )
    negative = next(c for c in classes if c != positive)
    y = (series.map(label_text) == positive).to_numpy(dtype="int32")
    return y, negative
