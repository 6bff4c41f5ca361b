"""The kubernetes backend: the :class:`~pytest_hftk8s.cluster.base.Cluster` contract on a kube context.

Deploys by server-side apply of the rendered objects, labelled as the plugin's (:mod:`.ownership`:
claim templates carry the run id, cluster-scoped names the namespace); reads workloads, pods,
endpoints and events as plain JSON mapped onto the base dataclasses; resolves names inside a pod by
exec; reaches Services by a LoadBalancer address, a node port or a loopback port-forward
(:mod:`.access`, ``--hft-access``); tears down only what carries its labels, and sweeps what earlier
runs left (:mod:`.sweep`). Every request goes through :class:`KubeApi` (the one place errors are
translated). It must not decide readiness (that is the gate's job) nor know about chaos or SLOs.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
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
from pytest_hftk8s.cluster.kubernetes.access import expected_for, plan_access, reachable
from pytest_hftk8s.cluster.kubernetes.api import DEFAULT_REQUEST_TIMEOUT, ApiNotFound, KubeApi
from pytest_hftk8s.cluster.kubernetes.kinds import TEARDOWN_ORDER, Kind, KindTable
from pytest_hftk8s.cluster.kubernetes.ownership import (
    CREATED_LABEL,
    MANAGED_BY,
    RUN_ID_LABEL,
    cluster_scoped_name,
    force_finalizers_command,
    label_claim_templates,
    owned_by,
    ownership_labels,
    rename_role_ref,
)
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
        run_id: str | None = None,
        progress: Callable[[str], None] | None = None,
        probe_timeout: float = 1.0,
        finalizer_timeout: float = 10.0,
    ) -> None:
        self.name = context
        self.access = access  # how service_address reaches a Service (see --hft-access)
        self.namespace = namespace
        #: Labels the volume claims this session's StatefulSets create (the sweep keeps this run's).
        self.run_id = run_id or secrets.token_hex(4)
        self.progress = progress or (lambda _message: None)
        self.probe_timeout = probe_timeout  # one TCP connect to a LoadBalancer / NodePort address
        self.finalizer_timeout = finalizer_timeout  # how long the sweep waits for what it deleted
        self.field_manager = field_manager
        self.delete_timeout = delete_timeout
        self.exec_timeout = exec_timeout
        self.api = KubeApi(context=context, kubeconfig=kubeconfig, request_timeout=request_timeout)
        self._kinds = KindTable(discover=lambda path: self.api.request("GET", path, what=f"discover {path}"))
        self._applied_kinds: list[Kind] = []  # kinds beyond TEARDOWN_ORDER (e.g. discovered CRDs)
        self._owns_namespace = False
        self._overlay_namespace = namespace  # the namespace the rendered overlay names (moved to ours)
        self._forwards: dict[tuple[str, int], LocalPortForward] = {}
        self._direct: dict[tuple[str, str], ServiceAddress] = {}  # service, port -> LB / NodePort address
        self._forward_cpu_closed = 0.0
        self._fallbacks_noted: set[str] = set()
        self._renamed: set[str] = set()  # cluster-scoped names of this apply (before the suffix)

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
        self._renamed = {
            str((o.get("metadata") or {}).get("name"))
            for o in ordered
            if o.get("kind") != "Namespace"
            and not self._kinds.resolve(str(o.get("apiVersion", "")), str(o.get("kind", ""))).namespaced
        }
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
        elif not kind.namespaced:  # one cluster, many sessions: the name says whose it is
            name = meta["name"] = cluster_scoped_name(name, self.namespace)
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
            body = rename_role_ref(body, renamed=self._renamed, namespace=self.namespace)
        if kind.kind == "StatefulSet":
            body = label_claim_templates(
                body, labels={**self._labels, RUN_ID_LABEL: self.run_id}, existing=self._read(kind, name)
            )
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
        return ownership_labels(self.namespace)

    def _read(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.api.request(
                    "GET", kind.object_path(self.namespace, name), what=f"read {kind.kind}/{name}"
                )
            )
        except ApiNotFound:
            return None

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
                if owned_by(item, self.namespace):  # never delete others' objects
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
                raise ClusterError(
                    f"teardown incomplete after {self.delete_timeout:.0f}s: expected every applied object "
                    f"gone, still present: {'; '.join(self._stuck(k, n) for k, n in remaining)}. Find out "
                    f"what holds them (`kubectl -n {self.namespace} describe <kind> <name>`) before forcing."
                )
            time.sleep(0.2)

    def _stuck(self, kind: Kind, name: str) -> str:
        obj = self._read(kind, name) or {}
        finalizers = (obj.get("metadata") or {}).get("finalizers") or []
        if not finalizers:
            return f"{kind.kind}/{name}"
        command = force_finalizers_command(
            namespace=self.namespace if kind.namespaced else None, resource=kind.plural, name=name
        )
        return f"{kind.kind}/{name} (finalizers {finalizers}; release with `{command}`)"

    def sweep(self, *, keep_run_id: str | None) -> list[str]:
        """Delete what earlier runs left in this namespace: the plugin's chaos objects and volume claims
        of any run but ``keep_run_id`` (``None``: of every run). Returns ``Kind/name`` of each; one
        stuck on a finalizer past ``finalizer_timeout`` is listed with the command that releases it."""
        from pytest_hftk8s.cluster.kubernetes.sweep import sweep_namespace

        return sweep_namespace(
            self.api,
            namespace=self.namespace,
            keep_run_id=keep_run_id,
            finalizer_timeout=self.finalizer_timeout,
        )

    def _exists(self, kind: Kind, name: str) -> bool:
        return self._read(kind, name) is not None

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
        """Where this process reaches ``service:port``, by ``access`` (see :mod:`.access`).

        ``auto``: the Service's LoadBalancer address, else its NodePort, whichever accepts a TCP
        connection; else a loopback port-forward to a ready pod (reused per pod port), said once
        through ``progress`` with the reasons. An explicit mode that is impossible is an error.
        """
        key = (service, str(port))
        if key in self._direct:
            return self._direct[key]
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
        notes: list[str] = []
        if self.access != "port-forward":
            plan = plan_access(
                self.access, service=svc, spec_port=spec_port, context=self.name, nodes=self._nodes
            )
            notes = list(plan.notes)
            for candidate in plan.candidates:
                why = reachable(candidate.host, candidate.port, timeout=self.probe_timeout)
                if not why:
                    address = ServiceAddress(
                        host=candidate.host,
                        port=candidate.port,
                        extra={"source": candidate.source},
                        via=candidate.via,
                    )
                    self._direct[key] = address
                    return address
                notes.append(
                    f"{candidate.via} {candidate.host}:{candidate.port} ({candidate.source}) did not connect: {why}"
                )
            if self.access != "auto":
                raise ClusterError(
                    f"--hft-access={self.access}: cannot reach service {service} port {port} that way. Expected "
                    f"{expected_for(self.access)}; seen: {'; '.join(notes) or 'no candidate address'}. Use the "
                    f"overlay of your provider (--hft-profile=orbstack or kind), or --hft-access=auto."
                )
        address = self._port_forward(service, spec_port)
        why = "; ".join(notes) or "--hft-access=port-forward"
        if self.access == "auto" and service not in self._fallbacks_noted:
            self._fallbacks_noted.add(service)
            self.progress(
                f"service {service}: no direct path ({why}); using an in-process port-forward to "
                f"{address.extra['pod']} (its threads share this process's CPU with the load generator)"
            )
        return ServiceAddress(
            host=address.host, port=address.port, extra={**address.extra, "why": why}, via="port-forward"
        )

    def _nodes(self) -> list[Mapping[str, Any]]:
        return list(self.api.request("GET", "/api/v1/nodes", what="list nodes").get("items") or [])

    def _port_forward(self, service: str, spec_port: Mapping[str, Any]) -> ServiceAddress:
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
                open_stream=lambda: self.api.open_websocket(
                    f"/api/v1/namespaces/{self.namespace}/pods/{pod}/portforward",
                    query=[("ports", str(remote))],
                    what=f"port-forward to {pod}:{remote}",
                ),
                remote_port=remote,
                name=f"{pod}:{remote}",
            )
        fwd = self._forwards[key]
        return ServiceAddress(
            host=fwd.host, port=fwd.port, extra={"pod": pod, "remote_port": str(remote)}, via="port-forward"
        )

    def forwarding_cpu_seconds(self) -> float:
        """CPU seconds this process spent so far forwarding (every port-forward's threads, closed ones
        included): the load engine adds what it grows by during a run to its own CPU."""
        return self._forward_cpu_closed + sum(f.cpu_seconds for f in list(self._forwards.values()))

    def _slice_port(self, service: str, name: str) -> int | None:
        slices = self._list(
            "discovery.k8s.io/v1", "EndpointSlice", label_selector=f"kubernetes.io/service-name={service}"
        )
        for eps in slices:
            for p in eps.get("ports") or []:
                if (p.get("name") or "") == name and p.get("port") is not None:
                    return int(p["port"])
        return None

    def close(self) -> None:
        for fwd in self._forwards.values():
            fwd.close()
            self._forward_cpu_closed += fwd.cpu_seconds
        self._forwards.clear()
        self._direct.clear()
        self.api.close()

    def chaos_driver(
        self, *, run_id: str, allowed_contexts: Sequence[str], echo: Callable[[str], None]
    ) -> Any:
        """Chaos Mesh custom resources in this namespace; refuses contexts not in ``allowed_contexts``."""
        from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos

        return KubernetesChaos.for_cluster(self, run_id=run_id, allowed_contexts=allowed_contexts, echo=echo)

    def secret_value(self, name: str, key: str) -> str:
        """One key of a Secret in the namespace (the database password of ``--hft-db-secret``)."""
        secret = self.api.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/secrets/{name}", what=f"read secret {name}"
        )
        data = secret.get("data") or {}
        if key not in data:
            raise ClusterError(
                f"expected key {key!r} in Secret {self.namespace}/{name}; it has {sorted(data)}. Create it "
                f"with `kubectl -n {self.namespace} create secret generic {name} --from-literal={key}=...`"
            )
        return base64.b64decode(data[key]).decode()

    def share(self) -> Mapping[str, str]:
        """A kube context is shared state: other processes need only its name and the namespace."""
        return {"context": self.name, "namespace": self.namespace}

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        """This context's prerequisites, read-only and bounded (see :mod:`.preflight`)."""
        from pytest_hftk8s.cluster.kubernetes.preflight import KubernetesPreflight

        return KubernetesPreflight(api=self.api, namespace=self.namespace).run(images=images, chaos=chaos)
