"""How the test process reaches a Service on a kube context (``--hft-access``), against the emulator.

Each direct address is made to really connect: the Service's LoadBalancer ingress or node port points
at a loopback listener the test starts, so the backend's TCP probe and the test's own connection
both reach it. The fallback is the in-process port-forward, whose threads' CPU is measured and
counted in the load generator's validity judgement.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import kmock
import pytest

from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.load.run import LoadRun


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"hello from the service")


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback TCP port that answers: what a LoadBalancer or node port would lead to."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # released again: nothing listens there


def _seed_service(
    emulator_thread: Any,
    *,
    kind: str,
    port: int = 80,
    node_port: int | None = None,
    ingress: list[dict[str, str]] | None = None,
) -> None:
    spec_port: dict[str, Any] = {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    if node_port is not None:
        spec_port["nodePort"] = node_port
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "nginx", "namespace": "hft"},
        "spec": {"type": kind, "clusterIP": "10.96.0.80", "ports": [spec_port], "selector": {"app": "nginx"}},
    }
    if ingress is not None:
        service["status"] = {"loadBalancer": {"ingress": ingress}}
    endpoints = {
        "metadata": {"name": "nginx-abcde", "labels": {"kubernetes.io/service-name": "nginx"}},
        "endpoints": [
            {
                "addresses": ["10.244.0.7"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": "nginx-7d9f-x1"},
            }
        ],
        "ports": [{"name": "http", "port": 8080}],
    }

    def seed() -> None:
        emulator_thread.emulator.objects["v1/services", "hft", "nginx"] = service
        emulator_thread.emulator.objects["discovery.k8s.io/v1/endpointslices", "hft", "nginx-abcde"] = (
            endpoints
        )

    emulator_thread.call(seed)


def _node_address(emulator_thread: Any, address: str) -> None:
    node = emulator_thread.emulator.objects["v1/nodes", None, "hft-control-plane"]
    emulator_thread.call(
        lambda: node.patch({"status": {"addresses": [{"type": "InternalIP", "address": address}]}})
    )


@pytest.fixture
def make(kubeconfig_for: Any) -> Iterator[Any]:
    made: list[KubernetesCluster] = []

    def cluster(*, context: str = "emulated", **kwargs: Any) -> KubernetesCluster:
        kwargs.setdefault("probe_timeout", 0.5)
        made.append(
            KubernetesCluster(context=context, namespace="hft", kubeconfig=kubeconfig_for(context), **kwargs)
        )
        return made[-1]

    yield cluster
    for c in made:
        c.close()


def _greeting(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as conn:
        return conn.recv(100)


def test_a_load_balancer_with_an_ingress_address(
    make: Any, emulator: Any, emulator_thread: Any, listener: int
) -> None:
    _seed_service(
        emulator_thread, kind="LoadBalancer", port=listener, node_port=30080, ingress=[{"ip": "127.0.0.1"}]
    )
    cluster = make()
    address = cluster.service_address("nginx", "http")
    assert (address.via, address.host, address.port) == ("loadbalancer", "127.0.0.1", listener)
    assert address.extra == {"source": "status.loadBalancer.ingress"}
    assert _greeting(address.host, address.port) == b"hello from the service"
    reads = len(emulator.requests())
    assert cluster.service_address("nginx", "http") == address  # remembered: no new request
    assert len(emulator.requests()) == reads
    assert not [r for r in emulator.requests() if r.url.path.endswith("/portforward")]


def test_a_node_port_on_loopback_for_a_kind_context(make: Any, emulator_thread: Any, listener: int) -> None:
    _seed_service(emulator_thread, kind="NodePort", node_port=listener)
    address = make(context="kind-hft").service_address("nginx", 80)
    assert (address.via, address.host, address.port) == ("nodeport", "127.0.0.1", listener)
    assert address.extra == {"source": "kind extraPortMappings on 127.0.0.1"}
    assert _greeting(address.host, address.port) == b"hello from the service"


def test_a_node_port_through_a_node_address_after_an_unreachable_load_balancer(
    make: Any, emulator_thread: Any, listener: int
) -> None:
    # the LoadBalancer's address does not answer (a cloud LB behind a firewall): the node port does
    _seed_service(
        emulator_thread,
        kind="LoadBalancer",
        port=_closed_port(),
        node_port=listener,
        ingress=[{"ip": "127.0.0.1"}],
    )
    _node_address(emulator_thread, "127.0.0.1")
    address = make().service_address("nginx", "http")
    assert (address.via, address.host, address.port) == ("nodeport", "127.0.0.1", listener)
    assert address.extra == {"source": "node hft-control-plane InternalIP"}
    assert _greeting(address.host, address.port) == b"hello from the service"


def test_auto_falls_back_to_a_port_forward_and_says_why(
    make: Any, emulator: Any, emulator_thread: Any
) -> None:
    _seed_service(emulator_thread, kind="ClusterIP")
    notes: list[str] = []
    cluster = make(progress=notes.append)
    address = cluster.service_address("nginx", 80)
    assert address.via == "port-forward"
    assert address.host == "127.0.0.1"
    assert address.extra["pod"] == "nginx-7d9f-x1"
    assert address.extra["remote_port"] == "8080"
    (note,) = notes
    assert note.startswith(
        "service nginx: no direct path (service nginx is type ClusterIP, not LoadBalancer;"
    )
    assert "in-process port-forward to nginx-7d9f-x1" in note
    cluster.service_address("nginx", 80)
    assert len(notes) == 1  # said once


def test_an_explicit_load_balancer_that_does_not_exist_is_an_error(make: Any, emulator_thread: Any) -> None:
    _seed_service(emulator_thread, kind="ClusterIP")
    with pytest.raises(ClusterError) as info:
        make(access="loadbalancer").service_address("nginx", 80)
    text = str(info.value)
    assert "--hft-access=loadbalancer: cannot reach service nginx port 80 that way" in text
    assert "Expected a type LoadBalancer Service with a status.loadBalancer.ingress address" in text
    assert "seen: service nginx is type ClusterIP, not LoadBalancer" in text


def test_an_explicit_node_port_nothing_answers_on_is_an_error(
    make: Any, emulator: Any, emulator_thread: Any
) -> None:
    port = _closed_port()
    _seed_service(emulator_thread, kind="NodePort", node_port=port)
    _node_address(emulator_thread, "127.0.0.1")
    with pytest.raises(ClusterError) as info:
        make(access="nodeport").service_address("nginx", 80)
    text = str(info.value)
    assert f"nodeport 127.0.0.1:{port} (node hft-control-plane InternalIP) did not connect" in text
    assert "kind with the project's kind-cluster.yaml (extraPortMappings on 127.0.0.1)" in text
    assert not [r for r in emulator.requests() if r.url.path.endswith("/portforward")]  # no silent fallback
    emulator["get /api/v1/nodes"] << kmock.KubernetesError(
        status=403, reason="Forbidden", message="nodes is forbidden"
    )
    with pytest.raises(ClusterError, match=r"cannot list nodes to find their addresses.*access denied"):
        make(access="nodeport").service_address("nginx", 80)


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_the_port_forwards_cpu_counts_in_the_load_judgement(
    make: Any, emulator: Any, emulator_thread: Any
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        emulator.portforward_to = server.server_address[:2]  # the pod's port: a real HTTP server
        _seed_service(emulator_thread, kind="ClusterIP")
        cluster = make(access="port-forward")
        address = cluster.service_address("nginx", 80)
        assert address.via == "port-forward"
        before = cluster.forwarding_cpu_seconds()
        raw = f"GET /ok HTTP/1.1\r\nHost: {address.host}\r\n\r\n".encode()
        run = LoadRun(
            base_url=(address.host, address.port),
            mode="open",
            rate=200,
            duration=1.5,
            connections=4,
            make_request=lambda _seq: raw,
            extra_cpu=cluster.forwarding_cpu_seconds,
        )
        with run:
            pass
        summary = run.summary
        assert summary is not None
        assert summary.ok == summary.scheduled == 300
        forwarding = summary.cpu["forwarding_seconds"]
        assert 0.0 < forwarding <= cluster.forwarding_cpu_seconds() - before
        wall = run._result.wall_s if run._result else 0.0
        assert summary.cpu["utilization"] == pytest.approx((summary.cpu["seconds"] + forwarding) / wall)
        cluster.close()
        assert cluster.forwarding_cpu_seconds() >= forwarding  # closed forwards keep their total
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
