"""Reading a stored LightGBM text model into a :class:`TreeEnsemble`.

Supported: LightGBM text models (``v2``-``v4``) with one class and one tree per iteration,
numerical splits only (our trainer passes no categorical features), constant leaves (no linear
trees), summed trees (no random-forest averaging), objective ``binary`` (classification, with
its sigmoid parameter) or plain ``regression``. Anything else raises
:class:`UnsupportedTreeModel`.

LightGBM keeps a tree's leaves apart from its splits (a child ``c < 0`` is leaf ``~c``); here
the splits come first and the leaves after them, so node 0 is the root either way.
"""

from __future__ import annotations

import numpy as np

from decisionloop.training.base import Task
from decisionloop.training.tree_scoring import TreeEnsemble, UnsupportedTreeModel, assemble

_VERSIONS = ("v2", "v3", "v4")
_CATEGORICAL, _DEFAULT_LEFT = 1, 2
_TREE_KEYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


def parse_lightgbm(data: bytes) -> tuple[TreeEnsemble, Task]:
    """The model's trees and its task; :class:`UnsupportedTreeModel` for anything else."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UnsupportedTreeModel("the LightGBM model is not UTF-8 text") from exc
    if not lines or lines[0] != "tree":
        raise UnsupportedTreeModel("not a LightGBM text model")
    try:
        header, blocks = _sections(lines)
        return _ensemble(header, blocks)
    except (KeyError, ValueError, IndexError, OverflowError) as exc:
        raise UnsupportedTreeModel(
            f"the LightGBM model is not in the expected shape: {exc}"
        ) from exc


def _sections(lines: list[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header's ``key=value`` lines (bare flags map to ``""``) and each tree's."""
    header: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    current = header
    for line in lines[1:]:
        if line == "end of trees":
            return header, blocks
        if line.startswith("Tree="):
            if int(line[5:]) != len(blocks):
                raise UnsupportedTreeModel(f"tree {line[5:]} is out of order")
            current = {}
            blocks.append(current)
        elif line:
            key, _, value = line.partition("=")
            current[key] = value
    raise UnsupportedTreeModel("the LightGBM model has no 'end of trees'")


def _ensemble(header: dict[str, str], blocks: list[dict[str, str]]) -> tuple[TreeEnsemble, Task]:
    if header.get("version") not in _VERSIONS:
        raise UnsupportedTreeModel(f"LightGBM model version {header.get('version')!r}")
    if int(header["num_class"]) != 1 or int(header["num_tree_per_iteration"]) != 1:
        raise UnsupportedTreeModel("models with several classes are not supported")
    if "average_output" in header:
        raise UnsupportedTreeModel("random-forest (averaged) models are not supported")
    name, *options = header["objective"].split()
    if name == "binary" and len(options) == 1 and options[0].startswith("sigmoid:"):
        task: Task = "classification"
        scale = float(options[0].removeprefix("sigmoid:"))
        if not 0 < scale < float("inf"):
            raise UnsupportedTreeModel(f"sigmoid {scale} is not supported")
    elif name == "regression" and not options:
        task, scale = "regression", 1.0
    else:
        raise UnsupportedTreeModel(f"objective {header['objective']!r} is not supported")
    if not blocks:
        raise UnsupportedTreeModel("the model has no trees")
    sizes, nodes = _nodes(blocks)
    ensemble = assemble(
        "lightgbm",
        sizes,
        nodes,
        n_features=int(header["max_feature_idx"]) + 1,
        base_margin=0.0,  # LightGBM folds its initial score into the first tree
        transform="sigmoid" if task == "classification" else "identity",
        sigmoid_scale=scale,
    )
    return ensemble, task


