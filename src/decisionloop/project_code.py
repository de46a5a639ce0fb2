"""Python code a project keeps in its own folder: custom gates, feature definitions and
on-demand feature functions. Loaded from inside the project folder only (nothing is looked up
on ``sys.path``; a file resolving outside the folder, e.g. through a symlink, is refused)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from decisionloop.config import PROJECT_FILE
from decisionloop.errors import InvalidConfig

_LOADED: dict[tuple[str, int, int], ModuleType] = {}


def load_module(module_name: str, project_dir: Path, *, key: str, what: str) -> ModuleType:
    """Import ``module_name`` (dotted, or a ``.py`` file name) from the project folder; the
    same unchanged file is imported once per process."""
    module_name = module_name.removesuffix(".py").replace("/", ".")
    root = project_dir.resolve()
    base = root.joinpath(*module_name.split("."))
    relative = "/".join(module_name.split("."))
    path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
    if path is None:
        raise InvalidConfig(
            f"{what} module {module_name!r} not found: no {relative}.py in {root}",
            file=PROJECT_FILE,
            key=key,
            hint=f"create {relative}.py in the project folder",
        )
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise InvalidConfig(
            f"{what} module {module_name!r} resolves outside the project folder",
            file=PROJECT_FILE,
            key=key,
            hint="keep project code inside the project folder (not a symlink to elsewhere)",
        )
    stat = resolved.stat()
    cached = _LOADED.get((str(resolved), stat.st_mtime_ns, stat.st_size))
    if cached is not None:
        return cached
    unique = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    name = f"_decisionloop_project_{unique}_{module_name.replace('.', '_')}"
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:  # pragma: no cover - .py files load
        raise InvalidConfig(f"cannot load {resolved}", file=PROJECT_FILE, key=key)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and typing need the module listed
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise InvalidConfig(
            f"{what} module {module_name!r} failed to import: {exc}",
            file=PROJECT_FILE,
            key=key,
            hint=f"fix {resolved.relative_to(root)}",
        ) from exc
    _LOADED[(str(resolved), stat.st_mtime_ns, stat.st_size)] = module
    return module


def load_function(spec: str, project_dir: Path, *, key: str, what: str, usage: str) -> Any:
    """Load ``module:function`` from the project folder; ``usage`` shows the expected shape."""
    module_name, _, attribute = spec.partition(":")
    module = load_module(module_name, project_dir, key=key, what=what)
    function = getattr(module, attribute, None)
    if not callable(function):
        relative = "/".join(module_name.split("."))
        raise InvalidConfig(
            f"{relative}.py has no function {attribute!r}",
            file=PROJECT_FILE,
            key=key,
            hint=f"define `{usage}` in it",
        )
    return function
