"""The emulated cluster: the kubernetes backend against the API stand-in, real local pods behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_hftk8s.cluster.emulated import EmulatedCluster


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
            run_ids += [c.run_id for ns in bridge.deployed() if (c := bridge.local_cluster(ns)) is not None]
            cluster.delete_all()
            cluster.close()
        left = [
            str(p)
            for root in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/memory"))
            for p in root.glob("**/hft-*")
            if any(run_id in p.name for run_id in run_ids)
        ]
        assert not left, f"cgroups left behind: {left}"
        # Nor its kubeconfig or the namespaces' state directories.
        emulated_state = tmp_path / "state" / "emulated"
        leftovers = sorted(str(p) for p in emulated_state.rglob("*")) if emulated_state.exists() else []
        assert not emulated_state.exists(), f"state left behind: {leftovers}"
