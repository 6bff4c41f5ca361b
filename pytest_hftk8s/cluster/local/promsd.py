"""Prometheus' Kubernetes service discovery, emulated with file_sd for the local backend.

Its job: translate a prometheus.yml written for a real cluster so that the SAME relabel rules work
here, and keep the target files current. Translations, and nothing else:

- every ``kubernetes_sd_configs`` entry becomes a ``file_sd_configs`` entry whose targets carry the
  ``__meta_kubernetes_*`` labels Prometheus' own discovery would attach (roles pod, endpoints, node;
  ``namespaces.names`` and ``own_namespace`` honoured; ``selectors`` and API-server settings dropped);
- jobs with a ``node`` role scrape the local kubelet stand-in (the metrics exporter) over plain
  HTTP, so their ``scheme``/``tls_config``/``authorization``/``bearer_token*`` settings are dropped.

It must not start Prometheus or read cluster state itself: callers hand it a :class:`Discovery`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_hftk8s.errors import ConfigError

SUPPORTED_ROLES = ("pod", "endpoints", "node")
_AUTH_KEYS = ("tls_config", "authorization", "bearer_token", "bearer_token_file", "basic_auth", "oauth2")


@dataclass(frozen=True)
class SdFile:
    job: str
    role: str
    namespaces: tuple[str, ...]
    path: Path


@dataclass(frozen=True)
class SdContainer:
    name: str
    image: str
    ports: tuple[tuple[str, int, str], ...]  # (name, number, protocol)


@dataclass(frozen=True)
class SdPod:
    name: str
    namespace: str
    ip: str
    ready: bool
    phase: str
    node: str
    controller_kind: str
    controller_name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[SdContainer, ...] = ()


@dataclass(frozen=True)
class SdEndpoint:
    service: str
    namespace: str
    port_name: str
    port: int
    address: str
    ready: bool
    pod: str = ""
    protocol: str = "TCP"
    service_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SdNode:
    name: str
    address: str  # host:port of the kubelet (here: the metrics exporter)


@dataclass(frozen=True)
class Discovery:
    pods: tuple[SdPod, ...] = ()
    endpoints: tuple[SdEndpoint, ...] = ()
    nodes: tuple[SdNode, ...] = ()


def translate(
    config: Mapping[str, Any], *, sd_dir: Path, own_namespace: str = ""
) -> tuple[dict[str, Any], list[SdFile]]:
    """A copy of ``config`` with kubernetes_sd_configs replaced by file_sd_configs, and the files to keep."""
    out = copy.deepcopy(dict(config))
    files: list[SdFile] = []
    for job in out.get("scrape_configs") or []:
        sds = job.pop("kubernetes_sd_configs", None)
        if not sds:
            continue
        file_sds = job.setdefault("file_sd_configs", [])
        for i, sd in enumerate(sds):
            role = sd.get("role")
            if role not in SUPPORTED_ROLES:
                raise ConfigError(
                    f"job {job['job_name']}: kubernetes_sd_configs role {role!r} is not emulated by the local "
                    f"cluster (supported: {', '.join(SUPPORTED_ROLES)}). Use one of those roles."
                )
            namespaces = sd.get("namespaces") or {}
            names = tuple(namespaces.get("names") or ())
            if namespaces.get("own_namespace") and own_namespace:
                names = (*names, own_namespace)
            path = sd_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', job['job_name'])}-{i}.json"
            files.append(SdFile(job["job_name"], role, names, path))
            file_sds.append({"files": [str(path)], "refresh_interval": "5s"})
            if role == "node":
                job["scheme"] = "http"
                for key in _AUTH_KEYS:
                    job.pop(key, None)
    return out, files


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _object_labels(prefix: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in labels.items():
        out[f"{prefix}_label_{_sanitize(key)}"] = value
        out[f"{prefix}_labelpresent_{_sanitize(key)}"] = "true"
    for key, value in annotations.items():
        out[f"{prefix}_annotation_{_sanitize(key)}"] = value
        out[f"{prefix}_annotationpresent_{_sanitize(key)}"] = "true"
    return out


def _pod_labels(pod: SdPod) -> dict[str, str]:
    m = "__meta_kubernetes_"
    return {
        f"{m}namespace": pod.namespace,
        f"{m}pod_name": pod.name,
        f"{m}pod_ip": pod.ip,
        f"{m}pod_ready": str(pod.ready).lower(),
        f"{m}pod_phase": pod.phase,
        f"{m}pod_node_name": pod.node,
        f"{m}pod_host_ip": pod.ip,
        f"{m}pod_uid": f"local-{pod.namespace}-{pod.name}",
        f"{m}pod_controller_kind": pod.controller_kind,
        f"{m}pod_controller_name": pod.controller_name,
        **_object_labels(f"{m}pod", pod.labels, pod.annotations),
    }


def pod_targets(pods: tuple[SdPod, ...], namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """role: pod - one target per container port; a container without ports gets one bare target."""
    groups = []
    for pod in pods:
        if (namespaces and pod.namespace not in namespaces) or not pod.ip:
            continue
        base = _pod_labels(pod)
        for c in pod.containers:
            common = {**base, "__meta_kubernetes_pod_container_name": c.name,
                      "__meta_kubernetes_pod_container_image": c.image,
                      "__meta_kubernetes_pod_container_init": "false"}  # fmt: skip
            if not c.ports:
                groups.append({"targets": [pod.ip], "labels": common})
            for name, number, protocol in c.ports:
                labels = {**common, "__meta_kubernetes_pod_container_port_name": name,
                          "__meta_kubernetes_pod_container_port_number": str(number),
                          "__meta_kubernetes_pod_container_port_protocol": protocol}  # fmt: skip
                groups.append({"targets": [f"{pod.ip}:{number}"], "labels": labels})
    return groups


def endpoint_targets(discovery: Discovery, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    pods = {(p.namespace, p.name): p for p in discovery.pods}
    groups = []
    for ep in discovery.endpoints:
        if namespaces and ep.namespace not in namespaces:
            continue
        labels = {
            "__meta_kubernetes_namespace": ep.namespace,
            "__meta_kubernetes_service_name": ep.service,
            "__meta_kubernetes_endpoints_name": ep.service,
            "__meta_kubernetes_endpoint_port_name": ep.port_name,
            "__meta_kubernetes_endpoint_port_protocol": ep.protocol,
            "__meta_kubernetes_endpoint_ready": str(ep.ready).lower(),
            **_object_labels("__meta_kubernetes_service", ep.service_labels, {}),
        }
        pod = pods.get((ep.namespace, ep.pod))
        if pod is not None:
            labels |= _pod_labels(pod)
            labels |= {"__meta_kubernetes_endpoint_address_target_kind": "Pod",
                       "__meta_kubernetes_endpoint_address_target_name": pod.name}  # fmt: skip
        groups.append({"targets": [f"{ep.address}:{ep.port}"], "labels": labels})
    return groups


def node_targets(nodes: tuple[SdNode, ...]) -> list[dict[str, Any]]:
    return [
        {
            "targets": [n.address],
            "labels": {
                "__meta_kubernetes_node_name": n.name,
                "__meta_kubernetes_node_address_InternalIP": n.address.rsplit(":", 1)[0],
                "__meta_kubernetes_node_label_kubernetes_io_hostname": n.name,
                "__meta_kubernetes_node_labelpresent_kubernetes_io_hostname": "true",
            },
        }
        for n in nodes
    ]


def write(files: list[SdFile], discovery: Discovery) -> None:
    """Rewrite every target file atomically (Prometheus watches them and reloads on rename)."""
    for f in files:
        if f.role == "pod":
            groups = pod_targets(discovery.pods, f.namespaces)
        elif f.role == "endpoints":
            groups = endpoint_targets(discovery, f.namespaces)
        else:
            groups = node_targets(discovery.nodes)
        f.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=1, sort_keys=True))
        os.replace(tmp, f.path)
