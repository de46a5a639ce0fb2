"""Scoring-only processes import xgboost without scikit-learn, and still score correctly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from decisionloop.config import request_lean_imports
    if {lean}:
        request_lean_imports()
    if {sklearn_first}:
        import sklearn
    from decisionloop.training.lean_import import import_xgboost
    xgb = import_xgboost()
    sklearn_loaded = "sklearn" in sys.modules
    x = np.random.default_rng(0).normal(size=(200, 3))
    y = (x[:, 0] > 0).astype(float)
    booster = xgb.train({{"objective": "binary:logistic"}}, xgb.DMatrix(x, label=y), 5)
    score = float(booster.inplace_predict(x[:3]).sum())
    import sklearn.linear_model  # still importable, for scikit-learn models
    print(json.dumps({{"sklearn_loaded": sklearn_loaded, "score": score}}))
    """
)


def run(*, lean: bool, sklearn_first: bool = False) -> dict[str, object]:
    code = SCRIPT.format(lean=lean, sklearn_first=sklearn_first)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_lean_imports_leave_scikit_learn_out_and_score_the_same() -> None:
    lean, ordinary = run(lean=True), run(lean=False)
    assert lean["sklearn_loaded"] is False
    assert ordinary["sklearn_loaded"] is True
    assert lean["score"] == ordinary["score"]


def test_an_already_imported_scikit_learn_is_left_alone() -> None:
    assert run(lean=True, sklearn_first=True)["sklearn_loaded"] is True
