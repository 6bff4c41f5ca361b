"""The emulated cluster: the kubernetes backend against the API stand-in, real local pods behind it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from pytest_hftk8s.cluster.emulated import EmulatedCluster
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


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[Callable[..., EmulatedCluster]]:
    """``emulated(faults=[...])``: an :class:`EmulatedCluster` on namespace ``hft``; stopped after the
    test, which must then leave no local pod behind (no cgroup of its runs, no runtime directory)."""
    made: list[EmulatedCluster] = []

    def make(*, faults: tuple[str, ...] = (), **kwargs: Any) -> EmulatedCluster:
        cluster = EmulatedCluster(namespace="hft", state_dir=tmp_path / "state", faults=faults, **kwargs)
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        run_ids = []
        for cluster in made:
            bridge = cluster.environment.bridge
            run_ids += [s.cluster.run_id for s in bridge._spaces.values() if s.cluster is not None]
            cluster.delete_all()
            cluster.close()
        left = [
            str(p)
            for root in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/memory"))
            for p in root.glob("**/hft-*")
            if any(run_id in p.name for run_id in run_ids)
        ]
        assert not left, f"cgroups left behind: {left}"
