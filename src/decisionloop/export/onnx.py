"""Export a registered model version to ONNX: raw columns in, scores out (docs/export.md).

The exported graph holds the preprocessing and the model (see :mod:`onnx_graph`), so any ONNX
runtime scores the raw columns the way DecisionLoop does. Before anything is written the graph
is run with onnxruntime on a sample of the version's training snapshot, plus rows with a
missing number and an unseen category, and compared with the bundle's own scores; an export
that does not reproduce them is refused. Needs ``pip install 'decisionloop[onnx]'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisionloop.errors import Invalid, NotFound, Unavailable
from decisionloop.export.onnx_converters import OPSET, require
from decisionloop.export.onnx_graph import (
    FLAVORS,
    OnnxTensor,
    build_model,
    input_tensors,
    output_tensors,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from decisionloop.backends.metadata.records import ModelVersion
    from decisionloop.platform import Platform
    from decisionloop.refs import ModelRef
    from decisionloop.registry.bundle import ModelBundle

__all__ = ["FLAVORS", "OnnxExport", "OnnxTensor", "export_onnx", "onnx_feeds"]

#: the largest difference allowed between ONNX and the bundle, per row, for a score of
#: magnitude up to 1 (probabilities); larger regression values get it relative to their size,
#: since float32 trees carry about 7 significant digits
TOLERANCE = 1e-5
#: how many snapshot rows are scored to verify an export (a seeded sample above it)
CHECK_ROWS = 5_000
#: the category verification feeds to check unknown values encode as zeros
UNSEEN = "decisionloop:unseen-category"


@dataclass(frozen=True)
class OnnxExport:
    """What an export wrote and how closely the file reproduces the model's scores."""

    path: Path
    sha256: str
    model: str
    version: int
    flavor: str
    task: str
    opset: int
    inputs: tuple[OnnxTensor, ...]
    outputs: tuple[OnnxTensor, ...]
    #: rows scored by both onnxruntime and the bundle before writing
    rows_checked: int
    #: the largest absolute difference between their scores on those rows
    max_abs_diff: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "model": self.model,
            "version": self.version,
            "flavor": self.flavor,
            "task": self.task,
            "opset": self.opset,
            "inputs": [tensor.to_dict() for tensor in self.inputs],
            "outputs": [tensor.to_dict() for tensor in self.outputs],
            "rows_checked": self.rows_checked,
            "max_abs_diff": self.max_abs_diff,
            "seconds": round(self.seconds, 3),
        }


def export_onnx(platform: Platform, ref: ModelRef | str, path: str | Path) -> OnnxExport:
    """Write ``ref`` (``name@alias`` or ``name/version``) as an ONNX model to ``path``.

    Raises NotFound for an unknown version, Unavailable without the onnx extra or when the
    graph does not reproduce the model's scores within :data:`TOLERANCE`, Invalid for a path
    that cannot be written. The file is written atomically (never half a model)."""
    started = time.perf_counter()
    require("onnx")
    require("onnxruntime")
    target = Path(path).expanduser().absolute()
    version, bundle = platform.load_model(ref)
    _check_writable(target)  # before the work, which the write would then throw away
    label = f"{version.model_name}/{version.version}"
    model = build_model(
        bundle,
        doc=f"{label} ({bundle.flavor} {bundle.task}) exported by DecisionLoop: raw input "
        "columns in, preprocessing and model inside",
    )
    _describe(model, version, bundle)
    data: bytes = model.SerializeToString()
    frame = verification_rows(platform, version, bundle)
    max_diff = _verify(data, bundle, frame, label)
    _write_atomically(target, data)
    return OnnxExport(
        path=target,
        sha256=hashlib.sha256(data).hexdigest(),
        model=version.model_name,
        version=version.version,
        flavor=bundle.flavor,
        task=bundle.task,
        opset=OPSET,
        inputs=tuple(input_tensors(bundle)),
        outputs=tuple(output_tensors(bundle)),
        rows_checked=len(frame),
        max_abs_diff=max_diff,
        seconds=time.perf_counter() - started,
    )


