"""The training rows as validated and stored: labels, the split, the columns (``Prepared``), made
from the rows about to be stored or from a stored snapshot (``prepare_rows``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decisionloop.config import ColumnSpec
from decisionloop.errors import Invalid


@dataclass
class Prepared:
    """The training data as validated and stored, with its labels and split."""

    frame: Any = None
    y: Any = None
    positive: str = ""
    negative: str = ""
    split: Any = None
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    snapshot: Any = None
    #: the training set's feature lineage (definitions and source snapshots), with a service
    feature_lineage: dict[str, Any] | None = None


def prepare_rows(settings: Any, table: Any, prepared: Prepared) -> None:
    """Labels and split from the rows about to be stored; raises Invalid to refuse them."""
    from decisionloop.data.labels import encode_target, infer_positive
    from decisionloop.data.validation import validate_frame
    from decisionloop.training.split import split_rows

    spec = settings.data
    raw = table.to_pandas()
    if len(raw) == 0:
        raise Invalid("no rows passed validation", hint="see `decisionloop data report`")
    columns = {name: col for name, col in prepared.columns.items() if name in raw.columns}
    frame = validate_frame(raw, columns)
    timestamps = frame[spec.timestamp] if spec.timestamp else None
    if settings.model.task == "regression":
        y = _numeric_target(raw[spec.target], spec.target)
        prepared.split = split_rows(
            y,
            test_size=settings.model.test_size,
            seed=settings.model.seed,
            timestamps=timestamps,
            stratify=False,
        )
        prepared.frame, prepared.y, prepared.columns = frame, y, columns
        return
    positive = (
        spec.positive
        if spec.positive is not None
        else infer_positive(raw[spec.target], spec.target)
    )
    y, negative = encode_target(raw[spec.target], spec.target, positive)
    prepared.split = split_rows(
        y, test_size=settings.model.test_size, seed=settings.model.seed, timestamps=timestamps
    )
    prepared.frame, prepared.y, prepared.positive, prepared.negative = frame, y, positive, negative
    prepared.columns = columns


def _numeric_target(series: Any, target: str) -> Any:
    """The regression target as float64; missing or non-numeric values are refused."""
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce")
    bad = int(values.isna().sum())
    if bad:
        raise Invalid(
            f"target column {target!r} has {bad} missing or non-numeric value(s)",
            hint="a regression target must be a number in every row; drop or fix those rows",
        )
    if values.nunique() < 2:
        raise Invalid(
            f"target column {target!r} is constant",
            hint="a regression target must vary; check the data or model.task",
        )
    return values.to_numpy(dtype="float64")
