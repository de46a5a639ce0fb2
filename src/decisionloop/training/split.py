"""Train/test splits that are recorded: strategy, seed, sizes and a hash of the test rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Split:
    train_index: np.ndarray
    test_index: np.ndarray
    strategy: str
    seed: int
    test_size: float

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.test_index.astype("int64").tobytes()).hexdigest()
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "test_size": self.test_size,
            "train_rows": len(self.train_index),
            "test_rows": len(self.test_index),
            "test_rows_sha256": digest,
        }


def split_rows(
    y: np.ndarray,
    *,
    test_size: float,
    seed: int,
    timestamps: pd.Series | None = None,
    stratify: bool = True,
) -> Split:
    """Stratified random split, or a time split (latest rows are the test set) with timestamps.

    ``stratify=False`` (regression targets) gives a plain seeded random split."""
    import numpy as np

    n = len(y)
    n_test = round(n * test_size)
    if n_test < 2 or n - n_test < 2:
        raise Invalid(
            f"{n} rows are too few to split into train and test sets",
            hint="provide more rows or change model.test_size",
        )
    if timestamps is not None:
        order = np.argsort(timestamps.to_numpy(), kind="stable")
        split = Split(
            np.sort(order[: n - n_test]), np.sort(order[n - n_test :]), "time", seed, test_size
        )
    else:
        from sklearn.model_selection import train_test_split

        index = np.arange(n)
        if not stratify:
            train, test = train_test_split(index, test_size=n_test, random_state=seed)
            return Split(np.sort(train), np.sort(test), "random", seed, test_size)
        try:
            train, test = train_test_split(index, test_size=n_test, random_state=seed, stratify=y)
        except ValueError:  # a class too small to stratify
            train, test = train_test_split(index, test_size=n_test, random_state=seed)
        split = Split(np.sort(train), np.sort(test), "stratified", seed, test_size)
    if not stratify:
        return split
    for name, part in (("training", split.train_index), ("test", split.test_index)):
        if len(np.unique(y[part])) < 2:
            raise Invalid(
                f"the {name} set has only one class",
                hint="the target needs both classes in enough rows; check the data or test_size",
            )
    return split
