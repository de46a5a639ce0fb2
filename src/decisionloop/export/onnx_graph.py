"""The ONNX graph of a model bundle: raw columns in, the preprocessing, the model, scores out.

The graph has one input per raw column the preprocessor reads, typed from the signature:

| column type | ONNX input (shape ``[N]``) | missing values |
|---|---|---|
| ``number`` | ``tensor(double)`` | NaN |
| ``integer``, ``boolean`` (nullable) | ``tensor(double)`` | NaN |
| ``integer`` (not nullable) | ``tensor(int64)`` | none (the signature refuses them) |
| ``boolean`` (not nullable) | ``tensor(bool)`` | none (the signature refuses them) |
| ``string`` | ``tensor(string)`` | the empty string |

and does what :meth:`Preprocessor.transform` does: numbers are imputed with the training
median in float64, then cast to float32; strings are one-hot encoded over the training
categories, an unknown (or empty) string giving all zeros. The model follows: XGBoost and
LightGBM through onnxmltools, scikit-learn forests and gradient boosting through skl2onnx, the
linear trainers as MatMul + Add (+ Sigmoid) built here. Outputs are ``probability``
(``tensor(double)``, the positive class) and ``label`` (``tensor(string)``, at the model's
threshold) for classification, ``value`` (``tensor(double)``) for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from decisionloop.errors import DecisionLoopError, Invalid, Unavailable
from decisionloop.export.onnx_converters import (
    CONVERTERS,
    IR_VERSION,
    ML_OPSET,
    OPSET,
    require,
)

if TYPE_CHECKING:
    import onnx

    from decisionloop.config import ColumnType
    from decisionloop.registry.bundle import ModelBundle

# internal names start with "dl/" so that no column name can collide with them
_MODEL_PREFIX = "dl/model/"


@dataclass(frozen=True, slots=True)
class OnnxTensor:
    """One input or output of the exported graph: its name, its ONNX type (e.g.
    ``tensor(double)``), and for inputs the column's declared type and nullability."""

    name: str
    onnx_type: str
    column_type: ColumnType | None = None
    nullable: bool = True

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.onnx_type}
        if self.column_type is not None:
            data.update(column_type=self.column_type, nullable=self.nullable)
        return data


def input_tensors(bundle: ModelBundle) -> list[OnnxTensor]:
    """The graph's inputs: the columns the preprocessor reads, in the signature's order."""
    used = set(bundle.preprocessor.input_columns)
    tensors = []
    for name, spec in bundle.inputs.items():
        if name not in used:
            continue
        if spec.type == "string":
            onnx_type = "tensor(string)"
        elif spec.type == "integer" and not spec.nullable:
            onnx_type = "tensor(int64)"
        elif spec.type == "boolean" and not spec.nullable:
            onnx_type = "tensor(bool)"
        elif spec.type in ("number", "integer", "boolean"):
            onnx_type = "tensor(double)"
        else:
            raise Invalid(
                f"column {name!r} of type {spec.type!r} cannot be an ONNX input",
                hint="ONNX export supports number, integer, boolean and string columns",
            )
        tensors.append(OnnxTensor(name, onnx_type, spec.type, spec.nullable))
    return tensors


def output_tensors(bundle: ModelBundle) -> list[OnnxTensor]:
    if bundle.task == "classification":
        return [OnnxTensor("probability", "tensor(double)"), OnnxTensor("label", "tensor(string)")]
    return [OnnxTensor("value", "tensor(double)")]


class _Graph:
    """Nodes and initializers being collected, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"dl/{stem}_{self._count}"

    def constant(self, stem: str, values: Any, dtype: str) -> str:
        import numpy as np
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, *, domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        output = self.name(stem)
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=self.name(op), domain=domain, **attrs)
        )
        return output


def _preprocessing(graph: _Graph, bundle: ModelBundle, inputs: list[OnnxTensor]) -> str:
    """Nodes turning the raw inputs into the float32 matrix ``Preprocessor.transform`` makes;
    returns the matrix's name (numeric columns first, then each one-hot block)."""
    from onnx import TensorProto

    by_name = {tensor.name: tensor for tensor in inputs}
    axis_1 = graph.constant("axis_1", [1], "int64")
    blocks: list[str] = []
    numeric = bundle.preprocessor.numeric
    if numeric:
        columns = []
        for feature in numeric:
            value = feature.name
            if by_name[feature.name].onnx_type != "tensor(double)":
                value = graph.node("Cast", [value], f"{feature.name}_double", to=TensorProto.DOUBLE)
            columns.append(graph.node("Unsqueeze", [value, axis_1], f"{feature.name}_column"))
        values = columns[0]
        if len(columns) > 1:
            values = graph.node("Concat", columns, "numeric", axis=1)
        fills = graph.constant("medians", [[f.fill for f in numeric]], "float64")
        missing = graph.node("IsNaN", [values], "missing")
        imputed = graph.node("Where", [missing, fills, values], "imputed")
        # imputed in float64, then cast, as transform does
        blocks.append(graph.node("Cast", [imputed], "numeric_float", to=TensorProto.FLOAT))
    for category in bundle.preprocessor.categorical:
        if not category.categories:
            continue  # a column without categories adds no feature
        blocks.append(
            graph.node(
                "OneHotEncoder",
                [category.name],
                f"{category.name}_one_hot",
                domain="ai.onnx.ml",
                cats_strings=list(category.categories),
                zeros=1,  # unknown values encode as all zeros
            )
        )
    if not blocks:
        raise Invalid("the model has no feature columns", hint="nothing to export")
    if len(blocks) == 1:
        return graph.node("Identity", blocks, "features")
    return graph.node("Concat", blocks, "features", axis=1)


