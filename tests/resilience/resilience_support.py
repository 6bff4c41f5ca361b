"""Helpers for the resilience tests: inner pytest runs as real subprocesses, and leak checks.

Leak checks look for what one local-cluster run could leave: processes started from its runtime
directory (``/tmp/hftk8s-<run id>-*``), stress-ng processes, cgroups named ``hft-<run id>`` and its
state file in the shared state directory the plugin uses.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pytest

STATE_DIR = pathlib.Path(tempfile.gettempdir()) / "hftk8s-state"
CGROUP_ROOTS = (
    pathlib.Path("/sys/fs/cgroup/cpu"),
    pathlib.Path("/sys/fs/cgroup/memory"),
    pathlib.Path("/sys/fs/cgroup"),
)

NEEDS_LOCAL_CLUSTER = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the local cluster needs root (mount namespaces, cgroups)"),
    pytest.mark.skipif(
        shutil.which("stress-ng") is None, reason="needs stress-ng (apt-get install stress-ng) for chaos"
    ),
    pytest.mark.skipif(
        not pathlib.Path("/usr/lib/postgresql/15/bin/postgres").exists() and shutil.which("postgres") is None,
        reason="needs Debian's postgresql 15",
    ),
]


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


def inner_args() -> list[str]:
    """What every inner run gets: no cache, no random order, no rewrite warning of the editable install."""
    return ["-p", "no:cacheprovider", "-p", "no:randomly", "-W", "ignore::pytest.PytestAssertRewriteWarning"]


def start_inner(
    directory: pathlib.Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *inner_args(), *args],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"expected {what} within {timeout:g}s")
        time.sleep(every)


def alive(pid: int) -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def leftovers(run_id: str) -> list[str]:
    """Everything of local-cluster run ``run_id`` still on the machine."""
    left: list[str] = []
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    left += [
        line.strip()
        for line in out.splitlines()
        if f"/tmp/hftk8s-{run_id}-" in line or f"hft-{run_id}" in line
    ]
    for root in CGROUP_ROOTS:
        if root.is_dir():
            left += [
                str(p) for depth in ("*", "*/*") for p in root.glob(depth + "/") if f"hft-{run_id}" in p.name
            ]
    left += [str(p) for p in STATE_DIR.glob(f"*{run_id}*")] if STATE_DIR.is_dir() else []
    return left


def stress_pids(run_id: str) -> list[int]:
    """stress-ng processes inside the run's cgroups (read from the cgroups' task lists)."""
    pids: set[int] = set()
    for root in CGROUP_ROOTS:
        if not root.is_dir():
            continue
        for procs in root.glob(f"**/hft-{run_id}/**/cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return sorted(p for p in pids if _is_stress(p))


def _is_stress(pid: int) -> bool:
    try:
        return b"stress-ng" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
