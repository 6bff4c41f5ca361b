"""KubernetesCluster against the kmock API emulator: what goes over HTTP, and how statuses map."""

from __future__ import annotations

import pathlib
import re
import socket
from typing import Any

import kmock
import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from pytest_hftk8s.cluster.base import Cluster, ContainerStatus, Endpoint, WorkloadStatus
from pytest_hftk8s.cluster.kubernetes import ApiNotFound, KubernetesCluster
from pytest_hftk8s.cluster.kubernetes.payloads import parse_getent
from pytest_hftk8s.errors import ClusterError, ClusterUnavailable

MANIFESTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "nginx-conf"},
        "data": {"nginx.conf": "x"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "backend",
            "namespace": "somewhere-else",
            "labels": {"app.kubernetes.io/name": "backend"},
        },
        "spec": {"replicas": 2},
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend"},
        "spec": {"ports": [{"port": 8000}]},
    },
]


@pytest.fixture
def cluster(emulator: Any, kubeconfig: str) -> Any:
    c = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig, delete_timeout=5.0)
    yield c
    c.close()


def _seed(emulator_thread: Any, resource: str, name: str, obj: dict[str, Any]) -> None:
    emulator_thread.call(lambda: emulator_thread.emulator.objects.__setitem__((resource, "hft", name), obj))


def test_implements_the_cluster_protocol(cluster: KubernetesCluster) -> None:
    assert isinstance(cluster, Cluster)
    assert cluster.name == "emulated"


def test_apply_is_server_side_apply_namespace_first(
    cluster: KubernetesCluster, emulator: Any, body_of: Any
) -> None:
    cluster.apply(MANIFESTS)
    patches = [r for r in emulator.requests() if r.method == "PATCH"]
    assert [r.url.path for r in patches] == [
        "/api/v1/namespaces/hft",
        "/api/v1/namespaces/hft/configmaps/nginx-conf",
        "/apis/apps/v1/namespaces/hft/deployments/backend",
        "/api/v1/namespaces/hft/services/backend",
    ]
    for r in patches:
        assert r.headers["Content-Type"] == "application/apply-patch+yaml"
        assert r.url.query["fieldManager"] == "pytest-hftk8s"
        assert r.url.query["force"] == "true"
        assert body_of(r)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pytest-hftk8s"
        assert body_of(r)["metadata"]["labels"]["hftk8s.io/namespace"] == "hft"
    deployment = body_of(patches[2])
    assert deployment["metadata"]["namespace"] == "hft"  # rendered namespace is overridden
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "backend"  # own labels kept
    assert "namespace" not in body_of(patches[0])["metadata"]  # cluster-scoped
    assert body_of(patches[0])["metadata"]["labels"]["hftk8s.io/created"] == "true"  # it did not exist
    assert emulator.objects["apps/v1/deployments", "hft", "backend"] >= {"spec": {"replicas": 2}}
    assert "Authorization" in patches[0].headers
    assert patches[0].headers["Authorization"] == "Bearer test-token"


def test_apply_of_the_rendered_local_overlay(kubeconfig: str, emulator: Any, body_of: Any) -> None:
    from pytest_hftk8s.manifests import render

    objects = render("local")
    cluster = KubernetesCluster(context="emulated", namespace="hft-ci", kubeconfig=kubeconfig)
    try:
        cluster.apply(objects)
    finally:
        cluster.close()
    patches = [r for r in emulator.requests() if r.method == "PATCH"]
    assert len(patches) == len(objects)  # the overlay's own Namespace replaces the implicit one
    assert patches[0].url.path == "/api/v1/namespaces/hft-ci"  # the overlay's "hft", renamed
    for request, obj in zip(patches[1:], [o for o in objects if o["kind"] != "Namespace"], strict=True):
        sent = body_of(request)
        assert sent["kind"] == obj["kind"]
        if "/namespaces/hft-ci/" in request.url.path:
            assert request.url.path.endswith(f"/{obj['metadata']['name']}")
            assert sent["metadata"]["namespace"] == "hft-ci"
        else:  # cluster-scoped RBAC: the session namespace is part of the name
            assert request.url.path.endswith(f"/{obj['metadata']['name']}-hft-ci")
            assert sent["metadata"]["name"] == f"{obj['metadata']['name']}-hft-ci"
            assert "namespace" not in sent["metadata"]
            for subject in sent.get("subjects", []):
                assert subject["namespace"] == "hft-ci"
    assert any(r.url.path.startswith("/apis/rbac.authorization.k8s.io/v1/clusterroles/") for r in patches)


