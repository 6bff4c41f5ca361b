"""The readiness gate over the kubernetes backend, against the emulator's cluster behaviour.

The local overlay is applied through :class:`KubernetesCluster`; the emulated controllers and
kubelet then run its pods, or leave them stuck the way a cluster does (ImagePullBackOff with the
kubelet's events, an Unschedulable pod with the scheduler's, a Secret that is not there, a crash
loop). The gate must say so within seconds, with the reason and the pod's events, instead of
waiting out its timeout; and on a healthy platform it must pass, resolving every Service's short
name and FQDN from inside a pod and warming up through the real access path.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.errors import GateTimeout
from pytest_hftk8s.gate import GateConfig, ReadinessGate
from pytest_hftk8s.manifests import render


@pytest.fixture
def deploy(emulator: Any, kubeconfig: str) -> Iterator[Any]:
    """``deploy(faults)``: apply the local overlay with ``faults`` (workload -> reason) in force."""
    clusters: list[KubernetesCluster] = []

    def run(faults: dict[str, str]) -> KubernetesCluster:
        emulator.cluster.faults.update(faults)
        emulator.controllers_on = True
        cluster = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig)
        clusters.append(cluster)
        cluster.apply(render("local"))
        return cluster

    yield run
    for cluster in clusters:
        cluster.close()


def _gate(cluster: KubernetesCluster, **config: Any) -> ReadinessGate:
    return ReadinessGate(cluster, config=GateConfig(**{"timeout_s": 120.0, "poll_s": 0.1, **config}))


def test_image_pull_backoff_fails_within_seconds_with_the_kubelets_events(deploy: Any) -> None:
    cluster = deploy({"backend": "ImagePullBackOff"})
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        _gate(cluster).wait()  # the default grace, not the 120 s timeout
    elapsed = time.monotonic() - started
    assert 5.0 <= elapsed < 10.0, elapsed
    text = str(info.value)
    assert "readiness gate 'workloads' failed fast" in text
    assert "container backend is waiting with ImagePullBackOff" in text
    assert "seen: not available: Deployment/backend 0/1" in text
    assert 'Warning Failed: Failed to pull image "hftk8s/backend:0.1.0": failed to pull and unpack' in text
    assert 'Normal BackOff: Back-off pulling image "hftk8s/backend:0.1.0"' in text
    assert "python -m pytest_hftk8s images --provider" in text
    assert "events of pod engine" not in text  # only the stuck pod's events


@pytest.mark.parametrize(
    ("workload", "fault", "event"),
    [
        ("engine", "Unschedulable", "Warning FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu."),
        ("nginx", "CreateContainerConfigError", 'Warning Failed: Error: secret "hft-db" not found'),
        ("engine", "ErrImagePull", "Warning Failed: Error: ErrImagePull"),
    ],
)
def test_other_reasons_that_never_heal(deploy: Any, workload: str, fault: str, event: str) -> None:
    cluster = deploy({workload: fault})
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        _gate(cluster, fail_fast_grace_s=1.0).wait()
    assert time.monotonic() - started < 5.0
    text = str(info.value)
    assert f"is waiting with {fault}" in text
    assert event in text


def test_a_crash_loop_fails_after_its_grace_with_the_log_tail(deploy: Any, emulator: Any) -> None:
    cluster = deploy({"engine": "CrashLoopBackOff"})
    pod = next(p.name for p in _wait_pods(cluster) if p.workload == "engine")
    emulator.cluster.logs[pod] = "starting engine\nConnectionRefusedError: [Errno 111] redis:6379"
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        _gate(cluster, crashloop_grace_s=1.5).wait()
    assert 1.5 <= time.monotonic() - started < 6.0
    text = str(info.value)
    assert f"pod {pod} container engine is waiting with CrashLoopBackOff" in text
    assert f"Warning BackOff: Back-off restarting failed container engine in pod {pod}_hft(" in text
    assert "| ConnectionRefusedError: [Errno 111] redis:6379" in text
    assert "the container keeps exiting" in text


def _wait_pods(cluster: KubernetesCluster) -> list[Any]:
    deadline = time.monotonic() + 10
    while len(pods := cluster.pods()) < 6:
        assert time.monotonic() < deadline, "the emulated controllers made no pods"
        time.sleep(0.05)
    return pods


class _Registrations(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        payload = json.dumps({"user_id": 1, "api_key": "k"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nginx_behind_the_forward(emulator: Any) -> Iterator[http.server.ThreadingHTTPServer]:
    """What the emulated nginx pod's port answers through a port-forward: a real HTTP server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registrations)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    emulator.portforward_to = server.server_address[:2]
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_healthy_platform_passes_every_gate(
    deploy: Any, emulator: Any, nginx_behind_the_forward: Any
) -> None:
    cluster = deploy({})
    notes: list[str] = []
    result = ReadinessGate(
        cluster,
        config=GateConfig(timeout_s=30, poll_s=0.05, dns_streak=2, warmup_streak=3),
        progress=notes.append,
    ).wait()
    assert list(result.durations) == ["workloads", "endpoints", "dns", "warmup"]
    resolved = [
        r.url.query.getall("command")[-1] for r in emulator.requests() if r.url.path.endswith("/exec")
    ]
    services = ["backend", "engine", "nginx", "postgres", "prometheus", "redis"]
    assert sorted(set(resolved)) == sorted(
        services + [f"{s}.hft.svc.cluster.local" for s in services]
    )  # short names and FQDNs, from inside a backend pod
    (exec_pod,) = {r.url.path.split("/")[-2] for r in emulator.requests() if r.url.path.endswith("/exec")}
    assert exec_pod.startswith("backend-")
    forwards = [r for r in emulator.requests() if r.url.path.endswith("/portforward")]
    assert forwards
    assert all("/pods/nginx-" in r.url.path for r in forwards)  # warm-up went to nginx
    assert "gate warmup: passed" in " ".join(notes)
