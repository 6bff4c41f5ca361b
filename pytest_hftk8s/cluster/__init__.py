"""Cluster backends behind one contract (:mod:`pytest_hftk8s.cluster.base`).

``local`` makes this machine a one-node cluster; ``kubernetes`` talks to any kubeconfig context.
The rest of the plugin only sees :class:`~pytest_hftk8s.cluster.base.Cluster`. Only the kubernetes
backend imports the ``kubernetes`` client; only the local backend touches subprocess, signals and
``/sys/fs/cgroup``.
"""
