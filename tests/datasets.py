"""Synthetic data sets the code has never seen, with their own schemas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def loan_defaults(rows: int = 800, seed: int = 3) -> pd.DataFrame:
    """A loan book: the target `status` is 'default' or 'repaid', driven by the features."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.5, 0.5, rows).round(2)
    age = rng.integers(21, 75, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    guarantor = rng.choice([True, False], rows)
    debt_ratio = rng.uniform(0, 1.2, rows).round(3)
    score = 2.5 * debt_ratio - (income / income.mean()) - 0.8 * guarantor + (region == "east") * 0.7
    probability = 1 / (1 + np.exp(-(score - 0.3) * 2.5))
    status = np.where(rng.uniform(size=rows) < probability, "default", "repaid")
    frame = pd.DataFrame(
        {
            "loan_ref": [f"L-{i:06d}" for i in range(rows)],
            "applicant_income": income,
            "age": age,
            "region": region,
            "has_guarantor": guarantor,
            "debt_ratio": debt_ratio,
            "status": status,
        }
    )
    frame.loc[rng.choice(rows, rows // 30, replace=False), "applicant_income"] = np.nan
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
