"""An API server stand-in for the preflight: kmock plus what a real server answers and kmock 0.8 lacks.

* ``POST .../selfsubjectaccessreviews`` answers ``status.allowed`` from :attr:`PreflightApi.denied`
  (``"verb plural[/subresource]"`` entries), as the authorizer would, and stores nothing;
* ``/version`` answers :attr:`PreflightApi.version` (kmock's is fixed);
* paths in :attr:`PreflightApi.forbidden` answer 403, as for a user without the right to read them;
* list requests honour equality ``labelSelector`` terms;
* :meth:`PreflightApi.install_crds` stores CustomResourceDefinitions and serves their resources in
  discovery, the way a real server starts serving a CRD's group version once it is established.

It runs on its own event loop thread (the code under test uses the synchronous ``kubernetes`` client).
Realistic objects (a kind node, kind's ``standard`` StorageClass, Chaos Mesh's chaos-daemon DaemonSet
as its Helm chart renders it, a kube-state-metrics Deployment) are built by the functions below.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web
import kmock
import yaml
from served_api import ServedApi, write_kubeconfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAOS_CRDS = tuple(
    ROOT / "chaos" / "crds" / f"chaos-mesh.org_{plural}.yaml"
    for plural in ("stresschaos", "podchaos", "networkchaos", "schedules")
)
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
CLUSTER_RESOURCES = {
    "v1/nodes": ("Node", False),
    "storage.k8s.io/v1/storageclasses": ("StorageClass", False),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False),
    "apps/v1/daemonsets": ("DaemonSet", True),
    "apps/v1/deployments": ("Deployment", True),
}


def _matches(labels: dict[str, str], selector: str) -> bool:
    terms = [t.strip() for t in selector.split(",") if t.strip()]
    return all(
        labels.get(k.strip()) == v.strip().lstrip("=") for k, _, v in (t.partition("=") for t in terms)
    )


class PreflightApi(kmock.KubernetesEmulator):
    def setup(self) -> None:
        self.denied: set[str] = set()
        self.reviews: list[dict[str, Any]] = []
        self.forbidden: set[str] = set()
        self.version = {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"}
        for resource, (kind, namespaced) in CLUSTER_RESOURCES.items():
            self.resources[resource] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs={"list", "get"}
            )

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.url.path in self.forbidden:
            message = f'{request.url.path} is forbidden: User "tester" cannot {request.method.lower()} it'
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden"}
            return aiohttp.web.json_response({**status, "message": message, "code": 403}, status=403)
        if request.method == "POST" and request.url.path == SSAR:
            attrs = (request.data.get("spec") or {}).get("resourceAttributes") or {}
            self.reviews.append(attrs)
            label = f"{attrs.get('verb')} {attrs.get('resource')}"
            label += f"/{attrs['subresource']}" if attrs.get("subresource") else ""
            allowed = label not in self.denied
            status = {"allowed": allowed} | ({} if allowed else {"reason": "RBAC: access denied"})
            return aiohttp.web.json_response({**request.data, "status": status}, status=201)
        return await super()._handle(request)

    async def _serve_server_version(self, request: Any) -> Any:
        return dict(self.version)

    async def _serve_list(self, request: kmock.Request) -> Any:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            payload["items"] = [
                i for i in payload["items"] if _matches(i.get("metadata", {}).get("labels") or {}, selector)
            ]
        return payload

    def install_crds(self, paths: Iterable[pathlib.Path] = CHAOS_CRDS) -> None:
        """Store each CRD and serve its resource in every version it declares."""
        for path in paths:
            crd = _load_crd(path)
            spec = crd["spec"]
            self.objects[
                "apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]
            ] = crd
            for version in spec["versions"]:
                if version.get("served", True):
                    self.resources[f"{spec['group']}/{version['name']}/{spec['names']['plural']}"] = (
                        kmock.ResourceInfo(
                            kind=spec["names"]["kind"],
                            singular=spec["names"].get("singular"),
                            namespaced=spec["scope"] == "Namespaced",
                            verbs={"create", "delete", "get", "list", "patch", "watch"},
                        )
                    )

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[resource, meta.get("namespace"), meta["name"]] = obj


@functools.cache
def _load_crd(path: pathlib.Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    # Only what a server needs to serve the kind: the vendored schemas are large and not read here.
    return {k: loaded[k] for k in ("apiVersion", "kind", "metadata")} | {
        "spec": {k: v for k, v in loaded["spec"].items() if k != "versions"}
        | {"versions": [{"name": v["name"], "served": v["served"]} for v in loaded["spec"]["versions"]]}
    }


class ApiThread(ServedApi):
    """A :class:`PreflightApi` and its HTTP server on a private event loop thread."""

    api: PreflightApi

    def __init__(self) -> None:
        super().__init__(PreflightApi)

    def call(self, fn: Callable[[PreflightApi], Any]) -> Any:
        """Run ``fn(api)`` on the server's loop, where its state may be touched safely."""

        async def run() -> Any:
            return fn(self.api)

        return self.on_loop(run)


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
