"""Helpers for the local chaos tests: tiny real workloads, bounded waits and leak checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0
    or shutil.which("unshare") is None
    or shutil.which("nsenter") is None
    or shutil.which("stress-ng") is None,
    reason="local chaos needs root, unshare/nsenter (pods) and stress-ng (StressChaos)",
)
PY = sys.executable
POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def deployment(
    name: str,
    command: list[str],
    *,
    replicas: int = 1,
    port: int | None = None,
    limits: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Deployment labelled ``app: <name>`` whose first container runs ``command``."""
    main: dict[str, Any] = {"name": name, "image": "python:3.11", "command": command, **extra}
    if port:
        main["ports"] = [{"name": "http", "containerPort": port}]
    if limits:
        main["resources"] = {"limits": limits}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "t"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [main, *(containers or [])]},
            },
        },
    }


def http_server(name: str, **kwargs: Any) -> dict[str, Any]:
    """``python -m http.server`` on the pod IP, ready when it answers."""
    return deployment(
        name,
        ["python", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        port=8080,
        env=POD_IP_ENV,
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 0.5},
        **kwargs,
    )


def service(name: str, *, port: int = 80, target: int | str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "t"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": target}]},
    }


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def stress_ng_pids(run_id: str) -> list[int]:
    """Live stress-ng processes in one cluster run's cgroups (other sessions may run their own)."""
    found = subprocess.run(["pgrep", "^stress-ng"], capture_output=True, text=True, timeout=10, check=False)
    mine = []
    for pid in (int(p) for p in found.stdout.split()):
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if f"hft-{run_id}" in cgroups and alive(pid):
            mine.append(pid)
    return mine


def hft_cgroups(run_id: str) -> list[str]:
    found = subprocess.run(
        ["find", "/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", f"hft-{run_id}"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return found.stdout.split()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def alive(pid: int) -> bool:
    return _state(pid) not in ("Z", "X", "")


def stress_pids_of(records: list[dict[str, Any]]) -> list[int]:
    """The stress-ng pids a run's records name (``stress-ng pid N in ...`` events)."""
    return [int(e.split()[2]) for r in records for e in r.get("events", []) if e.startswith("stress-ng pid ")]
