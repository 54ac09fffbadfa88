"""What every benchmark records about the machine and the libraries it measured."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    """The value after ':' of the first line of `path` starting with `prefix` (Linux /proc)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Cores this process may use, CPU model, memory, platform and Python version."""
    mem_kb = _first("/proc/meminfo", "MemTotal")
    return {
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "",
        "memory_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions (those not installed are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in distributions:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
