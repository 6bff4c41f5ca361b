"""Fixtures for the local-cluster tests: a cluster that always tears down, also when the test fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_hftk8s.cluster.local import LocalCluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """Create LocalClusters that are always deleted, also when the test fails."""
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
