"""What a run ran on: the Python version, installed package versions and a lock-file hash."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

#: lock files looked for in the project folder, first found wins
LOCK_FILES = ("uv.lock", "poetry.lock", "requirements.lock", "requirements.txt")


@functools.cache
def _installed() -> tuple[tuple[tuple[str, str], ...], str]:
    """Installed distributions and versions, and the sha256 of their sorted list, read once per
    process (reading every package's metadata costs tens of milliseconds, and what a process
    imported does not change)."""
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[str(name).lower()] = dist.version
    digest = hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()
    return tuple(sorted(packages.items())), digest


def capture_environment(project_dir: Path | None = None) -> dict[str, Any]:
    """``{"python", "packages", "lock_hash", "lock_file"}``: ``lock_hash`` is the sha256 of the
    project's lock file when there is one, else of the sorted installed package versions."""
    installed, digest = _installed()
    lock_file: str | None = None
    for candidate in LOCK_FILES if project_dir is not None else ():
        path = Path(project_dir or ".") / candidate
        if path.is_file():
            lock_file = candidate
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            break
    return {
        "python": platform.python_version(),
        "packages": dict(installed),
        "lock_hash": digest,
        "lock_file": lock_file,
    }
