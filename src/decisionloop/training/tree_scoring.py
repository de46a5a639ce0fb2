"""Scoring stored XGBoost and LightGBM models in numpy, without importing either library.

Importing ``xgboost`` takes about two seconds of a fresh process (most of it the scikit-learn it
imports), while scoring a stored model takes milliseconds. So a bundle loaded for scoring parses
the stored model (XGBoost's UBJSON or JSON, LightGBM's text model; see
``tree_scoring_xgboost`` and ``tree_scoring_lightgbm``) into a :class:`TreeEnsemble`: flat
arrays with one entry per node of every tree. Every row then walks every tree at once, one level
per step, following each library's own rules:

- XGBoost: features as float32; ``x < threshold`` goes left, NaN goes the node's default way;
  the margin adds up in float32, tree by tree, from the base score; ``binary:logistic`` applies
  the sigmoid in float32.
- LightGBM: features as float64, and values within ±1e-35 read as 0 (LightGBM's dense-row
  reader drops them); ``x <= threshold`` goes left; the node's missing type decides the rest:
  ``None`` reads NaN as 0, ``Zero`` sends 0 and NaN the default way, ``NaN`` sends NaN the
  default way; tree outputs add up in float64; ``binary`` applies ``1 / (1 + exp(-s * x))``.

Regression values come out identical to the library's, bit for bit (same precision, same order
of additions); a probability can differ in its last unit (XGBoost: up to about 1e-7, LightGBM:
2e-16) where the C library's exp and log round differently from numpy's.

A model that uses anything else (categorical splits, linear trees, dart, several classes or
targets, another objective) raises :class:`UnsupportedTreeModel` and is loaded by its library.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from decisionloop.errors import Invalid
from decisionloop.training.base import Task, wrong_task

if TYPE_CHECKING:
    from decisionloop.training.lightgbm_trainer import LightGBMTrainer
    from decisionloop.training.xgboost_trainer import XGBoostTrainer

    LibraryTrainer = XGBoostTrainer | LightGBMTrainer

Rule = Literal["xgboost", "lightgbm"]
Transform = Literal["identity", "sigmoid"]

#: LightGBM's kZeroThreshold (1e-35f): values this close to 0 count as 0
LIGHTGBM_ZERO = float(np.float32(1e-35))
#: refused above these sizes (a model of 300 depth-8 trees has about 150,000 nodes)
MAX_NODES = 20_000_000
MAX_DEPTH = 1_000
MAX_MODEL_BYTES = 1 << 30
#: rows x trees walked per block, so the work arrays stay in the CPU cache
_BLOCK_CELLS = 1 << 16
#: trees deeper than this set finished rows aside while walking (see _Walk.margin)
_COMPACT_DEPTH = 8
# LightGBM missing types (decision_type bits 2-3)
_MISSING_ZERO, _MISSING_NAN = 1, 2


class UnsupportedTreeModel(Invalid):
    """The stored model uses something the native scorer does not reproduce; the library
    loads it instead."""


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Every tree of a model as flat node arrays, numbered level by level.

    Tree ``t`` starts at node ``t``; a split's two children are consecutive nodes, so one step
    is ``node = first_child[node] + goes_right``. A leaf is its own first child and never goes
    right (its threshold is NaN for XGBoost's ``x >= t``, +inf for LightGBM's ``x > t``), so
    walking ``depth`` steps leaves every row of every tree on a leaf. ``is_split`` marks the
    splits; ``leaf_value`` is a leaf's output (0 on splits); trees add up in tree order, as in
    the libraries.
    """

    rule: Rule
    feature: np.ndarray
    threshold: np.ndarray
    first_child: np.ndarray
    is_split: np.ndarray
    default_left: np.ndarray
    missing_type: np.ndarray
    leaf_value: np.ndarray
    n_trees: int
    depth: int
    n_features: int
    base_margin: float
    transform: Transform
    sigmoid_scale: float = 1.0
    _work: threading.local = field(default_factory=threading.local, init=False, repr=False)

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32 for XGBoost, float64 for LightGBM: the precision each library scores in."""
        return np.dtype(np.float32 if self.rule == "xgboost" else np.float64)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """The raw score (the base score plus every tree's output) of each row of ``x``."""
        features = self._features(x)
        out = np.empty(len(features), dtype=self.dtype)
        step = max(16, _BLOCK_CELLS // self.n_trees)
        walk: _Walk | None = getattr(self._work, "walk", None)
        if walk is None:  # one set of work arrays per thread, reused by every call
            walk = self._work.walk = _Walk(self, step)
        for start in range(0, len(features), step):
            block = features[start : start + step]
            out[start : start + len(block)] = walk.margin(block)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The library's prediction for each row: probability (sigmoid) or value (identity)."""
        margin = self.margin(x)
        if self.transform == "identity":
            return margin
        one = self.dtype.type(1.0)
        # exp in float64 then rounded: glibc's expf (what XGBoost calls) is closer to that
        # than numpy's float32 exp; an overflow to inf gives probability 0, as in C
        with np.errstate(over="ignore"):
            exp = np.exp(-(self.sigmoid_scale * margin.astype(np.float64))).astype(self.dtype)
        result: np.ndarray = one / (one + exp)
        return result

    def _features(self, x: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(x, dtype=self.dtype)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise Invalid(
                f"the model takes {self.n_features} features per row, got shape {x.shape}",
                hint="score rows prepared by the model's own preprocessor",
            )
        if self.rule == "lightgbm":
            # LightGBM's dense-row reader keeps only |x| > 1e-35 (and NaN); the rest reads as 0
            tiny = np.abs(features) <= LIGHTGBM_ZERO
            if tiny.any():
                features = np.where(tiny, 0.0, features)
        return features

    def _goes_right(self, value: np.ndarray, threshold: np.ndarray, node: np.ndarray) -> np.ndarray:
        nan = np.isnan(value)
        default_right = ~self.default_left.take(node, mode="clip")
        if self.rule == "xgboost":
            right: np.ndarray = (value >= threshold) | (nan & default_right)
            return right
        missing = self.missing_type.take(node, mode="clip")
        value = np.where(nan & (missing != _MISSING_NAN), 0.0, value)  # NaN reads as 0
        zero = (value > -LIGHTGBM_ZERO) & (value <= LIGHTGBM_ZERO)
        use_default = ((missing == _MISSING_ZERO) & zero) | ((missing == _MISSING_NAN) & nan)
        return np.where(use_default, default_right, value > threshold)


class _Walk:
    """The work arrays for walking blocks of up to ``rows`` rows through every tree, made once
    per thread and reused at every level and call (fresh arrays this size would cost page
    faults every time)."""

    def __init__(self, ensemble: TreeEnsemble, rows: int) -> None:
        self.ensemble = ensemble
        cells = ensemble.n_trees * rows
        self.node = np.empty(cells, dtype=np.intp)
        self.start = np.empty(cells, dtype=np.intp)
        self.index = np.empty(cells, dtype=np.intp)
        self.value = np.empty(cells, dtype=ensemble.dtype)
        self.threshold = np.empty(cells, dtype=ensemble.dtype)
        self.right = np.empty(cells, dtype=bool)
        self.outputs = np.empty(cells + rows, dtype=ensemble.dtype)
        self.zero_missing = bool((ensemble.missing_type == _MISSING_ZERO).any())

    def margin(self, x: np.ndarray) -> np.ndarray:
        # every index below is in range by construction (see assemble), so take() may skip
        # its bounds checks (mode="clip")
        ensemble, trees, rows = self.ensemble, self.ensemble.n_trees, len(x)
        flat = x.ravel()
        # one cell per (tree, row), tree-major: the tree's root and the row's first feature
        node, start = self.node[: trees * rows], self.start[: trees * rows]
        node.reshape(trees, rows)[:] = np.arange(trees, dtype=np.intp)[:, None]
        start.reshape(trees, rows)[:] = np.arange(rows, dtype=np.intp) * ensemble.n_features
        simple = not self.zero_missing and not np.isnan(flat).any()
        compact = ensemble.depth > _COMPACT_DEPTH
        cell = np.arange(len(node), dtype=np.intp) if compact else None
        leaf = np.empty_like(node) if compact else node
        for _ in range(ensemble.depth):
            cells = len(node)
            index, value = self.index[:cells], self.value[:cells]
            threshold, right = self.threshold[:cells], self.right[:cells]
            np.take(ensemble.feature, node, out=index, mode="clip")
            index += start
            np.take(flat, index, out=value, mode="clip")
            np.take(ensemble.threshold, node, out=threshold, mode="clip")
            if not simple:
                right[:] = ensemble._goes_right(value, threshold, node)
            elif ensemble.rule == "xgboost":
                np.greater_equal(value, threshold, out=right)
            else:
                np.greater(value, threshold, out=right)
            np.take(ensemble.first_child, node, out=index, mode="clip")
            np.add(index, right, out=node)
            if cell is not None:
                # deep, lopsided (leaf-wise) trees: once half the cells are on a leaf, set
                # them aside, so the walk costs about what the rows' paths add up to
                walking = ensemble.is_split.take(node, mode="clip")
                if np.count_nonzero(walking) <= cells // 2:
                    done = ~walking
                    leaf[cell[done]] = node[done]
                    node, start, cell = node[walking], start[walking], cell[walking]
        if cell is not None:
            leaf[cell] = node
        outputs = self.outputs[: (trees + 1) * rows].reshape(trees + 1, rows)
        outputs[0] = ensemble.base_margin
        np.take(ensemble.leaf_value, leaf.reshape(trees, rows), out=outputs[1:], mode="clip")
        # the trees add up one after another, in tree order, as in the libraries (numpy's own
        # sums may add pairwise, which rounds differently)
        total: np.ndarray = outputs[0].copy()
        for tree_output in outputs[1:]:
            total += tree_output
        return total


def assemble(
    rule: Rule,
    sizes: np.ndarray,
    nodes: dict[str, np.ndarray],
    *,
    n_features: int,
    base_margin: float,
    transform: Transform,
    sigmoid_scale: float = 1.0,
) -> TreeEnsemble:
    """One ensemble from every tree's nodes, after checking each tree is well formed.

    ``sizes`` gives each tree's node count; ``nodes`` the trees' nodes one tree after another:
    ``left``/``right`` (node indices within the tree, -1 on a leaf), ``feature``,
    ``threshold``, ``default_left``, ``missing_type`` and ``leaf_value``. A tree's node 0 is
    its root. Every node reachable from a root must be reached once, through in-range
    indices; nodes that are not reachable are dropped.
    """
    sizes = np.asarray(sizes, dtype=np.intp)
    if len(sizes) == 0:
        raise UnsupportedTreeModel("the model has no trees")
    total = int(sizes.sum())
    if sizes.min() < 1 or total > MAX_NODES:
        raise UnsupportedTreeModel(f"the model's trees have {total} nodes")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    dtype = np.float32 if rule == "xgboost" else np.float64

    def joined(name: str, kind: Any) -> np.ndarray:
        values = np.asarray(nodes[name])
        if values.shape != (total,):
            raise UnsupportedTreeModel(f"the trees' {name} arrays do not match their sizes")
        return values.astype(kind, copy=False)

    left_local, right_local = joined("left", np.int64), joined("right", np.int64)
    feature = joined("feature", np.int64)
    leaf = left_local < 0
    if not np.array_equal(leaf, right_local < 0):
        raise UnsupportedTreeModel("a node has exactly one child")
    if ((left_local >= sizes[owner]) | (right_local >= sizes[owner])).any():
        raise UnsupportedTreeModel("a child index is outside its tree")
    if ((feature < 0) | (feature >= n_features))[~leaf].any():
        raise UnsupportedTreeModel("a split uses a feature the model does not have")
    left = (left_local + offsets[owner]).astype(np.intp)
    right = (right_local + offsets[owner]).astype(np.intp)
    order, depth = _level_order(left, right, leaf, roots=offsets)
    # renumbered: node i of the ensemble is node order[i] of the input
    renumber = np.full(len(leaf), -1, dtype=np.intp)
    renumber[order] = np.arange(len(order), dtype=np.intp)
    is_leaf = leaf[order]
    first_child = np.where(is_leaf, np.arange(len(order)), renumber[left[order]])
    leaf_threshold = np.nan if rule == "xgboost" else np.inf
    return TreeEnsemble(
        rule=rule,
        feature=np.where(is_leaf, 0, feature[order]).astype(np.intp),
        threshold=np.where(is_leaf, leaf_threshold, joined("threshold", dtype)[order]).astype(
            dtype
        ),
        first_child=first_child.astype(np.intp),
        is_split=~is_leaf,
        default_left=np.where(is_leaf, True, joined("default_left", bool)[order]),
        missing_type=np.where(is_leaf, 0, joined("missing_type", np.uint8)[order]).astype(np.uint8),
        leaf_value=np.where(is_leaf, joined("leaf_value", dtype)[order], 0).astype(dtype),
        n_trees=len(sizes),
        depth=depth,
        n_features=n_features,
        base_margin=base_margin,
        transform=transform,
        sigmoid_scale=sigmoid_scale,
    )


def _level_order(
    left: np.ndarray, right: np.ndarray, leaf: np.ndarray, *, roots: np.ndarray
) -> tuple[np.ndarray, int]:
    """The reachable nodes level by level (the roots, then each split's two children side by
    side) and the deepest leaf's depth; refuses a node reached twice (shared or cyclic)."""
    seen = np.zeros(len(leaf), dtype=bool)
    seen[roots] = True
    levels = [roots]
    frontier = roots[~leaf[roots]]
    depth = 0
    while len(frontier):
        depth += 1
        if depth > MAX_DEPTH:
            raise UnsupportedTreeModel(f"a tree is deeper than {MAX_DEPTH} levels")
        children = np.stack([left[frontier], right[frontier]], axis=1).ravel()
        if seen[children].any() or len(np.unique(children)) != len(children):
            raise UnsupportedTreeModel("a tree node is reached twice")
        seen[children] = True
        levels.append(children)
        frontier = children[~leaf[children]]
    return np.concatenate(levels), depth


class NativeTreeModel:
    """A stored boosted-tree model scored by a :class:`TreeEnsemble`.

    It scores like the trainer its flavor names (``predict_proba`` for classification,
    ``predict`` for regression, the same dtype) and saves the bytes it was read from. Asking
    for anything only the library offers (``booster``, ``get_params``) loads the library model
    from those bytes, once; scoring stays native.
    """

    flavor: ClassVar[str]
    tasks: ClassVar[tuple[Task, ...]] = ("classification", "regression")
    #: a loaded model has no validation curve or early-stopping round of its own
    curve: ClassVar[dict[str, list[float]]] = {}
    best_iteration: ClassVar[int | None] = None

    def __init__(self, ensemble: TreeEnsemble, task: Task, data: bytes) -> None:
        self.ensemble = ensemble
        self.task = task
        self._data = data
        self._library: LibraryTrainer | None = None

    @classmethod
    def parse(cls, data: bytes) -> tuple[TreeEnsemble, Task]:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> NativeTreeModel:
        """Parse the stored model; :class:`UnsupportedTreeModel` when it cannot be scored
        natively (including bytes the parser cannot read: the library has the last word)."""
        if len(data) > MAX_MODEL_BYTES:
            raise UnsupportedTreeModel(f"the model is larger than {MAX_MODEL_BYTES} bytes")
        ensemble, task = cls.parse(data)
        return cls(ensemble, task, data)

    @classmethod
    def library_trainer(cls) -> type[LibraryTrainer]:
        raise NotImplementedError

    @property
    def library_model(self) -> LibraryTrainer:
        """The same model loaded by its library (imported on first use)."""
        if self._library is None:
            self._library = self.library_trainer().from_bytes(self._data)
        return self._library

    @property
    def booster(self) -> Any:
        """The library's booster, for what only the library offers (feature importance...)."""
        return self.library_model.booster

    def get_params(self) -> dict[str, Any]:
        return self.library_model.get_params()

    def fit(self, *args: Any, **kwargs: Any) -> NativeTreeModel:
        raise Invalid(
            "a model loaded for scoring cannot be trained again",
            hint="create a new trainer with decisionloop.training.registry.create_trainer",
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for each row."""
        if self.task != "classification":
            raise wrong_task(self.task, "predict_proba")
        return self.ensemble.predict(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted value for each row (regression)."""
        if self.task != "regression":
            raise wrong_task(self.task, "predict")
        return self.ensemble.predict(x)

    def to_bytes(self) -> bytes:
        """The bytes it was read from; once the library model is loaded, what that saves, so
        changes made through ``booster`` are kept (as with a library-loaded model)."""
        return self._data if self._library is None else self._library.to_bytes()


class NativeXGBoostModel(NativeTreeModel):
    """A stored XGBoost model (``binary:logistic`` or ``reg:squarederror`` gbtree)."""

    flavor = "xgboost"

    @classmethod
    def parse(cls, data: bytes) -> tuple[TreeEnsemble, Task]:
        from decisionloop.training.tree_scoring_xgboost import parse_xgboost

        return parse_xgboost(data)

    @classmethod
    def library_trainer(cls) -> type[LibraryTrainer]:
        from decisionloop.training.xgboost_trainer import XGBoostTrainer

        return XGBoostTrainer


class NativeLightGBMModel(NativeTreeModel):
    """A stored LightGBM model (``binary`` or ``regression`` gbdt, numerical splits)."""

    flavor = "lightgbm"

    @classmethod
    def parse(cls, data: bytes) -> tuple[TreeEnsemble, Task]:
        from decisionloop.training.tree_scoring_lightgbm import parse_lightgbm

        return parse_lightgbm(data)

    @classmethod
    def library_trainer(cls) -> type[LibraryTrainer]:
        from decisionloop.training.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer


#: flavors the native scorer can read, by the manifest's flavor name
NATIVE_MODELS: dict[str, type[NativeTreeModel]] = {
    cls.flavor: cls for cls in (NativeXGBoostModel, NativeLightGBMModel)
}


def load_native(flavor: str, data: bytes) -> NativeTreeModel | None:
    """The model scored natively, or None when its flavor or content needs the library."""
    native = NATIVE_MODELS.get(flavor)
    if native is None:
        return None
    try:
        return native.from_bytes(data)
    except UnsupportedTreeModel:
        return None
