"""The kubernetes backend: any kubeconfig context, through the official ``kubernetes`` client.

This package is the only place in the project that imports ``kubernetes``, and only lazily (inside
functions), so importing it costs nothing until a cluster is actually contacted. Its layers:
``api`` (the one request boundary, error translation) < ``kinds`` / ``payloads`` / ``ownership`` /
``access`` (pure data and decisions) < ``portforward``, ``chaos_driver``, ``sweep`` < ``cluster`` (the
:class:`~pytest_hftk8s.cluster.base.Cluster` implementation).
"""

from __future__ import annotations

from pytest_hftk8s.cluster.kubernetes.api import ApiNotFound, KubeApi
from pytest_hftk8s.cluster.kubernetes.cluster import MANAGED_BY, KubernetesCluster

__all__ = ["MANAGED_BY", "ApiNotFound", "KubeApi", "KubernetesCluster"]
