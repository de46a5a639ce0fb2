"""Side environments for baselines whose pins clash with ours (benchmarks/.venvs/NAME)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def ensure_venv(folder: Path, packages: list[str], reason: str) -> Path:
    """The Python of a virtual environment at ``folder`` holding ``packages``; created the first
    time, and again when the package list changes. Returns at once when it is up to date."""
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    wanted = " ".join(packages) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"[bench] creating {folder} (once; {reason})", file=sys.stderr, flush=True)
    pip_install = [str(python), "-m", "pip", "install", "--quiet"]
    for command in (
        [shutil.which("python3") or sys.executable, "-m", "venv", str(folder)],
        [*pip_install, "--upgrade", "pip"],
        [*pip_install, *packages],
    ):
        subprocess.run(command, check=True)
    stamp.write_text(wanted)
    return python
