"""What the emulated-cluster tests share: markers, the platform's objects, bounded waits, stress lookups."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.manifests import render

NEEDS_LOCAL_CLUSTER = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster behind the API needs root (cgroups)"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server"),
    pytest.mark.skipif(
        find_spec("hft_platform") is None or find_spec("hft_engine") is None,
        reason="the platform services (hft_platform, hft_engine) are not installed: pip install -e .",
    ),
]


def platform_objects(overlay: str = "emulated") -> list[dict[str, Any]]:
    return with_db_secret(render(overlay), password=new_password(), secret_name=None)


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:g}s"
        time.sleep(0.1)
    return found


def stress_in(run_id: str) -> list[int]:
    """Live stress-ng processes inside one local cluster run's cgroups."""
    out = subprocess.run(["pgrep", "^stress-ng"], capture_output=True, text=True, check=False).stdout
    found = []
    for pid in (int(p) for p in out.split()):
        try:
            if f"hft-{run_id}" in Path(f"/proc/{pid}/cgroup").read_text():
                found.append(pid)
        except OSError:
            continue
    return found
