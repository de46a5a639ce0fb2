"""What machine a benchmark ran on: CPU model and memory, read from /proc."""

from __future__ import annotations

from pathlib import Path


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
