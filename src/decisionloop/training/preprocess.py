"""Preprocessing that lives inside the saved model, described as JSON (never pickled).

Numeric and boolean columns become float columns with missing values imputed by the training
median; string columns are one-hot encoded over their most frequent training categories
(unknown and missing values encode as all zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decisionloop.config import ColumnSpec
from decisionloop.errors import Invalid

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FORMAT = "decisionloop.preprocessor/1"
MAX_CATEGORIES = 100


@dataclass(frozen=True, slots=True)
class NumericFeature:
    name: str
    fill: float


@dataclass(frozen=True, slots=True)
class CategoricalFeature:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Preprocessor:
    """A fitted, immutable column-to-matrix transformation."""

    numeric: tuple[NumericFeature, ...] = ()
    categorical: tuple[CategoricalFeature, ...] = ()
    feature_names: tuple[str, ...] = field(default=())

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        columns: dict[str, ColumnSpec],
        *,
        max_categories: int = MAX_CATEGORIES,
    ) -> Preprocessor:
        numeric: list[NumericFeature] = []
        categorical: list[CategoricalFeature] = []
        names: list[str] = []
        for name, spec in columns.items():
            series = frame[name]
            if spec.type in ("integer", "number", "boolean"):
                median = series.median()
                fill = float(median) if median == median else 0.0  # NaN when all missing
                numeric.append(NumericFeature(name, fill))
                names.append(name)
            elif spec.type == "string":
                counts = series.dropna().astype(str).value_counts(sort=True)
                top = sorted(counts.index[:max_categories], key=lambda c: (-counts[c], c))
                categorical.append(CategoricalFeature(name, tuple(top)))
                names.extend(f"{name}={category}" for category in top)
            # datetime columns are not model inputs in this version
        if not names:
            raise Invalid(
                "no usable feature columns",
                hint="the data needs numeric, boolean or string columns besides the target",
            )
        # the matrix holds every numeric column first, then the one-hot blocks (see transform)
        names = [f.name for f in numeric] + [
            f"{f.name}={category}" for f in categorical for category in f.categories
        ]
        return cls(tuple(numeric), tuple(categorical), tuple(names))

    @property
    def input_columns(self) -> list[str]:
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The float32 feature matrix for already type-coerced columns."""
        import numpy as np
        import pandas as pd

        blocks: list[np.ndarray] = []
        if self.numeric:
            values = np.column_stack(
                [frame[f.name].to_numpy(dtype="float64", na_value=np.nan) for f in self.numeric]
            )
            fills = np.array([f.fill for f in self.numeric])
            missing = np.isnan(values)
            if missing.any():
                values = np.where(missing, fills, values)
            blocks.append(values.astype("float32"))
        for feature in self.categorical:
            # -1 for unknown and missing values (pd.Categorical warns on unknown values and
            # will raise on them in pandas 4)
            column = frame[feature.name].astype(object).where(frame[feature.name].notna(), None)
            codes = pd.Index(list(feature.categories), dtype=object).get_indexer(pd.Index(column))
            one_hot = np.zeros((len(frame), len(feature.categories)), dtype="float32")
            known = codes >= 0
            one_hot[np.nonzero(known)[0], codes[known]] = 1.0
            blocks.append(one_hot)
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "numeric": [{"name": f.name, "fill": f.fill} for f in self.numeric],
            "categorical": [
                {"name": f.name, "categories": list(f.categories)} for f in self.categorical
            ],
            "feature_names": list(self.feature_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        if data.get("format") != FORMAT:
            raise Invalid(
                f"unknown preprocessor format {data.get('format')!r}",
                hint="the model was saved by a newer DecisionLoop; upgrade to load it",
            )
        return cls(
            numeric=tuple(
                NumericFeature(str(d["name"]), float(d["fill"])) for d in data["numeric"]
            ),
            categorical=tuple(
                CategoricalFeature(str(d["name"]), tuple(str(c) for c in d["categories"]))
                for d in data["categorical"]
            ),
            feature_names=tuple(str(n) for n in data["feature_names"]),
        )
