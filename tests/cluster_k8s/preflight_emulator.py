"""An API server stand-in for the preflight, and the realistic objects it is seeded with.

:class:`PreflightApi` is the package's :class:`~pytest_hftk8s.cluster.emulated.apiserver.ApiServer`
as it is: SelfSubjectAccessReviews answered from ``api.denied`` (``"verb plural[/subresource]"``
entries), ``/version`` from ``api.version``, 403 for the paths in ``api.forbidden``, label selectors
on lists, and ``api.install_crds()`` for the vendored Chaos Mesh CRDs. It runs on its own event loop
thread (the code under test uses the synchronous ``kubernetes`` client). Realistic objects (a kind
node, kind's ``standard`` StorageClass, Chaos Mesh's chaos-daemon DaemonSet as its Helm chart renders
it, a kube-state-metrics Deployment) are built by the functions below; ``api.store`` puts them in.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable
from typing import Any

from pytest_hftk8s.cluster.emulated.apiserver import ApiServer, ServedApi, write_kubeconfig


class PreflightApi(ApiServer):
    """The package's API stand-in, without controllers: what the preflight reads is seeded."""


class ApiThread(ServedApi):
    """A :class:`PreflightApi` and its HTTP server on a private event loop thread."""

    api: PreflightApi

    def __init__(self) -> None:
        super().__init__(PreflightApi)

    def call(self, fn: Callable[[PreflightApi], Any]) -> Any:
        """Run ``fn(api)`` on the server's loop, where its state may be touched safely."""
        return self.locked(lambda: fn(self.api))


def kubeconfig_for(url: str, path: pathlib.Path, *, context: str) -> str:
    return write_kubeconfig(path, server=url, context=context)


# -- realistic objects ----------------------------------------------------------------------------


def kind_node(
    name: str = "hft-control-plane", *, images: Iterable[str] = (), filler: int = 0
) -> dict[str, Any]:
    """A kind node: containerd, the preloaded images, plus ``images`` as ``kind load`` leaves them."""
    preloaded = [
        (["registry.k8s.io/etcd:3.5.16-0"], 57680541),
        (["registry.k8s.io/kube-apiserver:v1.33.1"], 98049327),
        (["docker.io/kindest/kindnetd:v20250512-df8de77b"], 44375501),
        (["docker.io/kindest/local-path-provisioner:v20250214-acbabc1a"], 22541737),
        (["registry.k8s.io/coredns/coredns:v1.12.0"], 20939036),
    ]
    listed = [{"names": names, "sizeBytes": size} for names, size in preloaded]
    listed += [{"names": [f"docker.io/library/filler-{i}:1"], "sizeBytes": 1000 + i} for i in range(filler)]
    listed += [{"names": [ref], "sizeBytes": 210_000_000} for ref in images]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "node-role.kubernetes.io/control-plane": ""},
        },
        "status": {
            "nodeInfo": {
                "containerRuntimeVersion": "containerd://2.1.1",
                "kubeletVersion": "v1.33.1",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
            "images": listed,
        },
    }


def standard_storage_class(*, default: bool = True) -> dict[str, Any]:
    """kind's ``standard`` class (rancher's local-path provisioner), the default one."""
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "standard", "annotations": annotations},
        "provisioner": "rancher.io/local-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def chaos_daemon(
    *,
    ready: int = 1,
    desired: int = 1,
    runtime: str = "containerd",
    socket: str = "/run/containerd/containerd.sock",
) -> dict[str, Any]:
    """The chaos-daemon DaemonSet as Chaos Mesh's Helm chart renders it, with its status."""
    labels = {
        "app.kubernetes.io/name": "chaos-mesh",
        "app.kubernetes.io/instance": "chaos-mesh",
        "app.kubernetes.io/component": "chaos-daemon",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "chaos-daemon",
            "namespace": "chaos-mesh",
            "labels": {**labels, "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "chaos-mesh-2.8.4"},
        },
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostIPC": True,
                    "hostPID": True,
                    "containers": [
                        {
                            "name": "chaos-daemon",
                            "image": "ghcr.io/chaos-mesh/chaos-daemon:v2.8.4",
                            "command": [
                                "/usr/local/bin/chaos-daemon",
                                "--runtime",
                                runtime,
                                "--http-port",
                                "31766",
                                "--grpc-port",
                                "31767",
                            ],
                            "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_PTRACE"]}},
                            "volumeMounts": [{"name": "socket-path", "mountPath": socket}],
                        }
                    ],
                    "volumes": [
                        {"name": "socket-path", "hostPath": {"path": socket}},
                        {"name": "sys-path", "hostPath": {"path": "/sys"}},
                    ],
                },
            },
        },
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberUnavailable": desired - ready,
            "observedGeneration": 1,
            "updatedNumberScheduled": desired,
        },
    }


def kube_state_metrics(*, ready: int = 1, namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "kube-state-metrics",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/version": "2.15.0"},
        },
        "spec": {"replicas": 1},
        "status": {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready},
    }
