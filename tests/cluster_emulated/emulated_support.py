"""What the emulated-cluster tests share: markers, the platform's objects, bounded waits, stress lookups."""

from __future__ import annotations

import os
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.manifests import render

# The chaos tests' helpers: the same bounded wait and the same stress-ng lookup, not a copy of them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos_local"))
from chaos_workloads import stress_ng_pids, wait_for

__all__ = ["NEEDS_LOCAL_CLUSTER", "platform_objects", "stress_ng_pids", "wait_for"]

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
