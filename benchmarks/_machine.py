"""What machine a benchmark ran on: CPU model and memory, read from /proc."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_and_memory() -> tuple[str, float | None]:
    """The CPU model name and total memory in GB (``"unknown"``/None where /proc says nothing)."""
    cpu = "unknown"
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return cpu, memory_gb


def host() -> dict[str, Any]:
    """Cores, CPU, memory, load average at the start, OS and Python of this machine."""
    cpu, memory_gb = cpu_and_memory()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": memory_gb,
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
    }
