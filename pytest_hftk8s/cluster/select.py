"""Backend selection: a ``--hft-cluster`` name -> a constructed :class:`Cluster`.

``local`` is the embedded one-node cluster; ``emulated`` the kubernetes backend against an emulated
API whose pods are the local cluster's processes (:mod:`.emulated`); any other name (orbstack, kind, k3d, minikube or any
kubeconfig context) goes to the kubernetes backend. Backends are imported lazily, here and only
here, so loading the plugin never imports ``kubernetes`` or touches cgroups, and nothing above this
module names a backend class.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping

from pytest_hftk8s.chaos.safety import EMULATED_CONTEXT
from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.errors import ConfigError

#: The contexts the popular laptop clusters create, for names given without their prefix.
CONTEXT_ALIASES = {
    "kind": "kind-kind",
    "k3d": "k3d-k3s-default",
    "minikube": "minikube",
    "orbstack": "orbstack",
}

LOCAL = "local"
EMULATED = "emulated"


def context_of(name: str) -> str:
    """The kube context a ``--hft-cluster`` name reaches (``local`` for the embedded cluster)."""
    if name == EMULATED:
        return EMULATED_CONTEXT
    return LOCAL if name == LOCAL else CONTEXT_ALIASES.get(name, name)


def allowed_contexts(allowed: tuple[str, ...] | list[str]) -> set[str]:
    """``--hft-allow-context`` values with their aliases resolved (``kind`` also allows ``kind-kind``)."""
    return set(allowed) | {CONTEXT_ALIASES[a] for a in allowed if a in CONTEXT_ALIASES}


def make_cluster(
    name: str,
    *,
    namespace: str,
    state_dir: pathlib.Path,
    backoff_scale: float = 1.0,
    access: str = "auto",
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    faults: tuple[str, ...] = (),
) -> Cluster:
    """A new, empty cluster handle for ``name`` in ``namespace`` (nothing deployed yet)."""
    if name == LOCAL:
        from pytest_hftk8s.cluster.local import LocalCluster

        return LocalCluster(
            namespace=namespace, state_dir=state_dir, backoff_scale=backoff_scale, progress=progress
        )
    if name == EMULATED:
        try:
            from pytest_hftk8s.cluster.emulated import EmulatedCluster
        except ImportError as e:
            raise ConfigError(
                f"--hft-cluster=emulated needs the emulated extra ({e.name} is missing): "
                "pip install 'pytest-hftk8s[emulated]'"
            ) from e

        return EmulatedCluster(
            namespace=namespace, state_dir=state_dir, faults=faults, backoff_scale=backoff_scale,
            access=access, run_id=run_id, progress=progress,
        )  # fmt: skip
    from pytest_hftk8s.cluster.kubernetes import KubernetesCluster

    return KubernetesCluster(
        context=context_of(name), namespace=namespace, access=access, run_id=run_id, progress=progress
    )


def attach_cluster(name: str, *, namespace: str, shared: Mapping[str, str], access: str = "auto") -> Cluster:
    """A handle on a cluster another process deployed, from what its :meth:`Cluster.share` published.

    A kube context is shared state: any process may talk to it. The local cluster's pods are the
    owner's children, so other processes reach them through the owner's control socket.
    """
    if name == LOCAL:
        from pytest_hftk8s.cluster.local.remote import RemoteCluster

        return RemoteCluster.connect(shared)
    from pytest_hftk8s.cluster.kubernetes import KubernetesCluster

    # The emulated API lives in the owner's process; its kubeconfig is a file the workers can read.
    kubeconfig = shared.get("kubeconfig") if name == EMULATED else None
    return KubernetesCluster(
        context=context_of(name), namespace=namespace, access=access, kubeconfig=kubeconfig
    )


def platform_images(
    name: str, *, mode: str, registry: str | None, progress: Callable[[str], None]
) -> dict[str, str]:
    """The platform's image references for ``name`` (image name -> reference the manifests run).

    The local cluster runs the checkout's code, whatever the tag: nothing to override. On a kube
    context the references carry the package version and a content hash of what goes into each
    image; ``mode`` build or load builds them (and loads them into the provider, or pushes them to
    ``registry``) first.
    """
    if name in (LOCAL, EMULATED):
        return {}  # the local image table runs them from this checkout
    from pytest_hftk8s.cluster.kubernetes.images import provide_images

    return provide_images(context=context_of(name), mode=mode, registry=registry, progress=progress)