def test_apply_resolves_unknown_kinds_through_discovery(
    cluster: KubernetesCluster, emulator: Any, emulator_thread: Any
) -> None:
    emulator_thread.call(
        lambda: emulator.resources.__setitem__(
            "example.com/v1/widgets", kmock.ResourceInfo(kind="Widget", namespaced=True)
        )
    )
    cluster.apply(
        [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"n": 1}}]
    )
    assert any(r.url.path == "/apis/example.com/v1" and r.method == "GET" for r in emulator.requests())
    assert emulator.objects["example.com/v1/widgets", "hft", "w1"] >= {"spec": {"n": 1}}
    with pytest.raises(ClusterError, match="does not serve kind 'Gadget'"):
        cluster.apply([{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}])


def test_delete_all_removes_the_sessions_objects_by_label(
    cluster: KubernetesCluster, emulator: Any, emulator_thread: Any, kubeconfig: str
) -> None:
    _seed(emulator_thread, "v1/configmaps", "not-ours", {"metadata": {"name": "not-ours"}})
    other_session = {"app.kubernetes.io/managed-by": "pytest-hftk8s", "hftk8s.io/namespace": "elsewhere"}
    _seed(emulator_thread, "v1/configmaps", "other", {"metadata": {"name": "other", "labels": other_session}})
    cluster.apply(MANIFESTS)
    # Another process (the last xdist worker out) tears down what this one applied.
    last_worker = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=kubeconfig)
    try:
        last_worker.delete_all()
        deletes = [r.url.path for r in emulator.requests() if r.method == "DELETE"]
        assert deletes == [
            "/apis/apps/v1/namespaces/hft/deployments/backend",  # workloads first
            "/api/v1/namespaces/hft/services/backend",
            "/api/v1/namespaces/hft/configmaps/nginx-conf",
            "/api/v1/namespaces/hft",  # created by the plugin, so the plugin removes it
        ]
        lists = [r for r in emulator.requests() if r.method == "GET" and "labelSelector" in r.url.query]
        assert {r.url.query["labelSelector"] for r in lists} == {
            "app.kubernetes.io/managed-by=pytest-hftk8s,hftk8s.io/namespace=hft"
        }
        assert emulator.objects["apps/v1/deployments", "hft", "backend"].deleted
        assert not emulator.objects["v1/configmaps", "hft", "not-ours"].deleted
        assert not emulator.objects["v1/configmaps", "hft", "other"].deleted
        last_worker.delete_all()  # idempotent: nothing of ours is left
        assert len([r for r in emulator.requests() if r.method == "DELETE"]) == 4
    finally:
        last_worker.close()


def test_delete_all_keeps_a_namespace_that_existed(cluster: KubernetesCluster, emulator: Any) -> None:
    emulator.namespaces["hft"] = {"metadata": {"name": "hft", "labels": {"team": "sre"}}}
    cluster.apply(MANIFESTS[:1])
    assert "hftk8s.io/created" not in emulator.namespaces["hft"]["metadata"]["labels"]
    cluster.delete_all()
    deletes = [r.url.path for r in emulator.requests() if r.method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/hft/configmaps/nginx-conf"]


def test_a_namespace_an_earlier_session_created_stays_the_plugins(
    cluster: KubernetesCluster, emulator: Any
) -> None:
    labels = {"app.kubernetes.io/managed-by": "pytest-hftk8s", "hftk8s.io/created": "true"}
    emulator.namespaces["hft"] = {"metadata": {"name": "hft", "labels": labels}}  # left by --hft-keep
    cluster.apply(MANIFESTS[:1])
    assert emulator.namespaces["hft"]["metadata"]["labels"]["hftk8s.io/created"] == "true"
    cluster.delete_all()
    assert "hft" not in emulator.namespaces


def test_delete_all_wait_is_bounded(emulator: Any, emulator_thread: Any, kubeconfig: str) -> None:
    cluster = KubernetesCluster(
        context="emulated", namespace="hft", kubeconfig=kubeconfig, delete_timeout=0.5
    )
    cluster.apply(MANIFESTS[:1])
    key = ("v1/configmaps", "hft", "nginx-conf")
    emulator_thread.call(
        lambda: emulator.objects[key].patch({"metadata": {"finalizers": ["example.com/hold"]}})
    )
    with pytest.raises(ClusterError, match=r"teardown incomplete after 0s.*ConfigMap/nginx-conf") as info:
        cluster.delete_all()
    cluster.close()
    assert "finalizers ['example.com/hold']" in str(info.value)
    force = """kubectl -n hft patch configmaps nginx-conf --type=merge -p '{"metadata":{"finalizers":[]}}'"""
    assert f"release with `{force}`" in str(info.value)


BACKEND_POD = {
    "metadata": {
        "name": "backend-5d9c7b-x1",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "backend-5d9c7b"}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.5",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "backend",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }
        ],
    },
}
POSTGRES_POD = {
    "metadata": {"name": "postgres-0", "ownerReferences": [{"kind": "StatefulSet", "name": "postgres"}]},
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.9",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "postgres", "ready": True, "restartCount": 0, "state": {"running": {}}}
        ],
    },
}


