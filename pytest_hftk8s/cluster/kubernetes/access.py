"""How the test process reaches a Service: a LoadBalancer address, a NodePort, or a port-forward.

``--hft-access`` picks the path (``auto`` | ``loadbalancer`` | ``nodeport`` | ``port-forward``).
:func:`plan_access` lists, from the Service (and, for a NodePort, the nodes), the direct addresses
worth trying, best first, and says why each other path is unavailable:

* **loadbalancer** - a ``type: LoadBalancer`` Service with ``status.loadBalancer.ingress`` (OrbStack
  exposes it on the host; a cloud or MetalLB load balancer works the same way), at the Service port;
* **nodeport** - a NodePort (or LoadBalancer) Service's ``nodePort`` on 127.0.0.1 for providers
  whose cluster config maps node ports onto the host (kind's ``extraPortMappings``, k3d's ``-p``),
  then on each node's ExternalIP and InternalIP.

:func:`reachable` tells whether a TCP connection to one of them opens (bounded). The in-process
port-forward stays the fallback: it works everywhere, but its threads share the generator's process.
This module decides; it neither talks to the API server nor keeps state.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_hftk8s.errors import ClusterError

__all__ = ["ACCESS_MODES", "AccessPlan", "Candidate", "expected_for", "plan_access", "reachable"]

ACCESS_MODES = ("auto", "loadbalancer", "nodeport", "port-forward")
#: Contexts whose provider publishes node ports on the host's loopback when its cluster config says
#: so: kind (``extraPortMappings``, the project's ``kind-cluster.yaml``) and k3d (``-p 30080:30080@server:0``).
LOOPBACK_NODEPORT_PREFIXES = ("kind-", "k3d-")
_NODE_ADDRESS_TYPES = ("ExternalIP", "InternalIP")


@dataclass(frozen=True)
class Candidate:
    """One direct address to try: ``via`` is "loadbalancer" or "nodeport"; ``source`` says where from."""

    via: str
    host: str
    port: int
    source: str


@dataclass
class AccessPlan:
    candidates: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a path is not available


def _load_balancer(service: Mapping[str, Any], spec_port: Mapping[str, Any], plan: AccessPlan) -> None:
    name = (service.get("metadata") or {}).get("name", "?")
    kind = (service.get("spec") or {}).get("type") or "ClusterIP"
    if kind != "LoadBalancer":
        plan.notes.append(f"service {name} is type {kind}, not LoadBalancer")
        return
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    hosts = [str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname")]
    if not hosts:
        plan.notes.append(
            f"LoadBalancer service {name} has no status.loadBalancer.ingress yet (no load-balancer "
            f"controller gave it an address)"
        )
    for host in hosts:
        plan.candidates.append(
            Candidate("loadbalancer", host, int(spec_port["port"]), "status.loadBalancer.ingress")
        )


def _node_port(
    service: Mapping[str, Any],
    spec_port: Mapping[str, Any],
    plan: AccessPlan,
    *,
    context: str,
    nodes: Callable[[], list[Mapping[str, Any]]],
) -> None:
    name = (service.get("metadata") or {}).get("name", "?")
    kind = (service.get("spec") or {}).get("type") or "ClusterIP"
    node_port = spec_port.get("nodePort")
    if kind not in ("NodePort", "LoadBalancer") or not node_port:
        plan.notes.append(
            f"service {name} is type {kind} without a nodePort for port {spec_port.get('port')}"
        )
        return
    node_port = int(node_port)
    if context.startswith(LOOPBACK_NODEPORT_PREFIXES):
        provider = context.split("-", 1)[0]
        mapping = "extraPortMappings" if provider == "kind" else "port mapping"
        plan.candidates.append(
            Candidate("nodeport", "127.0.0.1", node_port, f"{provider} {mapping} on 127.0.0.1")
        )
    try:
        listed = nodes()
    except ClusterError as e:
        plan.notes.append(f"cannot list nodes to find their addresses: {e}")
        return
    for node in listed:
        node_name = (node.get("metadata") or {}).get("name", "?")
        addresses = (node.get("status") or {}).get("addresses") or []
        for address_type in _NODE_ADDRESS_TYPES:
            for a in addresses:
                if a.get("type") == address_type and a.get("address"):
                    plan.candidates.append(
                        Candidate(
                            "nodeport", str(a["address"]), node_port, f"node {node_name} {address_type}"
                        )
                    )


def plan_access(
    mode: str,
    *,
    service: Mapping[str, Any],
    spec_port: Mapping[str, Any],
    context: str,
    nodes: Callable[[], list[Mapping[str, Any]]],
) -> AccessPlan:
    """The direct addresses worth trying for ``mode``, best first, and why the others are out.

    ``nodes`` lists the Node objects; it is called only when a node port exists.
    """
    if mode not in ACCESS_MODES:
        raise ClusterError(f"access mode: expected one of {', '.join(ACCESS_MODES)}, got {mode!r}")
    plan = AccessPlan()
    if mode in ("auto", "loadbalancer"):
        _load_balancer(service, spec_port, plan)
    if mode in ("auto", "nodeport"):
        _node_port(service, spec_port, plan, context=context, nodes=nodes)
    return plan


def reachable(host: str, port: int, *, timeout: float) -> str:
    """``""`` when a TCP connection to ``host:port`` opens within ``timeout`` s, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except OSError as e:
        return f"{type(e).__name__}: {e}"


def expected_for(mode: str) -> str:
    """What an explicit ``--hft-access`` needs, for the error message when it is impossible."""
    if mode == "loadbalancer":
        return (
            "a type LoadBalancer Service with a status.loadBalancer.ingress address this machine can "
            "connect to (OrbStack does that; so do cloud load balancers and MetalLB)"
        )
    return (
        "a NodePort Service whose node port this machine can connect to: kind with the project's "
        "kind-cluster.yaml (extraPortMappings on 127.0.0.1), or a routable node address"
    )
