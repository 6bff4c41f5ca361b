"""What Services and Prometheus discovery see of the local cluster's pods.

Its job: derive, from pods and Service specs, the endpoints of each Service (EndpointSlice-like rows),
the cluster hosts-file content (:mod:`.hosts`) and the ``__meta_kubernetes_*`` discovery input for
Prometheus (:mod:`.promsd`), including the kube-state-metrics Service and the node (kubelet/cAdvisor)
that the metrics exporter stands in for. Pure functions over the given state: no I/O, no locking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_hftk8s.cluster.local import model, promsd
from pytest_hftk8s.cluster.local.hosts import render_hosts
from pytest_hftk8s.cluster.local.pod import Pod
from pytest_hftk8s.errors import ConfigError

NODE_NAME = "hftk8s-local"


@dataclass(frozen=True)
class EndpointRow:
    pod: str
    address: str
    port: int
    ready: bool
    port_name: str


def service_pods(svc: model.ServiceSpec, pods: Sequence[Pod]) -> list[Pod]:
    """The pods a Service's selector matches (none for a selector-less Service)."""
    return [
        p
        for p in pods
        if svc.selector and all(p.template.labels.get(k) == v for k, v in svc.selector.items())
    ]


def endpoint_rows(svc: model.ServiceSpec, pods: Sequence[Pod]) -> list[EndpointRow]:
    """One row per (selected pod, Service port), with the target port resolved by name or number."""
    rows = []
    for pod in service_pods(svc, pods):
        for sp in svc.ports:
            number = int(sp.target_port) if str(sp.target_port).isdigit() else None
            for c in [] if number is not None else pod.containers:
                try:
                    number = c.spec.port_number(sp.target_port)
                    break
                except ConfigError:
                    continue
            if number is not None:
                rows.append(EndpointRow(pod.name, pod.ip, number, pod.ready, sp.name))
    return rows


def hosts_content(pods: Sequence[Pod], services: Sequence[model.ServiceSpec]) -> str:
    """The cluster hosts file: ready endpoints per Service (ClusterIP Services fall back to all pods)."""
    entries = []
    for p in pods:
        subdomain = p.template.service_name
        aliases = (
            [f"{p.name}.{subdomain}.{p.template.namespace}.svc.cluster.local", f"{p.name}.{subdomain}"]
            if subdomain
            else []
        )
        entries.append((p.name, p.ip, aliases))
    addresses = {}
    for svc in services:
        members = service_pods(svc, pods)
        ready = [p.ip for p in members if p.ready or svc.publish_not_ready]
        addresses[(svc.name, svc.namespace)] = ready or ([] if svc.headless else [p.ip for p in members])
    return render_hosts(pods=entries, services=addresses)


def prometheus_discovery(
    pods: Sequence[Pod], services: Sequence[model.ServiceSpec], *, exporter_address: str
) -> promsd.Discovery:
    """Pods, Service endpoints (plus kube-system/kube-state-metrics) and the node, as Kubernetes SD sees them."""
    sd_pods = tuple(
        promsd.SdPod(
            name=p.name, namespace=p.template.namespace, ip=p.ip, ready=p.ready, phase=p.phase, node=NODE_NAME,
            controller_kind="StatefulSet" if p.template.kind == "StatefulSet" else "ReplicaSet",
            controller_name=p.template.workload if p.template.kind == "StatefulSet" else f"{p.template.workload}-{p.template.template_hash}",
            labels=p.template.labels, annotations=p.template.annotations,
            containers=tuple(
                promsd.SdContainer(c.spec.name, c.spec.image, tuple((x.name, x.port, x.protocol) for x in c.spec.ports))
                for c in p.containers
            ),
        )
        for p in pods
    )  # fmt: skip
    endpoints = [
        promsd.SdEndpoint(svc.name, svc.namespace, e.port_name, e.port, e.address, e.ready, pod=e.pod, service_labels=svc.labels)
        for svc in services
        for e in endpoint_rows(svc, pods)
    ]  # fmt: skip
    host, port = exporter_address.rsplit(":", 1)
    endpoints.append(
        promsd.SdEndpoint("kube-state-metrics", "kube-system", "http-metrics", int(port), host, True)
    )
    return promsd.Discovery(
        pods=sd_pods, endpoints=tuple(endpoints), nodes=(promsd.SdNode(NODE_NAME, exporter_address),)
    )