def _linear_model(graph: _Graph, bundle: ModelBundle, features: str) -> str:
    """``intercept + x @ coefficients`` in float64 (through Sigmoid for classification), as
    the linear trainers compute it."""
    from onnx import TensorProto

    model: Any = bundle.model
    as_double = graph.node("Cast", [features], "features_double", to=TensorProto.DOUBLE)
    coefficients = graph.constant("coefficients", model.coefficients, "float64")
    intercept = graph.constant("intercept", [model.intercept], "float64")
    product = graph.node("MatMul", [as_double, coefficients], "product")
    linear = graph.node("Add", [product, intercept], "linear")
    if bundle.task == "classification":
        return graph.node("Sigmoid", [linear], "positive")
    return linear


def _converted(
    graph: _Graph, bundle: ModelBundle, features: str, model_proto: onnx.ModelProto
) -> str:
    """Splice a converter's graph (input ``[N, F]`` float32) after the preprocessing; returns
    the score: the positive class's probability, or the regression value, shape ``[N]``."""
    from onnx import compose

    prefixed = compose.add_prefix(model_proto, _MODEL_PREFIX)
    source = prefixed.graph
    graph.nodes.append(_identity(features, source.input[0].name))
    graph.nodes.extend(source.node)
    graph.initializers.extend(source.initializer)
    outputs = [output.name for output in source.output]
    if bundle.task == "classification":
        # converters output (label, probabilities [N, 2]); column 1 is the positive class
        index = graph.constant("positive_column", 1, "int64")
        return graph.node("Gather", [outputs[1], index], "positive", axis=1)
    return graph.node("Reshape", [outputs[0], graph.constant("flat", [-1], "int64")], "value")


def _identity(source: str, target: str) -> onnx.NodeProto:
    from onnx import helper

    return helper.make_node("Identity", [source], [target], name=f"feed_{target}")


#: the flavors this module exports
FLAVORS = frozenset({*CONVERTERS, "logistic_regression", "linear_regression"})


def build_model(bundle: ModelBundle, *, doc: str = "") -> onnx.ModelProto:
    """The ONNX model of ``bundle``: raw columns in, preprocessing, the model, scores out.
    Raises Invalid for a flavor it cannot export, Unavailable without the onnx extra."""
    require("onnx")
    from onnx import TensorProto, helper

    if bundle.flavor not in FLAVORS:
        raise Invalid(
            f"ONNX export does not know the {bundle.flavor!r} flavor",
            hint=f"it exports {', '.join(sorted(FLAVORS))}",
        )
    inputs, outputs = input_tensors(bundle), output_tensors(bundle)
    clashes = sorted({t.name for t in inputs} & {t.name for t in outputs})
    if clashes:
        raise Invalid(
            f"input column(s) {', '.join(clashes)} would have an output's name",
            hint="ONNX names inputs and outputs alike; rename the column and retrain",
        )
    graph = _Graph()
    features = _preprocessing(graph, bundle, inputs)
    width = len(bundle.preprocessor.feature_names)
    opsets = {"": OPSET, "ai.onnx.ml": ML_OPSET}
    if bundle.flavor in CONVERTERS:
        try:
            converted = CONVERTERS[bundle.flavor](bundle, width)
        except DecisionLoopError:
            raise
        except Exception as exc:  # the converters raise anything from ValueError to KeyError
            raise Unavailable(
                f"the {bundle.flavor} converter cannot convert this model: "
                f"{type(exc).__name__}: {exc}",
                hint="check the converter versions decisionloop[onnx] pins; serve the model "
                "with `decisionloop serve` instead",
            ) from exc
        for entry in converted.opset_import:
            domain = "" if entry.domain == "ai.onnx" else entry.domain
            if domain in ("", "ai.onnx.ml") and entry.version > opsets[domain]:
                raise Unavailable(
                    f"the {bundle.flavor} converter made opset {entry.version} of "
                    f"{domain or 'ai.onnx'}, newer than the export's {opsets[domain]}",
                    hint="install the converter versions decisionloop[onnx] pins",
                )
            opsets.setdefault(domain, entry.version)
        score = _converted(graph, bundle, features, converted)
    else:
        score = _linear_model(graph, bundle, features)
    _outputs(graph, bundle, score)

    element = {
        "tensor(double)": TensorProto.DOUBLE,
        "tensor(int64)": TensorProto.INT64,
        "tensor(bool)": TensorProto.BOOL,
        "tensor(string)": TensorProto.STRING,
    }
    onnx_graph = helper.make_graph(
        graph.nodes,
        f"{bundle.flavor}_{bundle.task}",
        [helper.make_tensor_value_info(t.name, element[t.onnx_type], ["N"]) for t in inputs],
        [helper.make_tensor_value_info(t.name, element[t.onnx_type], ["N"]) for t in outputs],
        graph.initializers,
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid(domain, v) for domain, v in sorted(opsets.items())],
        producer_name="decisionloop",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    return model


def _outputs(graph: _Graph, bundle: ModelBundle, score: str) -> None:
    """Name the graph's outputs: the score as double, and the label at the threshold."""
    from onnx import TensorProto, helper

    name = "probability" if bundle.task == "classification" else "value"
    graph.nodes.append(
        helper.make_node("Cast", [score], [name], name="score_double", to=TensorProto.DOUBLE)
    )
    if bundle.task != "classification":
        return
    threshold = graph.constant("threshold", bundle.threshold, "float64")
    positive = graph.node("GreaterOrEqual", [name, threshold], "is_positive")
    labels = [
        graph.constant("positive_label", [bundle.positive_label], "object"),
        graph.constant("negative_label", [bundle.negative_label], "object"),
    ]
    graph.nodes.append(helper.make_node("Where", [positive, *labels], ["label"], name="label"))