def _slice(service: str, name: str, endpoints: list[dict[str, Any]], port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "endpoints": endpoints,
        "ports": [{"name": "main", "port": port}],
    }


def test_status_maps_onto_the_base_types(
    cluster: KubernetesCluster, emulator: Any, emulator_thread: Any
) -> None:
    _seed(emulator_thread, "v1/pods", "backend-5d9c7b-x1", BACKEND_POD)
    _seed(emulator_thread, "v1/pods", "postgres-0", POSTGRES_POD)
    _seed(
        emulator_thread,
        "apps/v1/deployments",
        "backend",
        {
            "metadata": {"name": "backend"},
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 1, "availableReplicas": 1},
        },
    )
    _seed(
        emulator_thread,
        "apps/v1/statefulsets",
        "postgres",
        {"metadata": {"name": "postgres"}, "spec": {}, "status": {}},
    )
    _seed(
        emulator_thread,
        "v1/events",
        "e1",
        {
            "metadata": {"name": "e1"},
            "involvedObject": {
                "kind": "Pod",
                "name": "backend-5d9c7b-x1",
                "fieldPath": "spec.containers{backend}",
            },
            "reason": "Unhealthy",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "type": "Warning",
            "lastTimestamp": "2026-11-26T10:00:05Z",
        },
    )
    _seed(
        emulator_thread,
        "v1/events",
        "e0",
        {
            "metadata": {"name": "e0"},
            "involvedObject": {"kind": "Pod", "name": "backend-5d9c7b-x1"},
            "reason": "Scheduled",
            "message": "assigned",
            "lastTimestamp": "2026-11-26T10:00:00Z",
        },
    )
    _seed(
        emulator_thread,
        "discovery.k8s.io/v1/endpointslices",
        "backend-a",
        _slice(
            "backend",
            "backend-a",
            [
                {
                    "addresses": ["10.0.0.5"],
                    "conditions": {"ready": False},
                    "targetRef": {"name": "backend-5d9c7b-x1"},
                },
                {"addresses": ["10.0.0.6"], "conditions": {}, "targetRef": {"name": "backend-5d9c7b-x2"}},
            ],
            8000,
        ),
    )
    _seed(
        emulator_thread,
        "discovery.k8s.io/v1/endpointslices",
        "postgres-a",
        _slice("postgres", "postgres-a", [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}}], 5432),
    )

    assert sorted(cluster.workloads(), key=lambda w: w.kind) == [
        WorkloadStatus(kind="Deployment", name="backend", desired=2, ready=1, available=1),
        WorkloadStatus(kind="StatefulSet", name="postgres", desired=1, ready=0, available=0),
    ]
    pods = {p.name: p for p in cluster.pods()}
    backend = pods["backend-5d9c7b-x1"]
    assert (backend.workload, backend.phase, backend.ip, backend.ready) == (
        "backend",
        "Running",
        "10.0.0.5",
        False,
    )
    assert backend.containers == (
        ContainerStatus(
            name="backend",
            ready=False,
            restart_count=4,
            state="waiting",
            reason="CrashLoopBackOff",
            last_terminated_reason="OOMKilled",
            last_probe_error="Readiness probe failed: HTTP probe failed with statuscode: 503",
        ),
    )
    assert pods["postgres-0"].ready
    assert pods["postgres-0"].workload == "postgres"
    assert pods["postgres-0"].containers[0].state == "running"

    assert cluster.endpoints("backend") == [
        Endpoint(pod="backend-5d9c7b-x1", address="10.0.0.5", port=8000, ready=False),
        Endpoint(pod="backend-5d9c7b-x2", address="10.0.0.6", port=8000, ready=True),  # unset ready = ready
    ]
    slices = [r for r in emulator.requests() if r.url.path.endswith("/endpointslices")]
    assert slices[-1].url.query["labelSelector"] == "kubernetes.io/service-name=backend"
    assert slices[-1].url.path == "/apis/discovery.k8s.io/v1/namespaces/hft/endpointslices"

    events = cluster.events()
    assert [e.reason for e in events] == ["Scheduled", "Unhealthy"]  # oldest first
    assert events[1].type == "Warning"
    assert events[1].kind == "Pod"


