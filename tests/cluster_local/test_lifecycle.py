"""The local cluster with tiny real workloads: readiness, DNS, endpoints, metrics, restarts, OOM, teardown."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from local_workloads import NEEDS_ROOT, alive, deployment, hft_cgroups, http_server, service, wait_for

from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local import cluster as local_cluster

pytestmark = [NEEDS_ROOT, pytest.mark.slow]


def _scrape(cluster: LocalCluster, path: str) -> str:
    with urllib.request.urlopen(f"http://{cluster.exporter.address}{path}", timeout=5) as resp:
        return resp.read().decode()


def _all_available(cluster: LocalCluster) -> bool:
    return all(w.is_available for w in cluster.workloads())


def test_pods_serve_resolve_report_and_leave_nothing(make_cluster: Callable[..., LocalCluster]) -> None:
    progress: list[str] = []
    cluster = make_cluster(progress=progress.append)
    cluster.apply(
        [
            http_server("web", replicas=2, resources={"limits": {"cpu": "200m", "memory": "64Mi"}}),
            service("web", port=80, target="http"),
        ]
    )
    wait_for(lambda: _all_available(cluster), timeout=15, what="2 web pods ready")
    pods = cluster.pods()
    ips = sorted(p.ip for p in pods)
    assert len(set(ips)) == 2
    assert all(ip.startswith("127.0.") for ip in ips)
    assert any("starting" in line for line in progress)
    # progress (and DNS) follow readiness on the supervisor's next tick
    wait_for(
        lambda: sum(line.endswith(": ready") for line in progress) == 2, timeout=2, what="progress lines"
    )

    endpoints = cluster.endpoints("web")
    assert sorted(e.address for e in endpoints) == ips
    assert {e.port for e in endpoints} == {8080}
    assert all(e.ready for e in endpoints)
    # Resolution happens inside the pod's mount namespace, through the cluster hosts file.
    assert sorted(cluster.resolve_in_pod(pods[0].name, "web")) == ips
    assert sorted(cluster.resolve_in_pod(pods[1].name, "web.t.svc.cluster.local")) == ips
    assert cluster.resolve_in_pod(pods[0].name, "no-such-service") == []
    pid = cluster.container_pids(pods[0].name)["web"]
    hostname = subprocess.run(
        ["nsenter", "-u", "-t", str(pid), "hostname"], capture_output=True, text=True, timeout=5, check=True
    )
    assert hostname.stdout.strip() == pods[0].name
    assert Path("/etc/hosts").read_text().count("web.t.svc") == 0  # the host's own file is untouched

    address = cluster.service_address("web", "http")
    assert address.host in ips
    assert address.port == 8080
    with urllib.request.urlopen(address.url + "/", timeout=5) as resp:
        assert resp.status == 200

    ksm = _scrape(cluster, "/metrics")
    assert 'kube_deployment_status_replicas_available{namespace="t",deployment="web"} 2' in ksm
    assert (
        f'kube_pod_status_ready{{namespace="t",pod="{pods[0].name}",uid="local-{pods[0].name}",condition="true"}} 1'
        in ksm
    )
    cadvisor = _scrape(cluster, "/metrics/cadvisor")
    assert (
        f'container_memory_working_set_bytes{{namespace="t",pod="{pods[0].name}",container="web"' in cadvisor
    )
    cgroup = cluster.container_cgroup(pods[0].name, "web")
    if cluster.limits_enforced:
        assert cgroup is not None
        assert pid in cgroup.pids()
        assert cgroup.usage().memory_limit == 64 * 2**20
    else:
        assert cluster.warnings

    pids = [cluster.container_pids(p.name)["web"] for p in pods]
    run_id, runtime = cluster.run_id, cluster.runtime_dir
    state_files = list(cluster.state_dir.iterdir())
    cluster.delete_all()
    assert not any(alive(p) for p in pids)
    assert hft_cgroups(run_id) == []
    assert not runtime.exists()
    assert all(not f.exists() for f in state_files)
    cluster.delete_all()  # idempotent


def test_crash_loop_backoff_restarts_and_events(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(backoff_scale=0.02)  # 0.2 s, 0.4 s, 0.8 s ...
    cluster.apply([deployment("crash", ["sh", "-c", "echo crashing now; exit 3"])])
    pod = cluster.pods()[0].name

    def backing_off() -> bool:
        c = cluster.pods()[0].containers[0]
        return c.state == "waiting" and c.reason == "CrashLoopBackOff" and c.restart_count >= 2

    wait_for(backing_off, timeout=15, what="CrashLoopBackOff after two restarts")
    status = cluster.pods()[0].containers[0]
    assert status.last_terminated_reason == "Error"
    assert not status.ready
    reasons = [e.reason for e in cluster.events() if e.name == pod]
    assert {"Scheduled", "Started", "BackOff"} <= set(reasons)
    assert cluster.pod_logs(pod).count("crashing now") >= 2
    ksm = _scrape(cluster, "/metrics")
    assert (
        f'kube_pod_container_status_last_terminated_reason{{namespace="t",pod="{pod}",uid="local-{pod}",container="crash",reason="Error"}} 1'
        in ksm
    )
    assert 'kube_pod_container_status_restarts_total{namespace="t",pod="' in ksm


def test_memory_cgroup_kill_is_oomkilled(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(backoff_scale=1.0)  # stays in backoff after the first restart
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    hog = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    cluster.apply([deployment("hog", ["python", "-c", hog], limits={"memory": "64Mi", "cpu": "500m"})])
    pod = cluster.pods()[0].name
    wait_for(
        lambda: cluster.pods()[0].containers[0].last_terminated_reason, timeout=15, what="hog to be killed"
    )
    assert cluster.pods()[0].containers[0].last_terminated_reason == "OOMKilled"
    assert "OOMKilling" in [e.reason for e in cluster.events() if e.name == pod]
    oom_line = next(
        line
        for line in _scrape(cluster, "/metrics/cadvisor").splitlines()
        if line.startswith("container_oom_events_total")
    )
    assert float(oom_line.rsplit(" ", 1)[1]) >= 1


def test_liveness_failure_restarts_the_container(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(backoff_scale=0.02)
    live = {"httpGet": {"path": "/missing", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2}
    cluster.apply([http_server("flaky", livenessProbe=live)])
    wait_for(
        lambda: cluster.pods()[0].containers[0].restart_count >= 1, timeout=15, what="a liveness restart"
    )
    pod = cluster.pods()[0].name
    killing = [e for e in cluster.events() if e.reason == "Killing" and e.name == pod]
    assert killing
    assert "liveness" in killing[0].message
    unhealthy = [e.message for e in cluster.events() if e.reason == "Unhealthy"]
    assert any("404" in m for m in unhealthy)


def test_startup_probe_gates_readiness_and_liveness(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster()
    late = ["sh", "-c", "sleep 1.5; exec python -m http.server --bind $POD_IP 8080"]
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    dep = deployment("late", late, port=8080, env=[{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                     startupProbe={**probe, "periodSeconds": 0.25, "failureThreshold": 40}, readinessProbe=probe, livenessProbe=probe)  # fmt: skip
    cluster.apply([dep])
    wait_for(lambda: _all_available(cluster), timeout=15, what="late server ready")
    failed = [e.message for e in cluster.events() if e.reason == "Unhealthy"]
    assert failed
    assert all(m.startswith("Startup probe failed") for m in failed)
    assert cluster.pods()[0].containers[0].restart_count == 0


def test_exception_in_the_context_tears_down_even_processes_ignoring_sigterm(tmp_path: Path) -> None:
    stubborn = deployment("stubborn", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"])
    seen: dict[str, Any] = {}

    def deploy_then_fail() -> None:
        with LocalCluster(namespace="t", state_dir=tmp_path / "s") as cluster:
            cluster.apply([stubborn])
            pod = cluster.pods()[0].name
            seen["pid"] = wait_for(
                lambda: cluster.container_pids(pod).get("stubborn"), timeout=10, what="stubborn up"
            )
            seen["run_id"], seen["runtime"] = cluster.run_id, cluster.runtime_dir
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        deploy_then_fail()
    assert not alive(seen["pid"])  # SIGKILL after its 2 s grace period
    assert hft_cgroups(seen["run_id"]) == []
    assert not seen["runtime"].exists()


def test_teardown_does_not_wait_forever_for_a_hung_holder_of_the_clusters_lock(
    make_cluster: Callable[..., LocalCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = make_cluster()
    cluster.apply([http_server("web")])
    wait_for(lambda: all(w.is_available for w in cluster.workloads()), timeout=15, what="web ready")
    pid = cluster.container_pids(cluster.pods()[0].name)["web"]
    monkeypatch.setattr(local_cluster, "LOCK_WAIT_S", 0.5)
    release = threading.Event()
    held = threading.Event()

    def hang() -> None:  # a supervisor or probe thread stuck while it holds the lock
        with cluster._lock:
            held.set()
            release.wait(30)

    hung = threading.Thread(target=hang, daemon=True)
    hung.start()
    assert held.wait(5)
    began = time.monotonic()
    try:
        cluster.delete_all()
        took = time.monotonic() - began
    finally:
        release.set()
        hung.join(5)
    assert took < 10, f"teardown waited {took:.1f}s on the lock"
    assert not alive(pid)
    assert hft_cgroups(cluster.run_id) == []
    assert not cluster.runtime_dir.exists()
