"""Helpers for the local-cluster tests: tiny real workloads, bounded waits, leak checks (imported by the tests)."""

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
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None,
    reason="the local cluster needs root plus unshare/nsenter (mount namespaces, cgroups)",
)
PY = sys.executable


def deployment(
    name: str,
    command: list[str],
    *,
    replicas: int = 1,
    port: int | None = None,
    limits: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
    **probes: dict[str, Any],
) -> dict[str, Any]:
    """A Deployment of one generic container (``python`` maps to this interpreter)."""
    container: dict[str, Any] = {"name": name, "image": "python:3.11", "command": command}
    if port:
        container["ports"] = [{"name": "http", "containerPort": port}]
    if limits:
        container["resources"] = {"limits": limits}
    if env:
        container["env"] = env
    container.update(probes)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "t"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]},
            },
        },
    }


def service(name: str, *, port: int, target: int | str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "t"},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": target}]},
    }


POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def http_server(name: str, *, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    """``python -m http.server`` on the pod IP, with a 1 s readiness probe."""
    return deployment(
        name,
        ["python", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        replicas=replicas,
        port=8080,
        env=POD_IP_ENV,
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        **extra,
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``predicate`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def hft_cgroups(run_id: str) -> list[str]:
    """Every cgroup directory of one run, in any hierarchy."""
    found = subprocess.run(
        ["find", "/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", f"hft-{run_id}"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return found.stdout.split()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