def test_services_and_pod_logs(cluster: KubernetesCluster, emulator: Any, emulator_thread: Any) -> None:
    _seed(emulator_thread, "v1/services", "backend", {"metadata": {"name": "backend"}})
    emulator.cluster.logs["backend-1"] = "line 1\nline 2\n"  # what its kubelet serves
    assert cluster.services() == ["backend"]
    assert cluster.pod_logs("backend-1", container="backend", tail=50) == "line 1\nline 2\n"
    (logs,) = [r for r in emulator.requests() if r.url.path.endswith("/log")]
    assert logs.url.query["tailLines"] == "50"
    assert logs.url.query["container"] == "backend"


def test_api_errors_are_translated_and_chained(cluster: KubernetesCluster, emulator: Any) -> None:
    emulator["get /api/v1/namespaces/hft/pods"] << kmock.KubernetesError(
        status=403, reason="Forbidden", message='pods is forbidden: User "tester" cannot list pods'
    )
    emulator["get /api/v1/namespaces/hft/services"] << kmock.KubernetesError(
        status=500, reason="InternalError"
    )
    with pytest.raises(ClusterError, match=r"access denied.*cannot list pods.*kubectl auth can-i") as info:
        cluster.pods()
    assert not isinstance(info.value, ClusterUnavailable)
    assert isinstance(info.value.__cause__, ApiException)
    with pytest.raises(ClusterUnavailable, match="HTTP 500"):
        cluster.services()


@pytest.mark.parametrize(
    ("status", "error", "phrase"),
    [
        (404, ApiNotFound, "not found"),
        (409, ClusterError, "conflict"),
        (422, ClusterError, "rejected the object"),
        (429, ClusterUnavailable, "retry"),
        (503, ClusterUnavailable, "control plane"),
    ],
)
def test_status_codes_map_to_project_errors(
    cluster: KubernetesCluster, emulator: Any, status: int, error: type[Exception], phrase: str
) -> None:
    emulator["get /apis/apps/v1/namespaces/hft/deployments"] << kmock.KubernetesError(
        status=status, reason="Because", message="the server said no"
    )
    with pytest.raises(error, match=phrase) as info:
        cluster.workloads()
    assert "the server said no" in str(info.value)
    assert isinstance(info.value.__cause__, ApiException)
    if error is ClusterError:
        assert not isinstance(info.value, ClusterUnavailable)


