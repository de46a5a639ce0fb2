"""The ONNX graph builder's parts: float32 thresholds for LightGBM, typed inputs, refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from decisionloop.config import ColumnSpec
from decisionloop.data.validation import validate_frame
from decisionloop.errors import Invalid, Unavailable
from decisionloop.export.onnx import onnx_feeds
from decisionloop.export.onnx_converters import INSTALL_HINT, float32_thresholds, require
from decisionloop.export.onnx_graph import build_model, input_tensors
from decisionloop.registry.bundle import ModelBundle
from decisionloop.training.preprocess import Preprocessor
from decisionloop.training.registry import create_trainer

pytest.importorskip("onnx", reason="needs pip install 'decisionloop[onnx]'")

COLUMNS = {
    "amount": ColumnSpec(type="number", nullable=True),
    "count": ColumnSpec(type="integer", nullable=False),
    "visits": ColumnSpec(type="integer", nullable=True),
    "member": ColumnSpec(type="boolean", nullable=False),
    "opted_in": ColumnSpec(type="boolean", nullable=True),
    "plan": ColumnSpec(type="string", nullable=True),
}


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [1.5, None, 3.25],
            "count": [1, 2, 3],
            "visits": [4, None, 6],
            "member": [True, False, True],
            "opted_in": ["yes", None, "no"],
            "plan": ["basic", None, "gold"],
        }
    )


@dataclass
class _NaiveBayes:
    """A trainer flavor the exporter does not know."""

    flavor: ClassVar[str] = "naive_bayes"
    task: str = "classification"


def bundle(model: Any) -> ModelBundle:
    preprocessor = Preprocessor.fit(validate_frame(frame(), COLUMNS), COLUMNS)
    return ModelBundle(preprocessor=preprocessor, model=model, inputs=COLUMNS)


def test_inputs_are_typed_from_the_signature() -> None:
    tensors = {t.name: t.onnx_type for t in input_tensors(bundle(_NaiveBayes()))}

    assert tensors == {
        "amount": "tensor(double)",
        "count": "tensor(int64)",
        "visits": "tensor(double)",  # nullable: NaN marks a missing value
        "member": "tensor(bool)",
        "opted_in": "tensor(double)",
        "plan": "tensor(string)",
    }


def test_feeds_coerce_raw_values_to_the_input_types() -> None:
    feeds = onnx_feeds(frame(), input_tensors(bundle(_NaiveBayes())))

    assert feeds["count"].dtype == np.int64
    assert feeds["member"].tolist() == [True, False, True]
    np.testing.assert_array_equal(feeds["opted_in"], [1.0, np.nan, 0.0])
    np.testing.assert_array_equal(feeds["amount"], [1.5, np.nan, 3.25])
    assert feeds["plan"].tolist() == ["basic", "", "gold"]


def test_unknown_flavor_is_refused_with_the_known_ones() -> None:
    with pytest.raises(Invalid, match="naive_bayes") as caught:
        build_model(bundle(_NaiveBayes()))

    assert "xgboost" in caught.value.hint


def test_missing_package_names_the_extra() -> None:
    with pytest.raises(Unavailable, match="not installed") as caught:
        require("onnx_converter_that_does_not_exist")

    assert caught.value.hint == INSTALL_HINT == "pip install 'decisionloop[onnx]'"


def test_lightgbm_thresholds_round_down_to_float32() -> None:
    # 0.1 rounds up to the float32 0.100000001...; 2.5 is a float32 already; 3 is a category
    text = "tree_sizes=99\nTree=0\nthreshold=0.1 2.5 3\ndecision_type=2 2 1\n"

    rewritten = float32_thresholds(text)

    assert "tree_sizes" not in rewritten
    line = next(x for x in rewritten.splitlines() if x.startswith("threshold="))
    low, exact, category = line.removeprefix("threshold=").split()
    assert float(low) < 0.1
    assert float(np.float32(float(low))) == float(low)
    assert float(np.nextafter(np.float32(low), np.float32(1))) > 0.1  # the largest below
    assert (exact, category) == ("2.5", "3")


def test_lightgbm_with_float32_thresholds_predicts_alike() -> None:
    import lightgbm

    rng = np.random.default_rng(4)
    # values on a coarse grid put many rows right at the split thresholds
    x = (rng.integers(0, 50, size=(600, 3)) / 7).astype("float32")
    y = (x[:, 0] + x[:, 1] > 7).astype("int32")
    trainer: Any = create_trainer(
        "lightgbm", params={"n_estimators": 20, "learning_rate": 0.3}
    ).fit(x, y, feature_names=["a", "b", "c"])
    original = trainer.booster

    rewritten = lightgbm.Booster(model_str=float32_thresholds(original.model_to_string()))

    np.testing.assert_array_equal(rewritten.predict(x), original.predict(x))
