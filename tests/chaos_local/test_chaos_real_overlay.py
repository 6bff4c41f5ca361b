"""Chaos against the real ``local`` overlay: the field report's pressure on the backend, reproduced."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from importlib.util import find_spec

import pytest
from chaos_workloads import NEEDS_ROOT, wait_for

from pytest_hftk8s import manifests
from pytest_hftk8s.chaos import pod_kill, stress_cpu, stress_memory
from pytest_hftk8s.cluster.local import LocalCluster
from pytest_hftk8s.cluster.local.chaos_driver import LocalChaos
from pytest_hftk8s.credentials import new_password, with_db_secret
from pytest_hftk8s.slo.intensity import judge
from pytest_hftk8s.slo.prom import PromClient

pytestmark = [
    NEEDS_ROOT,
    pytest.mark.slow,
    pytest.mark.skipif(
        find_spec("hft_platform") is None or find_spec("hft_engine") is None,
        reason="the platform services (hft_platform, hft_engine) are not installed: pip install -e .",
    ),
]


def _backend(cluster: LocalCluster) -> tuple[str, int, str]:
    pod = next(p for p in cluster.pods() if p.workload == "backend")
    c = pod.containers[0]
    return pod.name, c.restart_count, c.reason


def test_backend_under_cpu_and_memory_pressure_and_engine_kill(
    make_cluster: Callable[..., LocalCluster], chaos_on: Callable[..., LocalChaos]
) -> None:
    cluster = make_cluster(backoff_scale=0.1)
    if not cluster.limits_enforced:
        pytest.skip(f"cgroup limits unavailable here: {cluster.warnings}")
    cluster.apply(with_db_secret(manifests.render("local"), password=new_password(), secret_name=None))
    ready = lambda: all(w.is_available for w in cluster.workloads())  # noqa: E731
    wait_for(ready, timeout=45, what="every workload available")
    chaos = chaos_on(cluster)

    with chaos.inject(stress_cpu(target="backend", load=80, workers=1, duration="30s")) as cpu:
        time.sleep(6)
    intensity = cpu.records[0]["intensity"]
    assert intensity["expected"] == pytest.approx(0.3)  # the backend's 300m limit caps the 0.8 asked for
    assert intensity["reached"], intensity
    assert _backend(cluster)[1] == 0  # CPU pressure throttles; it does not crash-loop
    # The judgement, from the cluster's own Prometheus (cAdvisor and kube-state-metrics series), agrees
    # with the driver's cgroup reading within 10%: what the local cluster proves carries over.
    record = cpu.record("stress-cpu backend")
    prom = PromClient(cluster.service_address("prometheus", 9090).url)
    try:
        (judged,) = judge(record, prom, namespace=cluster.namespace)
    finally:
        prom.close()
    (cross,) = record.intensity_cross_check
    assert (judged.source, cross.source) == ("prometheus", "cgroup")
    assert judged.limit == pytest.approx(0.3)  # kube_pod_container_resource_limits, not the manifests
    assert judged.expected == pytest.approx(cross.expected)
    assert judged.observed == pytest.approx(cross.observed, rel=0.10), (judged, cross)
    assert judged.reached

    with chaos.inject(stress_memory(target="backend", size="256MiB", duration="20s")) as mem:
        wait_for(
            lambda: _backend(cluster)[2] == "CrashLoopBackOff", timeout=20, what="backend CrashLoopBackOff"
        )
    assert mem.records[0]["intensity"]["oom_kills"] >= 1
    pod = next(p for p in cluster.pods() if p.workload == "backend")
    assert pod.containers[0].last_terminated_reason == "OOMKilled"
    wait_for(ready, timeout=30, what="backend ready again once the pressure is gone")

    engine = next(p for p in cluster.pods() if p.workload == "engine")
    with chaos.inject(pod_kill(target="engine")):
        pass
    wait_for(
        lambda: (
            next(p for p in cluster.pods() if p.workload == "engine").containers[0].restart_count
            == engine.containers[0].restart_count + 1
        ),
        timeout=10,
        what="engine restarted",
    )
    wait_for(ready, timeout=30, what="engine ready again")
    address = cluster.service_address("nginx", 80)
    with urllib.request.urlopen(f"http://{address.host}:{address.port}/healthz", timeout=5) as resp:
        assert resp.status == 200
