"""What every benchmark result records about the machine it ran on.

Imported by the ``bench/*.py`` scripts (run as ``python bench/<name>.py``, so this folder is on
``sys.path``). Reads /proc and the interpreter only; starts nothing.
"""

from __future__ import annotations

import os
import pathlib
import platform
from typing import Any


def describe(**extra: Any) -> dict[str, Any]:
    """nproc, CPU model, kernel, Python and the load average at start, plus ``extra`` fields."""
    model = "unknown"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
        **extra,
    }
