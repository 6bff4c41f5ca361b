"""What the emulated API shows of real local pods, read through the kubernetes backend.

One platform (the ``emulated`` overlay) is deployed for the module. The objects the bridge writes must
be valid Kubernetes objects (the v1.33 schemas), carry what the kubelet and controllers would write,
and the subresources must reach the real pods: exec resolves names with the pod's own resolver,
port-forward carries HTTP to nginx, logs are the container's, the node proxy serves cAdvisor series.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
from emulated_support import NEEDS_LOCAL_CLUSTER, platform_objects, wait_for

from pytest_hftk8s.chaos import pod_kill
from pytest_hftk8s.cluster.emulated import CONTEXT, EmulatedCluster
from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.cluster.kubernetes.chaos_driver import KubernetesChaos
from pytest_hftk8s.gate import GateConfig, ReadinessGate

pytestmark = [*NEEDS_LOCAL_CLUSTER, pytest.mark.slow]

SCHEMA_VERSION = "1.33.0"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedCluster]:
    cluster = EmulatedCluster(namespace="hft", state_dir=tmp_path_factory.mktemp("state"))
    try:
        cluster.apply(platform_objects())
        ReadinessGate(cluster, config=GateConfig(timeout_s=60)).wait()
        yield cluster
    finally:
        cluster.delete_all()
        cluster.close()


def _get(cluster: EmulatedCluster, path: str) -> Any:
    with urllib.request.urlopen(cluster.environment.url + path, timeout=5) as response:
        body = response.read().decode()
    return json.loads(body) if body.startswith("{") else body


@pytest.mark.parametrize(
    "collection",
    [
        "/api/v1/namespaces/hft/pods",
        "/apis/apps/v1/namespaces/hft/deployments",
        "/apis/apps/v1/namespaces/hft/statefulsets",
        "/apis/discovery.k8s.io/v1/namespaces/hft/endpointslices",
        "/api/v1/namespaces/hft/events",
        "/api/v1/namespaces/hft/services",
        "/api/v1/nodes",
    ],
)
def test_what_the_bridge_writes_is_valid_against_the_schemas(
    platform: EmulatedCluster, collection: str
) -> None:
    items = _get(platform, collection)["items"]
    assert items, f"nothing listed at {collection}"
    for obj in items:
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)


def test_pods_carry_the_kubelets_status_from_the_real_processes(platform: EmulatedCluster) -> None:
    pods = {p["metadata"]["name"]: p for p in _get(platform, "/api/v1/namespaces/hft/pods")["items"]}
    local = platform.environment.bridge.local_cluster("hft")
    assert local is not None
    assert set(pods) == {p.name for p in local.pods()}
    for p in local.pods():
        status = pods[p.name]["status"]
        assert status["podIP"] == p.ip
        assert status["phase"] == "Running"
        assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
        (container,) = status["containerStatuses"]
        assert container["restartCount"] == p.containers[0].restart_count
        assert "running" in container["state"]
    backend = next(p for name, p in pods.items() if name.startswith("backend-"))
    assert backend["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert backend["metadata"]["labels"]["app"] == "backend"
    # What the backend reads back: workloads available, each Service's endpoints the pods' addresses.
    assert all(w.is_available for w in platform.workloads())
    (nginx,) = [p for p in local.pods() if p.workload == "nginx"]
    assert [(e.address, e.port, e.ready) for e in platform.endpoints("nginx")] == [(nginx.ip, 80, True)]


def test_exec_resolves_with_the_pods_own_resolver(platform: EmulatedCluster) -> None:
    local = platform.environment.bridge.local_cluster("hft")
    assert local is not None
    backend = next(p.name for p in local.pods() if p.workload == "backend")
    redis = next(p.ip for p in local.pods() if p.workload == "redis")
    assert platform.resolve_in_pod(backend, "redis") == local.resolve_in_pod(backend, "redis")
    assert redis in platform.resolve_in_pod(backend, "redis.hft.svc.cluster.local")
    assert platform.resolve_in_pod(backend, "no-such-service") == []


def test_a_load_balancer_address_and_a_port_forward_both_reach_nginx(platform: EmulatedCluster) -> None:
    direct = platform.service_address("nginx", 80)
    assert direct.via == "loadbalancer"
    forwarded = KubernetesCluster(  # the plain kubernetes backend on the same context
        context=CONTEXT, namespace="hft", kubeconfig=platform.kubeconfig, access="port-forward"
    )
    try:
        address = forwarded.service_address("nginx", 80)
        assert address.via == "port-forward"
        for url in (direct.url, address.url):
            request = urllib.request.Request(url + "/healthz")
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
    finally:
        forwarded.close()


def test_logs_and_the_node_proxy_come_from_the_local_pods(platform: EmulatedCluster) -> None:
    local = platform.environment.bridge.local_cluster("hft")
    assert local is not None
    engine = next(p.name for p in local.pods() if p.workload == "engine")
    assert platform.pod_logs(engine, tail=50) == local.pod_logs(engine, tail=50)
    cadvisor = _get(platform, "/api/v1/nodes/hftk8s-local/proxy/metrics/cadvisor")
    assert f'container_cpu_usage_seconds_total{{namespace="hft",pod="{engine}"' in cadvisor


def test_pod_kill_restarts_the_real_process_and_the_api_shows_it(platform: EmulatedCluster) -> None:
    local = platform.environment.bridge.local_cluster("hft")
    assert local is not None
    engine = next(p for p in local.pods() if p.workload == "engine")
    pid = local.container_pids(engine.name)["engine"]
    chaos = KubernetesChaos.for_cluster(platform, run_id="kill", echo=lambda _m: None, allowed_contexts=())
    with chaos.inject(pod_kill(target="engine")) as run:
        assert [r["id"] for r in run.records] == [f"hft/{engine.name}"]
    restarts = engine.containers[0].restart_count

    def restarted() -> bool:
        (api_engine,) = [p for p in platform.pods() if p.workload == "engine"]
        return api_engine.ready and api_engine.containers[0].restart_count == restarts + 1

    wait_for(restarted, timeout=30, what="the engine restarted, as the API shows it")
    assert local.container_pids(engine.name)["engine"] != pid  # a new process, not a new status
    events = [(e.kind, e.reason) for e in platform.events()]
    assert ("PodChaos", "Applied") in events
    started = time.monotonic()
    wait_for(
        lambda: (
            not any(
                o for o in _get(platform, "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/podchaos")["items"]
            )
        ),
        timeout=10,
        what="the PodChaos released and gone",
    )
    assert time.monotonic() - started < 10
