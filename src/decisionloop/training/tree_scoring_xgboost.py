"""Reading a stored XGBoost model (UBJSON or JSON) into a :class:`TreeEnsemble`.

Supported: XGBoost 1.x-3.x ``gbtree`` models with one output, numerical splits only (our
trainer never enables categorical features), objective ``binary:logistic`` (classification) or
``reg:squarederror`` (regression). Anything else raises :class:`UnsupportedTreeModel`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from decisionloop.training.base import Task
from decisionloop.training.tree_scoring import TreeEnsemble, UnsupportedTreeModel, assemble
from decisionloop.training.ubjson import TypedArray, UBJSONError, concatenate, decode_ubjson

#: objective -> (task, transform)
_OBJECTIVES: dict[str, tuple[Task, str]] = {
    "binary:logistic": ("classification", "sigmoid"),
    "reg:squarederror": ("regression", "identity"),
}
_SUPPORTED_MAJOR_VERSIONS = (1, 2, 3)


def parse_xgboost(data: bytes) -> tuple[TreeEnsemble, Task]:
    """The model's trees and its task; :class:`UnsupportedTreeModel` for anything else."""
    model = _decode(data)
    try:
        return _ensemble(model)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise UnsupportedTreeModel(
            f"the XGBoost model is not in the expected shape: {exc}"
        ) from exc


def _decode(data: bytes) -> Mapping[str, Any]:
    text_json = data[:1] == b"{" and data[1:2] in (b'"', b" ", b"\n", b"\r", b"\t", b"}")
    try:
        model = json.loads(data) if text_json else decode_ubjson(data)
    except (UBJSONError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UnsupportedTreeModel(f"not an XGBoost JSON/UBJSON model: {exc}") from exc
    if not isinstance(model, Mapping):
        raise UnsupportedTreeModel("the XGBoost model is not an object")
    return model


def _ensemble(model: Mapping[str, Any]) -> tuple[TreeEnsemble, Task]:
    version = model["version"]
    if int(version[0]) not in _SUPPORTED_MAJOR_VERSIONS:
        raise UnsupportedTreeModel(f"XGBoost model version {list(version)} is not supported")
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective not in _OBJECTIVES:
        raise UnsupportedTreeModel(f"objective {objective!r} is not supported")
    task, transform = _OBJECTIVES[objective]
    params = learner["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
        raise UnsupportedTreeModel("models with several outputs are not supported")
    n_features = int(params["num_feature"])
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree":
        raise UnsupportedTreeModel(f"booster {booster['name']!r} is not supported")
    forest = booster["model"]
    if any(len(values) for values in forest.get("cats", {}).values()):
        raise UnsupportedTreeModel("categorical features are not supported")
    trees = forest["trees"]
    if int(forest["gbtree_model_param"]["num_trees"]) != len(trees) or any(
        int(group) != 0 for group in forest["tree_info"]
    ):
        raise UnsupportedTreeModel("the trees do not form one output group")
    sizes, nodes = _nodes(trees)
    base_score = _base_score(params["base_score"])
    ensemble = assemble(
        "xgboost",
        sizes,
        nodes,
        n_features=n_features,
        base_margin=_margin(base_score, transform),
        transform="sigmoid" if transform == "sigmoid" else "identity",
    )
    return ensemble, task


def _base_score(text: str) -> np.float32:
    """``base_score`` as saved: ``"5E-1"`` (XGBoost 1-2) or ``"[5E-1]"`` (XGBoost 3)."""
    values = [part for part in str(text).strip().strip("[]").split(",") if part.strip()]
    if len(values) != 1:
        raise UnsupportedTreeModel(f"base_score {text!r} is not one number")
    return np.float32(float(values[0]))


def _margin(base_score: np.float32, transform: str) -> float:
    """The base score as a margin, in float32 as XGBoost computes it (``-logf(1/p - 1)``)."""
    if transform == "identity":
        return float(base_score)
    eps = np.float32(1e-6)  # XGBoost clamps the intercept into (0, 1) by kRtEps
    prob = min(max(base_score, eps), np.float32(1) - eps)
    odds = np.float32(1) / prob - np.float32(1)
    # log in float64 rounded to float32: what glibc's logf returns, where numpy's float32
    # log is sometimes one unit off
    return float(np.float32(-math.log(float(odds))))


#: the tree fields the scorer reads -> the dtype it reads them as
_FIELDS = {
    "left_children": np.int64,
    "right_children": np.int64,
    "split_indices": np.int64,
    "split_conditions": np.float32,
    "default_left": np.uint8,
    "split_type": np.uint8,
}


def _nodes(trees: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each tree's node count, and every tree's node arrays joined (one numpy call per field
    when they come from UBJSON)."""
    sizes = np.array([_tree_size(tree) for tree in trees], dtype=np.intp)
    for name in _FIELDS:
        if not np.array_equal([len(tree[name]) for tree in trees], sizes):
            raise UnsupportedTreeModel(f"the trees' {name} do not match their num_nodes")
    fields = {name: _joined([tree[name] for tree in trees], kind) for name, kind in _FIELDS.items()}
    if fields["split_type"].any():
        raise UnsupportedTreeModel("categorical splits are not supported")
    conditions = fields["split_conditions"]
    return sizes, {
        "left": fields["left_children"],
        "right": fields["right_children"],
        "feature": fields["split_indices"],
        "threshold": conditions,
        "default_left": fields["default_left"] != 0,
        "missing_type": np.zeros(len(conditions), dtype=np.uint8),
        # a leaf keeps its output in split_conditions
        "leaf_value": conditions,
    }


def _tree_size(tree: Mapping[str, Any]) -> int:
    tree_param = tree["tree_param"]
    if int(tree_param.get("size_leaf_vector", "1")) > 1:
        raise UnsupportedTreeModel("vector-leaf trees are not supported")
    if len(tree.get("categories", ())) or len(tree.get("categories_nodes", ())):
        raise UnsupportedTreeModel("categorical splits are not supported")
    return int(tree_param["num_nodes"])


def _joined(parts: list[Any], dtype: Any) -> np.ndarray:
    """One array of the parts: typed UBJSON arrays joined in one go, JSON lists converted."""
    if parts and all(isinstance(part, TypedArray) for part in parts):
        try:
            joined = concatenate(parts)
        except UBJSONError as exc:
            raise UnsupportedTreeModel(str(exc)) from exc
        if joined.dtype.kind == "f" and np.dtype(dtype).kind != "f":
            raise UnsupportedTreeModel("an integer field holds floats")
        return joined.astype(dtype)
    arrays = [
        np.asarray(part.to_numpy() if isinstance(part, TypedArray) else part) for part in parts
    ]
    if any(array.ndim != 1 for array in arrays):
        raise UnsupportedTreeModel("a tree array is not one-dimensional")
    # JSON text: each number was written from the float32 XGBoost holds
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)
