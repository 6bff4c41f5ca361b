"""Fixtures for the local chaos tests: a cluster and a driver that always clean up, and leak checks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_workloads import hft_cgroups, stress_ng_pids

from pytest_hftk8s.chaos import registry
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """LocalClusters that are always deleted; afterwards nothing of theirs may be left."""
    made: list[LocalCluster] = []

    def make(**kwargs: Any) -> LocalCluster:
        kwargs.setdefault("backoff_scale", 0.05)
        kwargs.setdefault("namespace", "t")
        cluster = LocalCluster(state_dir=tmp_path / "state", **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.delete_all()
    for cluster in made:
        assert hft_cgroups(cluster.run_id) == [], "a cgroup of the run was left"
        assert stress_ng_pids(cluster.run_id) == []


@pytest.fixture
def chaos_on() -> Iterator[Callable[..., LocalChaos]]:
    """A LocalChaos per cluster; after the test no chaos is live: no proxy thread, no stress-ng pid."""
    drivers: list[LocalChaos] = []

    def make(cluster: LocalCluster, **kwargs: Any) -> LocalChaos:
        kwargs.setdefault("echo", lambda _text: None)
        driver = LocalChaos(cluster, **kwargs)
        drivers.append(driver)
        return driver

    yield make
    leaked = registry.live()
    registry.remove_all()
    assert leaked == [], "an experiment outlived its context manager"
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("hft-netproxy", "hft-chaos"))]
    for driver in drivers:
        assert not driver._live
        assert not driver.cluster._redirects