def _nodes(blocks: list[dict[str, str]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each tree's node count and every tree's nodes, one tree after another (a tree's splits,
    then its leaves); each field of all the trees is converted in one go."""
    for block in blocks:
        if int(block.get("num_cat", "0")) != 0:
            raise UnsupportedTreeModel("categorical splits are not supported")
        if int(block.get("is_linear", "0")) != 0:
            raise UnsupportedTreeModel("linear trees are not supported")
    leaves = np.array([int(block["num_leaves"]) for block in blocks], dtype=np.int64)
    if (leaves < 1).any():
        raise UnsupportedTreeModel("a tree has no leaves")
    splits = leaves - 1
    # trees with one leaf have no split lines (or empty ones)
    split_blocks = [block for block, count in zip(blocks, splits, strict=True) if count]
    # each tree's line holds as many numbers as the tree has splits (leaves), one space apart
    for key in _TREE_KEYS:
        counts = [block[key].count(" ") + 1 for block in split_blocks]
        if not np.array_equal(counts, splits[splits > 0]):
            raise UnsupportedTreeModel(f"a tree's {key} does not match its num_leaves")
    if not np.array_equal([block["leaf_value"].count(" ") + 1 for block in blocks], leaves):
        raise UnsupportedTreeModel("a tree's leaf_value does not match its num_leaves")
    fields = {key: _numbers([block[key] for block in split_blocks], key) for key in _TREE_KEYS}
    leaf_value = _numbers([block["leaf_value"] for block in blocks], "leaf_value")
    if len(leaf_value) != leaves.sum() or any(
        len(values) != splits.sum() for values in fields.values()
    ):
        raise UnsupportedTreeModel("a tree's arrays do not match its num_leaves")
    decision = fields["decision_type"].astype(np.int64)
    missing_type = (decision >> 2) & 3
    if (decision & _CATEGORICAL).any() or (missing_type == 3).any():
        raise UnsupportedTreeModel("a split has a categorical or unknown decision type")
    # where each tree's splits and leaves go among all the nodes
    sizes = splits + leaves
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    split_at = np.repeat(start, splits) + _ranks(splits)
    leaf_at = np.repeat(start + splits, leaves) + _ranks(leaves)
    tree_splits, tree_leaves = np.repeat(splits, splits), np.repeat(leaves, splits)
    nodes = {
        "left": np.full(sizes.sum(), -1, dtype=np.int64),
        "right": np.full(sizes.sum(), -1, dtype=np.int64),
        "feature": np.zeros(sizes.sum(), dtype=np.int64),
        "threshold": np.zeros(sizes.sum(), dtype=np.float64),
        "default_left": np.zeros(sizes.sum(), dtype=bool),
        "missing_type": np.zeros(sizes.sum(), dtype=np.int64),
        "leaf_value": np.zeros(sizes.sum(), dtype=np.float64),
    }
    nodes["left"][split_at] = _node(fields["left_child"].astype(np.int64), tree_splits, tree_leaves)
    nodes["right"][split_at] = _node(
        fields["right_child"].astype(np.int64), tree_splits, tree_leaves
    )
    nodes["feature"][split_at] = fields["split_feature"]
    nodes["threshold"][split_at] = fields["threshold"]
    nodes["default_left"][split_at] = (decision & _DEFAULT_LEFT) != 0
    nodes["missing_type"][split_at] = missing_type
    nodes["leaf_value"][leaf_at] = leaf_value
    return sizes, nodes


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., count - 1 for each count, one after another."""
    ranks: np.ndarray = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return ranks


def _node(children: np.ndarray, splits: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """LightGBM's child references as node indices within their tree: split ``c >= 0`` stays
    ``c``, leaf ``~c`` (``c < 0``) becomes ``splits + ~c``."""
    leaf = children < 0
    if (leaf & (~children >= leaves)).any() or (~leaf & (children >= splits)).any():
        raise UnsupportedTreeModel("a child index is outside its tree")
    return np.where(leaf, splits + ~children, children)


def _numbers(texts: list[str], key: str) -> np.ndarray:
    """Every number of the space-separated ``texts``, in order. Python's float() rounds
    correctly, as LightGBM's own parser does."""
    parts = " ".join(texts).split()
    if key in ("threshold", "leaf_value"):
        return np.array(list(map(float, parts)), dtype=np.float64)
    return np.array(parts, dtype=np.int64)  # decimal integers: exact either way
