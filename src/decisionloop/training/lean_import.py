"""Importing xgboost for scoring without paying for scikit-learn.

``import xgboost`` imports scikit-learn (and SciPy) when it is installed, for its optional
scikit-learn estimator classes: about a second of a fresh process's start here, while scoring
a saved booster needs none of it. Processes that only serve models (``decisionloop serve``,
``decisionloop predict``) call :func:`decisionloop.config.request_lean_imports`, and xgboost is
then imported with scikit-learn hidden: it defines its estimator classes without
scikit-learn's base classes, and every ``Booster`` feature works as usual. scikit-learn itself
stays importable afterwards (for scikit-learn models). Library users are unaffected.

Scoring a stored XGBoost model usually needs no xgboost at all: bundles load it with the native
tree scorer (:mod:`decisionloop.training.tree_scoring`). This import is for what is left: a
model the native scorer does not support, or the library's booster itself (feature importance,
ONNX export) in a process that asked for lean imports.
"""

from __future__ import annotations

import importlib.abc
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType


class _HideScikitLearn(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "sklearn" or fullname.startswith("sklearn."):
            raise ImportError(f"{fullname} hidden while importing xgboost (lean imports)")
        return None


def import_xgboost() -> ModuleType:
    """``xgboost``, imported without scikit-learn when lean imports were requested and
    neither is imported yet; an ordinary import otherwise."""
    from decisionloop.config import lean_imports_requested

    if not lean_imports_requested() or "xgboost" in sys.modules or "sklearn" in sys.modules:
        import xgboost

        return xgboost
    hider = _HideScikitLearn()
    sys.meta_path.insert(0, hider)
    try:
        import xgboost
    finally:
        sys.meta_path.remove(hider)
    return xgboost
