"""Every overlay, applied through the kubernetes backend to the emulator: what a session leaves on a
shared cluster says whose it is, and the kind overlay's NodePort is what a kind context reaches."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any

import pytest

from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.manifests import profiles, render


@pytest.mark.parametrize("profile", profiles())
def test_every_overlay_applies_with_namespaced_cluster_objects_and_labelled_claims(
    profile: str, emulator: Any, kubeconfig: str, body_of: Any
) -> None:
    objects = render(profile)
    cluster = KubernetesCluster(context="emulated", namespace="hft-x", kubeconfig=kubeconfig, run_id="r1")
    try:
        cluster.apply(objects)
    finally:
        cluster.close()
    sent = [body_of(r) for r in emulator.requests() if r.method == "PATCH"]
    cluster_roles = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"}
    for body in sent:
        meta = body["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "pytest-hftk8s"
        assert meta["labels"]["hftk8s.io/namespace"] == "hft-x"
        if body["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert meta["name"].endswith("-hft-x")
        if body["kind"] == "ClusterRoleBinding" and body["roleRef"]["kind"] == "ClusterRole":
            ours = body["roleRef"]["name"].removesuffix("-hft-x") in cluster_roles
            assert ours == body["roleRef"]["name"].endswith("-hft-x")
        for template in (body.get("spec") or {}).get("volumeClaimTemplates") or []:
            assert template["metadata"]["labels"]["hftk8s.io/run-id"] == "r1"
    assert any(b["kind"] == "StatefulSet" and b["spec"].get("volumeClaimTemplates") for b in sent)


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"nginx on the kind node port")


def test_the_kind_overlay_is_reached_by_its_node_port_on_loopback(
    emulator: Any, emulator_thread: Any, kubeconfig_for: Any
) -> None:
    try:  # what kind's extraPortMappings (hostPort 30080 on 127.0.0.1) would listen on
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 30080), _Hello)
    except OSError as e:
        pytest.skip(f"127.0.0.1:30080 is taken on this machine ({e})")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    emulator.controllers_on = True
    cluster = KubernetesCluster(context="kind-hft", namespace="hft", kubeconfig=kubeconfig_for("kind-hft"))
    try:
        cluster.apply(render("kind"))
        address = cluster.service_address("nginx", 80)
        assert (address.via, address.host, address.port) == ("nodeport", "127.0.0.1", 30080)
        with socket.create_connection((address.host, address.port), timeout=5) as conn:
            assert conn.recv(100) == b"nginx on the kind node port"
    finally:
        cluster.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
