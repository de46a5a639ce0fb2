"""The top-level package: a sorted, resolvable ``__all__`` and a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import decisionloop

HEAVY = ("pandas", "numpy", "sqlalchemy", "xgboost", "sklearn", "starlette", "pyarrow")


def test_all_is_sorted_and_unique() -> None:
    assert decisionloop.__all__ == sorted(decisionloop.__all__)
    assert len(decisionloop.__all__) == len(set(decisionloop.__all__))


@pytest.mark.parametrize("name", decisionloop.__all__)
def test_every_name_resolves(name: str) -> None:
    value = getattr(decisionloop, name)

    assert value is not None
    if name != "__version__":
        assert value.__name__ == name


def test_exports_are_the_defining_objects() -> None:
    from decisionloop.config import load_settings
    from decisionloop.errors import DecisionLoopError
    from decisionloop.refs import ModelRef

    assert decisionloop.ModelRef is ModelRef
    assert decisionloop.DecisionLoopError is DecisionLoopError
    assert decisionloop.load_settings is load_settings


def test_dir_lists_the_public_names() -> None:
    assert dir(decisionloop) == sorted(decisionloop.__all__)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        decisionloop.nope  # noqa: B018


def test_version_is_a_string() -> None:
    assert decisionloop.__version__ == "0.1.0"


def _modules_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_import_does_not_load_heavy_dependencies() -> None:
    modules = _modules_after("import decisionloop")

    assert "decisionloop" in modules
    assert _heavy(modules) == []


def test_light_exports_do_not_load_heavy_dependencies() -> None:
    modules = _modules_after(
        "import decisionloop\n"
        "decisionloop.ModelRef.parse('churn@champion')\n"
        "decisionloop.NotFound('x')\n"
        "decisionloop.load_settings"
    )

    assert "decisionloop.refs" in modules
    assert "decisionloop.config" in modules
    assert _heavy(modules) == []


def test_the_subprocess_check_can_see_heavy_modules() -> None:
    # guards the check above: an import of a heavy module is detected
    assert "numpy" in _heavy(_modules_after("import decisionloop, numpy"))
