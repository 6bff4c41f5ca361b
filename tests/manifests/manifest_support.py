"""Helpers of the manifest tests (a unique module name, so test modules can import them whatever else
is collected): workloads and their pod templates, label selection, and a small NetworkPolicy evaluator
that answers "may this pod open a connection to that pod on this port?" the way the API defines it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_hftk8s import manifests

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
#: Every profile deploys these workloads (Deployment or StatefulSet).
PLATFORM = {"backend", "engine", "nginx", "prometheus", "postgres", "redis"}
#: Profiles for clusters on this machine or a laptop: their images are loaded, never pulled.
LOCAL_PROVIDERS = ("local", "scale4", "kind", "orbstack")
ADDON_LABEL = "hftk8s.io/addon"


@functools.cache
def render(profile: str) -> list[dict]:
    """``kubectl kustomize manifests/overlays/<profile>``, once per session (treat as read-only)."""
    return manifests.render(profile)


def by_kind(objects: Iterable[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: Iterable[dict]) -> dict[str, dict]:
    """Deployments and StatefulSets by name (the profiles never give two the same name)."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOAD_KINDS}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def containers(objects: Iterable[dict]) -> list[tuple[str, dict]]:
    """(workload name, container) for every container of every workload."""
    return [(name, c) for name, w in workloads(objects).items() for c in pod_spec(w)["containers"]]


def container(objects: Iterable[dict], workload: str) -> dict:
    return pod_spec(workloads(objects)[workload])["containers"][0]


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a pod's labels; {} selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def selected_workloads(objects: Iterable[dict], selector: Mapping[str, Any] | None) -> list[str]:
    return [name for name, w in workloads(objects).items() if selects(selector, pod_labels(w))]


def replicas(workload: dict) -> int:
    return int(workload["spec"].get("replicas", 1))


def cpu_millis(quantity: str) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if str(quantity).endswith(suffix):
            return float(str(quantity)[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def total_requests(objects: Iterable[dict]) -> tuple[int, float]:
    """(CPU millicores, memory MiB) requested by every replica of every workload."""
    cpu, mem = 0, 0.0
    for w in workloads(objects).values():
        for c in pod_spec(w)["containers"]:
            req = c["resources"]["requests"]
            cpu += replicas(w) * cpu_millis(req["cpu"])
            mem += replicas(w) * mebibytes(req["memory"])
    return cpu, mem


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod of a workload, or the world outside the cluster (no labels)."""

    name: str
    labels: Mapping[str, str] | None  # None: not a pod (a client outside, the API server)
    ports: Mapping[str, int]  # the pod's named container ports


def peers(objects: Iterable[dict]) -> dict[str, Peer]:
    out = {"outside": Peer("outside", None, {})}
    for name, w in workloads(objects).items():
        ports = {p["name"]: p["containerPort"] for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
        out[name] = Peer(name, pod_labels(w), ports)
    return out


def _peer_matches(rule_peers: list[dict] | None, other: Peer) -> bool:
    if not rule_peers:  # no from/to: every source or destination
        return True
    for p in rule_peers:
        if "ipBlock" in p and other.labels is None:
            return True
        if other.labels is None:
            continue
        if "podSelector" in p and "namespaceSelector" not in p and selects(p["podSelector"], other.labels):
            return True  # pods of this namespace
        if p.get("namespaceSelector") == {} and selects(p.get("podSelector"), other.labels):
            return True  # every namespace, this one too
    return False


def _port_matches(rule_ports: list[dict] | None, dst: Peer, port: int) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        number = p.get("port")
        if number is None:
            return True
        resolved = dst.ports.get(number) if isinstance(number, str) else int(number)
        end = p.get("endPort", resolved)
        if resolved is not None and resolved <= port <= end:
            return True
    return False


def allowed(policies: Iterable[dict], src: Peer, dst: Peer, port: int) -> bool:
    """Whether ``src`` may connect to ``dst`` on TCP ``port`` under ``policies`` (one namespace)."""
    policies = list(policies)

    def direction(pod: Peer, kind: str, other: Peer) -> bool:
        if pod.labels is None:
            return True  # the outside is not isolated by this namespace's policies
        isolating = [
            p
            for p in policies
            if kind in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"]["podSelector"], pod.labels)
        ]
        if not isolating:
            return True
        key, peer_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        return any(
            _peer_matches(rule.get(peer_key), other) and _port_matches(rule.get("ports"), dst, port)
            for p in isolating
            for rule in p["spec"].get(key) or []
        )

    return direction(src, "Egress", dst) and direction(dst, "Ingress", src)


def reachability(objects: list[dict]) -> set[tuple[str, str, int]]:
    """Every (source, destination workload, container port) the rendered policies allow."""
    policies = by_kind(objects, "NetworkPolicy").values()
    everyone = peers(objects)
    out = set()
    for dst in everyone.values():
        if dst.labels is None:
            continue
        for port in set(dst.ports.values()):
            for src in everyone.values():
                if src.name != dst.name and allowed(policies, src, dst, port):
                    out.add((src.name, dst.name, port))
    return out