def onnx_feeds(frame: pd.DataFrame, inputs: Sequence[OnnxTensor]) -> dict[str, np.ndarray]:
    """The ``session.run`` feeds for raw rows: each column coerced to its declared type (as
    serving does, refusing bad values with Invalid) and to its ONNX input type; missing
    numbers become NaN and missing strings the empty string."""
    import numpy as np

    from decisionloop.config import ColumnSpec
    from decisionloop.data.validation import validate_frame

    specs = {
        t.name: ColumnSpec(type=t.column_type or "number", nullable=t.nullable) for t in inputs
    }
    prepared = validate_frame(frame, specs)
    feeds: dict[str, np.ndarray] = {}
    for tensor in inputs:
        column = prepared[tensor.name]
        if tensor.onnx_type == "tensor(string)":
            feeds[tensor.name] = np.array(
                ["" if value is None else str(value) for value in column], dtype=object
            )
        else:
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            if tensor.onnx_type == "tensor(int64)":
                feeds[tensor.name] = values.astype("int64")
            elif tensor.onnx_type == "tensor(bool)":
                feeds[tensor.name] = values.astype(bool)
            else:
                feeds[tensor.name] = values
    return feeds


def _describe(model: Any, version: ModelVersion, bundle: ModelBundle) -> None:
    """Record where the file comes from in the model's metadata."""
    from onnx import helper

    props: dict[str, str] = {
        "decisionloop.model": version.model_name,
        "decisionloop.version": str(version.version),
        "decisionloop.flavor": bundle.flavor,
        "decisionloop.task": bundle.task,
        "decisionloop.artifact_sha256": version.artifact_sha256,
    }
    if bundle.task == "classification":
        props["decisionloop.threshold"] = repr(bundle.threshold)
        props["decisionloop.classes"] = json.dumps([bundle.negative_label, bundle.positive_label])
    helper.set_model_props(model, props)
    model.model_version = version.version


def verification_rows(
    platform: Platform, version: ModelVersion, bundle: ModelBundle, *, limit: int = CHECK_ROWS
) -> pd.DataFrame:
    """Raw rows to compare ONNX with the bundle on: a seeded sample of the version's training
    snapshot (made-up rows around the training medians and categories when it has none),
    plus rows with each nullable number missing and each string unknown (and missing)."""
    import pandas as pd

    sample = _snapshot_sample(platform, version, bundle, limit)
    if sample is None or sample.empty:
        sample = _synthetic_rows(bundle)
    edges = _edge_rows(bundle, sample.iloc[:1])
    return pd.concat([sample, edges], ignore_index=True)


def _snapshot_sample(
    platform: Platform, version: ModelVersion, bundle: ModelBundle, limit: int
) -> pd.DataFrame | None:
    import numpy as np

    from decisionloop.pipelines.training_data import training_table

    columns = [tensor.name for tensor in input_tensors(bundle)]
    try:
        run = platform.runs.get(version.run_id) if version.run_id else None
        if run is None or run.snapshot_id is None:
            return None
        table = training_table(platform, run.snapshot_id, run.feature_versions)
    except (NotFound, Invalid):
        return None  # the snapshot is gone: verify on made-up rows instead
    if any(name not in table.column_names for name in columns):
        return None
    table = table.select(columns)
    if table.num_rows > limit:
        rng = np.random.default_rng(0)
        table = table.take(np.sort(rng.choice(table.num_rows, size=limit, replace=False)))
    frame: pd.DataFrame = table.to_pandas()
    try:
        bundle.prepare(frame)
    except Invalid:
        return None  # rows the signature refuses cannot be scored by either side
    return frame


def _synthetic_rows(bundle: ModelBundle, rows: int = 256) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for feature in bundle.preprocessor.numeric:
        kind = bundle.inputs[feature.name].type
        if kind == "boolean":
            columns[feature.name] = rng.integers(0, 2, rows).astype(bool)
        else:
            spread = max(abs(feature.fill), 1.0)
            values = feature.fill + rng.normal(scale=spread, size=rows)
            columns[feature.name] = values.round() if kind == "integer" else values
    for category in bundle.preprocessor.categorical:
        choices = [*category.categories, UNSEEN]
        columns[category.name] = rng.choice(np.array(choices, dtype=object), rows)
    return pd.DataFrame(columns)


