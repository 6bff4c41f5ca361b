"""The kubernetes backend: the :class:`~pytest_hftk8s.cluster.base.Cluster` contract on a kube context.

Deploys by server-side apply of the rendered objects, reads workloads, pods, endpoints and events as
plain JSON mapped onto the base dataclasses, resolves names inside a pod by exec and reaches Services
through loopback port-forwards. Every request goes through :class:`KubeApi` (the one place errors are
translated). It must not decide readiness (that is the gate's job) nor know about chaos or SLOs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_hftk8s.cluster.base import (
    ClusterEvent,
    Endpoint,
    KubeObject,
    PodStatus,
    ServiceAddress,
    WorkloadStatus,
)
from pytest_hftk8s.cluster.kubernetes.api import DEFAULT_REQUEST_TIMEOUT, ApiNotFound, KubeApi
from pytest_hftk8s.cluster.kubernetes.kinds import TEARDOWN_ORDER, Kind, KindTable
from pytest_hftk8s.cluster.kubernetes.payloads import (
    map_endpoint_slices,
    map_event,
    map_pod,
    map_workload,
    parse_getent,
    probe_errors,
)
from pytest_hftk8s.cluster.kubernetes.portforward import LocalPortForward
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.results import PreflightCheck

__all__ = ["MANAGED_BY", "KubernetesCluster"]

#: The label every object the plugin creates carries; ``delete_all`` and chaos sweeps select on it.
MANAGED_BY = ("app.kubernetes.io/managed-by", "pytest-hftk8s")
#: Which session namespace an object belongs to (cluster-scoped RBAC objects need it to be told apart).
NAMESPACE_LABEL = "hftk8s.io/namespace"
#: On a Namespace: the plugin created it, so the plugin may delete it.
CREATED_LABEL = "hftk8s.io/created"
_PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class KubernetesCluster:
    """A real cluster through a kubeconfig context."""

    def __init__(
        self,
        *,
        context: str,
        namespace: str,
        kubeconfig: str | None = None,
        field_manager: str = "pytest-hftk8s",
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        delete_timeout: float = 60.0,
        exec_timeout: float = 10.0,
        access: str = "auto",
    ) -> None:
        self.name = context
        self.access = access  # how service_address reaches a Service (see --hft-access)
        self.namespace = namespace
        self.field_manager = field_manager
        self.delete_timeout = delete_timeout
        self.exec_timeout = exec_timeout
        self.api = KubeApi(context=context, kubeconfig=kubeconfig, request_timeout=request_timeout)
        self._kinds = KindTable(discover=lambda path: self.api.request("GET", path, what=f"discover {path}"))
        self._applied_kinds: list[Kind] = []  # kinds beyond TEARDOWN_ORDER (e.g. discovered CRDs)
        self._owns_namespace = False
        self._overlay_namespace = namespace  # the namespace the rendered overlay names (moved to ours)
        self._forwards: dict[tuple[str, int], LocalPortForward] = {}

    # -- deploy / teardown -----------------------------------------------------------------------

    def apply(self, objects: Sequence[KubeObject]) -> None:
        """Server-side apply, namespace first; every object is labelled as the plugin's."""
        namespace_kind = self._kinds.resolve("v1", "Namespace")
        try:
            existing = self.api.request(
                "GET", namespace_kind.object_path(None, self.namespace), what="read namespace"
            )
            # Keep owning a namespace an earlier session created (SSA would drop an omitted label).
            labels = (existing.get("metadata") or {}).get("labels") or {}
            self._owns_namespace = labels.get(CREATED_LABEL) == "true"
        except ApiNotFound:
            self._owns_namespace = self.namespace not in _PROTECTED_NAMESPACES
        ordered = sorted(objects, key=lambda o: o.get("kind") != "Namespace")
        self._overlay_namespace = next(
            (str(o["metadata"]["name"]) for o in ordered if o.get("kind") == "Namespace"), self.namespace
        )
        if not any(o.get("kind") == "Namespace" for o in ordered):
            ordered.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        for obj in ordered:
            self._apply_one(obj)

    def _apply_one(self, obj: KubeObject) -> None:
        kind = self._kinds.resolve(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        meta = dict(obj.get("metadata") or {})
        name = str(meta.get("name") or "")
        if not name:
            raise ClusterError(f"cannot apply a {kind.kind} without metadata.name: {dict(obj)!r:.200}")
        meta["labels"] = {**(meta.get("labels") or {}), **self._labels}
        if kind.kind == "Namespace":  # the overlay's namespace becomes the one this session uses
            name = meta["name"] = self.namespace
            if self._owns_namespace:
                meta["labels"][CREATED_LABEL] = "true"
        if kind.namespaced:
            meta["namespace"] = self.namespace
        else:
            meta.pop("namespace", None)
        body: dict[str, Any] = {**obj, "metadata": meta}
        if kind.kind in ("RoleBinding", "ClusterRoleBinding"):
            body["subjects"] = [
                {**s, "namespace": self.namespace}
                if s.get("kind") == "ServiceAccount" and s.get("namespace") in (None, self._overlay_namespace)
                else s
                for s in obj.get("subjects") or []
            ]
        self.api.request(
            "PATCH",
            kind.object_path(self.namespace, name),
            what=f"apply {kind.kind}/{name}",
            query=[("fieldManager", self.field_manager), ("force", "true")],
            body=body,
            content_type="application/apply-patch+yaml",
        )
        if kind not in self._applied_kinds:
            self._applied_kinds.append(kind)

    @property
    def _labels(self) -> dict[str, str]:
        return {MANAGED_BY[0]: MANAGED_BY[1], NAMESPACE_LABEL: self.namespace}

    def _teardown_kinds(self) -> list[Kind]:
        known = [self._kinds.resolve(api_version, kind) for api_version, kind in TEARDOWN_ORDER]
        return [k for k in self._applied_kinds if k not in known and k.kind != "Namespace"] + known

    def delete_all(self) -> None:
        """Delete every object labelled as this session's (any process may call it), then wait.

        Objects are found by label, so the last xdist worker can tear down what another one applied.
        The namespace goes too, but only if the plugin created it.
        """
        selector = ",".join(f"{k}={v}" for k, v in self._labels.items())
        pending: list[tuple[Kind, str]] = []
        for kind in self._teardown_kinds():
            try:
                listing = self.api.request(
                    "GET",
                    kind.collection_path(self.namespace),
                    what=f"list {kind.plural} to tear down",
                    query=[("labelSelector", selector)],
                )
            except ApiNotFound:  # a kind this server does not serve holds nothing of ours
                continue
            for item in listing.get("items") or []:
                labels = (item.get("metadata") or {}).get("labels") or {}
                if all(labels.get(k) == v for k, v in self._labels.items()):  # never delete others' objects
                    pending.append((kind, str(item["metadata"]["name"])))
        namespace_kind = self._kinds.resolve("v1", "Namespace")
        with contextlib.suppress(ApiNotFound):
            ns = self.api.request(
                "GET", namespace_kind.object_path(None, self.namespace), what="read namespace"
            )
            labels = (ns.get("metadata") or {}).get("labels") or {}
            if labels.get(CREATED_LABEL) == "true" and labels.get(MANAGED_BY[0]) == MANAGED_BY[1]:
                pending.append((namespace_kind, self.namespace))
        for kind, name in pending:
            with contextlib.suppress(ApiNotFound):
                self.api.request(
                    "DELETE",
                    kind.object_path(self.namespace, name),
                    what=f"delete {kind.kind}/{name}",
                    query=[("propagationPolicy", "Background")],
                )
        deadline = time.monotonic() + self.delete_timeout
        remaining = pending
        while remaining:
            remaining = [(k, n) for k, n in remaining if self._exists(k, n)]
            if not remaining:
                break
            if time.monotonic() >= deadline:
                names = ", ".join(f"{k.kind}/{n}" for k, n in remaining)
                raise ClusterError(
                    f"teardown incomplete after {self.delete_timeout:.0f}s: expected every applied object "
                    f"gone, still present: {names}. Check finalizers with `kubectl get -n "
                    f"{self.namespace} <kind> <name> -o yaml`."
                )
            time.sleep(0.2)

    def _exists(self, kind: Kind, name: str) -> bool:
        try:
            self.api.request("GET", kind.object_path(self.namespace, name), what=f"read {kind.kind}/{name}")
        except ApiNotFound:
            return False
        return True

    # -- status ----------------------------------------------------------------------------------

    def _list(self, api_version: str, kind: str, *, label_selector: str | None = None) -> list[Any]:
        k = self._kinds.resolve(api_version, kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        listing = self.api.request(
            "GET", k.collection_path(self.namespace), what=f"list {k.plural}", query=query
        )
        return list(listing.get("items") or [])

    def workloads(self) -> list[WorkloadStatus]:
        return [
            map_workload(kind, obj)
            for kind in ("Deployment", "StatefulSet")
            for obj in self._list("apps/v1", kind)
        ]

    def pods(self) -> list[PodStatus]:
        errors = probe_errors(self._list("v1", "Event"))
        return [
            map_pod(obj, probe_error=errors.get(obj.get("metadata", {}).get("name", "")))
            for obj in self._list("v1", "Pod")
        ]

    def services(self) -> list[str]:
        return [str(obj["metadata"]["name"]) for obj in self._list("v1", "Service")]

    def endpoints(self, service: str) -> list[Endpoint]:
        slices = self._list(
            "discovery.k8s.io/v1", "EndpointSlice", label_selector=f"kubernetes.io/service-name={service}"
        )
        # The server filters by the selector; checking again keeps a lax server from mixing services.
        mine = [
            s
            for s in slices
            if s.get("metadata", {}).get("labels", {}).get("kubernetes.io/service-name") == service
        ]
        return map_endpoint_slices(mine)

    def events(self) -> list[ClusterEvent]:
        return sorted((map_event(obj) for obj in self._list("v1", "Event")), key=lambda e: e.timestamp)

    def pod_logs(self, pod: str, *, container: str | None = None, tail: int = 200) -> str:
        query = [("tailLines", str(tail))] + ([("container", container)] if container else [])
        return str(
            self.api.request(
                "GET",
                f"/api/v1/namespaces/{self.namespace}/pods/{pod}/log",
                what=f"read logs of pod {pod}",
                query=query,
                raw=True,
            )
        )

    # -- inside the cluster ----------------------------------------------------------------------

    def resolve_in_pod(self, pod: str, hostname: str) -> list[str]:
        """``getent ahosts NAME`` in the pod's first container (exec over a websocket)."""
        from kubernetes import client
        from kubernetes.stream import stream

        spec = self.api.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/pods/{pod}", what=f"read pod {pod}"
        ).get("spec", {})
        containers = [str(c.get("name")) for c in spec.get("containers") or []]
        core = client.CoreV1Api(self.api.api_client)
        ws = self.api.call_api(
            f"exec `getent ahosts {hostname}` in pod {pod}",
            stream,
            core.connect_get_namespaced_pod_exec,
            pod,
            self.namespace,
            command=["getent", "ahosts", hostname],
            **({"container": containers[0]} if containers else {}),
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        what = f"read the output of `getent ahosts {hostname}` in pod {pod}"
        try:
            with self.api.translated(what):
                ws.run_forever(timeout=self.exec_timeout)
                finished = not ws.is_open()
                out, err = ws.read_stdout(timeout=0), ws.read_stderr(timeout=0)
                code = ws.returncode if finished else None
        finally:
            ws.close()
            # After a server-initiated close, websocket-client's close() is a no-op: drop the socket.
            with contextlib.suppress(Exception):
                ws.sock.shutdown()
        if not finished:
            raise ClusterError(
                f"`getent ahosts {hostname}` in pod {pod} did not finish within {self.exec_timeout:g}s; "
                f"expected a prompt answer from cluster DNS. Check the pod's /etc/resolv.conf and CoreDNS."
            )
        if code == 2:  # getent: key not found
            return []
        if code != 0:
            raise ClusterError(
                f"`getent ahosts {hostname}` in pod {pod} exited {code}: {err.strip()!r}. Expected exit 0 "
                f"or 2 (not found); the image needs getent (glibc) for the DNS gate."
            )
        return parse_getent(out)

    def service_address(self, service: str, port: int | str) -> ServiceAddress:
        """A loopback port-forward to a ready pod behind ``service:port`` (reused per pod port)."""
        svc = self.api.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/services/{service}", what=f"read service {service}"
        )
        spec_port = next(
            (p for p in svc.get("spec", {}).get("ports") or [] if port in (p.get("port"), p.get("name"))),
            None,
        )
        if spec_port is None:
            raise ClusterError(
                f"service {service} has no port {port!r}; its ports: {svc.get('spec', {}).get('ports')}"
            )
        ready = [e for e in self.endpoints(service) if e.ready and e.pod]
        if not ready:
            raise ClusterError(
                f"service {service} has no ready endpoint to port-forward to; expected at least one ready "
                f"pod. Wait for the readiness gate, or inspect `kubectl -n {self.namespace} get endpointslices`."
            )
        target = spec_port.get("targetPort", spec_port.get("port"))
        if isinstance(target, str):  # a named container port: the slices carry its number
            remote = self._slice_port(service, str(spec_port.get("name") or "")) or ready[0].port
        else:
            remote = int(target)
        pod = ready[0].pod
        key = (pod, remote)
        if key not in self._forwards:
            self._forwards[key] = LocalPortForward(
                open_stream=lambda: self._open_portforward(pod, remote),
                remote_port=remote,
                name=f"{pod}:{remote}",
            )
        fwd = self._forwards[key]
        return ServiceAddress(host=fwd.host, port=fwd.port, extra={"pod": pod, "remote_port": str(remote)})

    def _slice_port(self, service: str, name: str) -> int | None:
        slices = self._list(
            "discovery.k8s.io/v1", "EndpointSlice", label_selector=f"kubernetes.io/service-name={service}"
        )
        for eps in slices:
            for p in eps.get("ports") or []:
                if (p.get("name") or "") == name and p.get("port") is not None:
                    return int(p["port"])
        return None

    def _open_portforward(self, pod: str, port: int) -> Any:
        from kubernetes import client
        from kubernetes.stream import portforward

        core = client.CoreV1Api(self.api.api_client)
        return self.api.call_api(
            f"port-forward to {pod}:{port}",
            portforward,
            core.connect_get_namespaced_pod_portforward,
            pod,
            self.namespace,
            ports=str(port),
        )

    def close(self) -> None:
        for fwd in self._forwards.values():
            fwd.close()
        self._forwards.clear()
        self.api.close()

    def chaos_driver(
        self, *, run_id: str, allowed_contexts: Sequence[str], echo: Callable[[str], None]
    ) -> Any:
        """Chaos Mesh custom resources in this namespace; refuses contexts not in ``allowed_contexts``."""
        from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos

        return KubernetesChaos.for_cluster(self, run_id=run_id, allowed_contexts=allowed_contexts, echo=echo)

    def share(self) -> Mapping[str, str]:
        """A kube context is shared state: other processes need only its name and the namespace."""
        return {"context": self.name, "namespace": self.namespace}

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """This context's prerequisites, read-only and bounded (see :mod:`.preflight`)."""
        from pytest_hftk8s.cluster.kubernetes.preflight import KubernetesPreflight

        return KubernetesPreflight(api=self.api, namespace=self.namespace).run(images=images, chaos=chaos)
