"""Backend selection: a ``--hft-cluster`` name -> a constructed :class:`Cluster`.

``local`` is the embedded one-node cluster; any other name (orbstack, kind, k3d, minikube or any
kubeconfig context) goes to the kubernetes backend. Backends are imported lazily, here and only
here, so loading the plugin never imports ``kubernetes`` or touches cgroups.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from pytest_hftk8s.cluster.base import Cluster

#: The contexts the popular laptop clusters create, for names given without their prefix.
CONTEXT_ALIASES = {
    "kind": "kind-kind",
    "k3d": "k3d-k3s-default",
    "minikube": "minikube",
    "orbstack": "orbstack",
}


def make_cluster(
    name: str,
    *,
    namespace: str,
    state_dir: pathlib.Path,
    backoff_scale: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> Cluster:
    if name == "local":
        from pytest_hftk8s.cluster.local import LocalCluster

        return LocalCluster(
            namespace=namespace, state_dir=state_dir, backoff_scale=backoff_scale, progress=progress
        )
    from pytest_hftk8s.cluster.kubernetes import KubernetesCluster

    return KubernetesCluster(context=CONTEXT_ALIASES.get(name, name), namespace=namespace)
