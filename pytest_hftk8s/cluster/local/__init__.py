"""The local backend: this machine as a one-node cluster (processes, loopback addresses, cgroups).

Only this package touches subprocess, signals and ``/sys/fs/cgroup``. It exposes :class:`LocalCluster`
(the :class:`~pytest_hftk8s.cluster.base.Cluster` contract) and :func:`sweep`, which cleans up after a
run that was killed outright.
"""

from __future__ import annotations

from pytest_hftk8s.cluster.local.cluster import LocalCluster
from pytest_hftk8s.cluster.local.state import sweep

__all__ = ["LocalCluster", "sweep"]
