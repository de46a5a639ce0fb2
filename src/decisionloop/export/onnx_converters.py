"""The converters of the tree-ensemble flavors: onnxmltools for XGBoost and LightGBM, skl2onnx
for scikit-learn. Each takes a bundle's model and the feature count, and returns an ONNX model
whose one input ``input`` is the float32 feature matrix ``[N, F]`` the preprocessor makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Unavailable

if TYPE_CHECKING:
    import onnx

    from decisionloop.registry.bundle import ModelBundle

#: the ``ai.onnx`` opset of every exported graph (the newest onnxmltools converts to)
OPSET = 15
#: the ``ai.onnx.ml`` opset (tree ensembles, OneHotEncoder)
ML_OPSET = 3
#: ONNX IR version 8 goes with opset 15
IR_VERSION = 8
INSTALL_HINT = "pip install 'decisionloop[onnx]'"


def require(module: str) -> Any:
    """Import an optional ONNX package, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(
            f"ONNX export needs the {module.split('.')[0]} package, which is not installed",
            hint=INSTALL_HINT,
        ) from exc


def _convert_xgboost(bundle: ModelBundle, width: int) -> onnx.ModelProto:
    onnxmltools = require("onnxmltools")
    data_types = require("onnxmltools.convert.common.data_types")
    model: Any = bundle.model
    booster = model.booster.copy()
    # onnxmltools reads features by their default names f0, f1, ...
    booster.feature_names = None
    booster.feature_types = None
    proto: onnx.ModelProto = onnxmltools.convert_xgboost(
        booster, initial_types=[("input", data_types.FloatTensorType([None, width]))],
        target_opset=OPSET,
    )  # fmt: skip
    return proto


def _convert_lightgbm(bundle: ModelBundle, width: int) -> onnx.ModelProto:
    import lightgbm

    onnxmltools = require("onnxmltools")
    data_types = require("onnxmltools.convert.common.data_types")
    model: Any = bundle.model
    text = float32_thresholds(model.booster.model_to_string())
    proto: onnx.ModelProto = onnxmltools.convert_lightgbm(
        lightgbm.Booster(model_str=text),
        initial_types=[("input", data_types.FloatTensorType([None, width]))],
        target_opset=OPSET,
        zipmap=False,
    )
    return proto


def float32_thresholds(text: str) -> str:
    """A LightGBM text model whose numerical split thresholds are rounded down to float32.

    LightGBM compares ``x <= threshold`` in float64; ONNX trees compare in float32, and a
    threshold rounded to the nearest float32 could land above a feature value that LightGBM
    sends right. For float32 features (which the preprocessor makes) ``x <= t`` holds exactly
    when ``x <= the largest float32 not above t``, so the rounded-down model decides alike."""
    import numpy as np

    # tree_sizes gives each tree's length in bytes, which rewriting changes: without it,
    # LightGBM reads the trees one after the other
    lines = [line for line in text.split("\n") if not line.startswith("tree_sizes=")]
    for index, line in enumerate(lines):
        if not line.startswith("threshold="):
            continue
        decisions = next(
            (lines[i] for i in range(index + 1, min(index + 4, len(lines)))
             if lines[i].startswith("decision_type=")),
            "",
        )  # fmt: skip
        kinds = [int(k) for k in decisions.removeprefix("decision_type=").split()]
        values = line.removeprefix("threshold=").split()
        rounded = []
        for position, value in enumerate(values):
            if position < len(kinds) and kinds[position] & 1:
                rounded.append(value)  # a categorical split: the value is an index
                continue
            exact = float(value)
            single = np.float32(exact)
            if float(single) > exact:
                single = np.nextafter(single, np.float32(-np.inf))
            rounded.append(repr(float(single)))
        lines[index] = "threshold=" + " ".join(rounded)
    return "\n".join(lines)


def _convert_sklearn(bundle: ModelBundle, width: int) -> onnx.ModelProto:
    skl2onnx = require("skl2onnx")
    data_types = require("skl2onnx.common.data_types")
    model: Any = bundle.model
    options = {"zipmap": False} if bundle.task == "classification" else None
    proto: onnx.ModelProto = skl2onnx.convert_sklearn(
        model.estimator,
        initial_types=[("input", data_types.FloatTensorType([None, width]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options=options,
    )
    return proto


CONVERTERS: dict[str, Callable[[ModelBundle, int], onnx.ModelProto]] = {
    "xgboost": _convert_xgboost,
    "lightgbm": _convert_lightgbm,
    "random_forest": _convert_sklearn,
    "gradient_boosting": _convert_sklearn,
}