def _edge_rows(bundle: ModelBundle, base: pd.DataFrame) -> pd.DataFrame:
    """Copies of one row with a nullable number missing, or a string unseen or missing, one
    change per row, and one row with all of them."""
    import numpy as np
    import pandas as pd

    changes: list[tuple[str, Any]] = []
    for tensor in input_tensors(bundle):
        if tensor.column_type == "string":
            changes.append((tensor.name, UNSEEN))
            if tensor.nullable:
                changes.append((tensor.name, None))
        elif tensor.nullable:
            changes.append((tensor.name, np.nan))
    rows = []
    for name, value in changes:
        row = base.copy()
        row[name] = row[name].astype(object)
        row.loc[row.index[0], name] = value
        rows.append(row)
    if changes:
        row = base.copy()
        for name, value in changes:
            row[name] = row[name].astype(object)
            row.loc[row.index[0], name] = value
        rows.append(row)
    if not rows:
        return base.iloc[:0]
    return pd.concat(rows, ignore_index=True)


def _verify(data: bytes, bundle: ModelBundle, frame: pd.DataFrame, label: str) -> float:
    """Score ``frame`` with onnxruntime and with the bundle; returns the largest absolute
    difference, or refuses the export when a row differs by more than the tolerance or gets
    another label away from the threshold."""
    import numpy as np

    onnx = require("onnx")
    ort = require("onnxruntime")
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # converters' declared shapes make harmless warnings
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        feeds = onnx_feeds(frame, input_tensors(bundle))
        names = [output.name for output in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, feeds), strict=True))
    except (onnx.checker.ValidationError, *_runtime_errors(ort)) as exc:
        raise Unavailable(
            f"the ONNX graph of {label} does not run: {exc}",
            hint="this flavor's converter may not support the model; serve it with "
            "`decisionloop serve` instead",
        ) from exc
    if bundle.task == "classification":
        expected = np.asarray(bundle.predict_proba(frame), dtype="float64")
        got = np.asarray(outputs["probability"], dtype="float64")
    else:
        expected = np.asarray(bundle.predict_value(frame), dtype="float64")
        got = np.asarray(outputs["value"], dtype="float64")
    diff = np.abs(got - expected)
    allowed = TOLERANCE * np.maximum(1.0, np.abs(expected))
    worst = int(np.argmax(diff / allowed)) if len(diff) else 0
    if len(diff) and (not np.isfinite(diff).all() or diff[worst] > allowed[worst]):
        raise Unavailable(
            f"the ONNX graph of {label} scores {int((diff > allowed).sum())} of {len(diff)} "
            f"rows differently from the model (largest difference {float(diff.max()):.3g}, "
            f"tolerance {TOLERANCE:g}); nothing was written",
            hint="the converter does not reproduce this model exactly; serve it with "
            "`decisionloop serve` instead, or report the flavor and versions",
        )
    if bundle.task == "classification":
        clear = np.abs(expected - bundle.threshold) > allowed
        wrong = (np.asarray(outputs["label"]) != np.asarray(bundle.labels(expected))) & clear
        if wrong.any():
            raise Unavailable(
                f"the ONNX graph of {label} labels {int(wrong.sum())} row(s) differently",
                hint="report the flavor and versions; nothing was written",
            )
    return float(diff.max()) if len(diff) else 0.0


def _runtime_errors(ort: Any) -> tuple[type[Exception], ...]:
    """onnxruntime's error classes (they do not share a base besides Exception)."""
    state = ort.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "InvalidGraph", "NotImplemented", "RuntimeException")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def _check_writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise _unwritable(path, exc) from exc


def _unwritable(path: Path, exc: OSError) -> Invalid:
    return Invalid(
        f"cannot write {path}: {exc.strerror or exc}",
        hint="choose an output path in a folder you can write to",
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _unwritable(path, exc) from exc