def test_unreachable_server_and_unknown_context(tmp_path: Any, kubeconfig: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # released again: nothing listens there
    dead = tmp_path / "dead.yaml"
    dead.write_text(
        re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", pathlib.Path(kubeconfig).read_text())
    )
    cluster = KubernetesCluster(context="emulated", namespace="hft", kubeconfig=str(dead), request_timeout=2)
    try:
        with pytest.raises(ClusterUnavailable, match="did not answer") as info:
            cluster.services()
        assert isinstance(info.value.__cause__, (HTTPError, OSError))
    finally:
        cluster.close()
    with pytest.raises(ClusterUnavailable, match=r"kube context 'nope'.*--hft-cluster"):
        KubernetesCluster(context="nope", namespace="hft", kubeconfig=kubeconfig)


def test_resolve_in_pod_execs_getent(cluster: KubernetesCluster, emulator: Any, emulator_thread: Any) -> None:
    pod = {
        "metadata": {"name": "backend-1"},
        "spec": {"containers": [{"name": "backend"}, {"name": "sidecar"}]},
    }
    _seed(emulator_thread, "v1/pods", "backend-1", pod)
    emulator.dns["postgres"] = ["10.96.0.12", "10.96.0.13"]
    assert cluster.resolve_in_pod("backend-1", "postgres") == ["10.96.0.12", "10.96.0.13"]
    assert cluster.resolve_in_pod("backend-1", "nowhere") == []  # getent exit 2: not found
    execs = [r for r in emulator.requests() if r.url.path.endswith("/exec")]
    assert [r.url.path for r in execs] == ["/api/v1/namespaces/hft/pods/backend-1/exec"] * 2
    assert execs[0].url.query.getall("command") == ["getent", "ahosts", "postgres"]
    assert execs[0].url.query["stdout"].lower() == "true"
    assert execs[0].url.query["tty"].lower() == "false"
    assert execs[0].url.query["container"] == "backend"  # explicit, so multi-container pods work
    with pytest.raises(ClusterError, match="not found"):
        cluster.resolve_in_pod("no-such-pod", "postgres")
    assert execs[0].headers["Authorization"] == "Bearer test-token"


def test_parse_getent() -> None:
    out = (
        "10.96.0.12      STREAM postgres.hft.svc.cluster.local\n10.96.0.12      DGRAM\n10.96.0.13      RAW\n"
    )
    assert parse_getent(out) == ["10.96.0.12", "10.96.0.13"]
    assert parse_getent("") == []


def test_service_address_port_forwards_to_a_ready_pod(
    cluster: KubernetesCluster, emulator: Any, emulator_thread: Any
) -> None:
    _seed(
        emulator_thread,
        "v1/services",
        "backend",
        {
            "metadata": {"name": "backend"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
        },
    )
    _seed(
        emulator_thread,
        "discovery.k8s.io/v1/endpointslices",
        "backend-a",
        _slice(
            "backend", "backend-a", [{"addresses": ["10.0.0.6"], "targetRef": {"name": "backend-x2"}}], 8000
        ),
    )
    address = cluster.service_address("backend", "http")
    assert address.host == "127.0.0.1"
    assert address.port > 0
    assert address.via == "port-forward"  # a ClusterIP Service: no direct path, so the fallback
    assert address.extra["pod"] == "backend-x2"
    assert address.extra["remote_port"] == "8000"
    assert "service backend is type ClusterIP, not LoadBalancer" in address.extra["why"]
    assert cluster.service_address("backend", 80) == address  # one forward per pod port
    for payload in (b"ping", b"second connection"):  # the emulated pod port echoes, prefixed
        with socket.create_connection((address.host, address.port), timeout=5) as conn:
            conn.settimeout(5)
            conn.sendall(payload)
            received = b""
            while len(received) < len(payload) + 5:
                chunk = conn.recv(4096)
                assert chunk, f"forward closed early after {received!r}"
                received += chunk
            assert received == b"echo:" + payload
    forwards = [r for r in emulator.requests() if r.url.path.endswith("/portforward")]
    assert len(forwards) == 2  # one stream per accepted connection
    assert forwards[0].url.path == "/api/v1/namespaces/hft/pods/backend-x2/portforward"
    assert forwards[0].url.query["ports"] == "8000"
    _seed(
        emulator_thread,
        "v1/services",
        "engine",
        {
            "metadata": {"name": "engine"},
            "spec": {"ports": [{"name": "rpc", "port": 9000, "targetPort": "rpc"}]},
        },
    )
    engine_slice = _slice(
        "engine", "engine-a", [{"addresses": ["10.0.0.7"], "targetRef": {"name": "engine-x1"}}], 0
    )
    engine_slice["ports"] = [{"name": "metrics", "port": 9100}, {"name": "rpc", "port": 9001}]
    _seed(emulator_thread, "discovery.k8s.io/v1/endpointslices", "engine-a", engine_slice)
    assert cluster.service_address("engine", "rpc").extra["remote_port"] == "9001"
    with pytest.raises(ClusterError, match="no port 'grpc'"):
        cluster.service_address("backend", "grpc")
    cluster.close()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((address.host, address.port), timeout=2),
    ):
        pass


def test_secret_value_reads_the_users_secret_and_names_a_missing_key(
    cluster: KubernetesCluster, emulator_thread: Any
) -> None:
    import base64

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "team-db", "namespace": "hft"},
        "data": {"password": base64.b64encode(b"s3cret").decode()},
    }
    _seed(emulator_thread, "v1/secrets", "team-db", secret)
    assert cluster.secret_value("team-db", "password") == "s3cret"
    with pytest.raises(
        ClusterError, match=r"expected key 'pass' in Secret hft/team-db.*create secret generic"
    ):
        cluster.secret_value("team-db", "pass")
