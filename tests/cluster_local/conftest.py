"""Fixtures for the local-cluster tests: a cluster that always tears down, also when the test fails,
and leaves nothing behind (no cgroup in any hierarchy, no runtime directory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_workloads import hft_cgroups

from pytest_hftk8s.cluster.local import LocalCluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Create LocalClusters that are always deleted, also when the test fails; afterwards nothing of
    theirs may be left (a cgroup kept busy, say, would stay behind every run unnoticed)."""
    made: list[LocalCluster] = []

    def make(**kwargs: Any) -> LocalCluster:
        kwargs.setdefault("backoff_scale", 0.02)
        kwargs.setdefault("namespace", "t")
        cluster = LocalCluster(state_dir=tmp_path / "state", **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.delete_all()
    for cluster in made:
        assert hft_cgroups(cluster.run_id) == [], f"a cgroup of run {cluster.run_id} was left"
        assert not cluster.runtime_dir.exists(), f"{cluster.runtime_dir} was left"
