"""Cleanup a user can trust, against the emulator: labelled volume claims that go with the platform,
cluster-scoped RBAC that says whose it is, a sweep of what earlier runs left, and a stuck finalizer
reported with the command that releases it instead of waited on forever."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_hftk8s.cluster.kubernetes import KubernetesCluster
from pytest_hftk8s.errors import ClusterError
from pytest_hftk8s.manifests import render

OURS = {"app.kubernetes.io/managed-by": "pytest-hftk8s", "hftk8s.io/namespace": "hft"}
PVC = "v1/persistentvolumeclaims"
FORCE = """kubectl -n hft patch stresschaos stuck-stress --type=merge -p '{"metadata":{"finalizers":[]}}'"""


@pytest.fixture
def clusters(kubeconfig: str) -> Iterator[Any]:
    """``clusters(namespace, **kwargs)``: backends on the emulator, closed at the end."""
    made: list[KubernetesCluster] = []

    def make(namespace: str = "hft", **kwargs: Any) -> KubernetesCluster:
        made.append(
            KubernetesCluster(context="emulated", namespace=namespace, kubeconfig=kubeconfig, **kwargs)
        )
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


def _live(emulator: Any, resource: str, namespace: str | None = "hft") -> dict[str, Any]:
    return {
        key[2]: obj.raw
        for key, obj in emulator.objects.items()
        if f"{key[0].group}/{key[0].version}/{key[0].plural}".lstrip("/") == resource
        and key[1] == namespace
        and not obj.deleted
    }


def test_volume_claims_carry_the_run_id_and_go_with_the_platform(
    clusters: Any, emulator: Any, emulator_thread: Any, body_of: Any
) -> None:
    emulator.controllers_on = True
    cluster = clusters(run_id="run-a", delete_timeout=10)
    cluster.apply(render("local"))
    (sts,) = [
        r
        for r in emulator.requests()
        if r.method == "PATCH" and r.url.path.endswith("/statefulsets/postgres")
    ]
    (template,) = body_of(sts)["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["labels"] == {**OURS, "hftk8s.io/run-id": "run-a"}
    claims = emulator_thread.wait_for(lambda: _live(emulator, PVC), what="the StatefulSets' claims")
    assert sorted(claims) == ["data-postgres-0", "data-redis-0"]
    # what the StatefulSet controller stamps on a claim: the template's labels and the selector's
    assert claims["data-postgres-0"]["metadata"]["labels"] == {
        **OURS,
        "hftk8s.io/run-id": "run-a",
        "app": "postgres",
    }

    cluster.delete_all()
    deletes = [r.url.path for r in emulator.requests() if r.method == "DELETE"]
    assert "/api/v1/namespaces/hft/persistentvolumeclaims/data-postgres-0" in deletes
    assert "/api/v1/namespaces/hft/persistentvolumeclaims/data-redis-0" in deletes
    assert emulator_thread.call(lambda: _live(emulator, PVC)) == {}  # gone once their pods were
    assert "hft" not in emulator.namespaces  # the plugin created it, so the plugin removed it


def test_a_second_apply_keeps_the_claims_run_id_which_cannot_change(
    clusters: Any, emulator: Any, body_of: Any
) -> None:
    clusters(run_id="run-a").apply(render("local"))
    later = clusters(run_id="run-b")
    later.apply(render("local"))  # a real API server refuses a changed volumeClaimTemplates: no 422 here
    sts = [
        r
        for r in emulator.requests()
        if r.method == "PATCH" and r.url.path.endswith("/statefulsets/postgres")
    ]
    assert (
        body_of(sts[-1])["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]["hftk8s.io/run-id"]
        == "run-a"
    )
    changed = body_of(sts[-1])
    changed["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]["hftk8s.io/run-id"] = "run-b"
    with pytest.raises(ClusterError, match=r"rejected the object.*updates to statefulset spec.*forbidden"):
        later.api.request(
            "PATCH",
            "/apis/apps/v1/namespaces/hft/statefulsets/postgres",
            what="apply a changed claim template",
            query=[("fieldManager", "pytest-hftk8s"), ("force", "true")],
            body=changed,
            content_type="application/apply-patch+yaml",
        )


def test_cluster_roles_of_two_namespaces_do_not_collide(clusters: Any, emulator: Any) -> None:
    a, b = clusters("hft-a"), clusters("hft-b")
    a.apply(render("local"))
    b.apply(render("local"))
    roles = _live(emulator, "rbac.authorization.k8s.io/v1/clusterroles", None)
    bindings = _live(emulator, "rbac.authorization.k8s.io/v1/clusterrolebindings", None)
    assert "hft-prometheus-hft-a" in roles
    assert "hft-prometheus-hft-b" in roles
    for ns in ("hft-a", "hft-b"):
        binding = bindings[f"hft-prometheus-{ns}"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": f"hft-prometheus-{ns}",
        }
        assert {s["namespace"] for s in binding["subjects"]} == {ns}
        assert roles[f"hft-prometheus-{ns}"]["metadata"]["labels"]["hftk8s.io/namespace"] == ns
    a.delete_all()
    roles = _live(emulator, "rbac.authorization.k8s.io/v1/clusterroles", None)
    assert "hft-prometheus-hft-a" not in roles
    assert "hft-prometheus-hft-b" in roles  # the other session's RBAC is untouched
    assert "hft-prometheus-hft-b" in _live(emulator, "rbac.authorization.k8s.io/v1/clusterrolebindings", None)


def _seed_leftovers(emulator: Any) -> None:
    def labels(run: str, namespace: str = "hft") -> dict[str, str]:
        return {**OURS, "hftk8s.io/namespace": namespace, "hftk8s.io/run-id": run}

    chaos = "chaos-mesh.org/v1alpha1"
    emulator.objects[f"{chaos}/stresschaos", "hft", "old-stress"] = {
        "kind": "StressChaos",
        "metadata": {"name": "old-stress", "namespace": "hft", "labels": labels("killed")},
        "spec": {"mode": "all", "selector": {"labelSelectors": {"app": "backend"}}},
    }
    emulator.objects[f"{chaos}/podchaos", "hft", "current-kill"] = {
        "kind": "PodChaos",
        "metadata": {"name": "current-kill", "namespace": "hft", "labels": labels("now")},
        "spec": {"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "engine"}}},
    }
    emulator.objects[f"{chaos}/stresschaos", "hft", "not-ours"] = {
        "metadata": {"name": "not-ours", "namespace": "hft", "labels": {"team": "sre"}}
    }

    def claim(name: str, claim_labels: dict[str, str]) -> None:
        emulator.objects[PVC, "hft", name] = {
            "metadata": {
                "name": name,
                "namespace": "hft",
                "labels": claim_labels,
                "finalizers": ["kubernetes.io/pvc-protection"],
            },
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
            "status": {"phase": "Bound"},
        }

    claim("data-postgres-0", labels("killed"))  # a killed run's, mounted by nothing
    claim("data-redis-0", labels("killed"))  # mounted by a running pod: not a leftover
    claim("data-other-0", labels("killed", namespace="elsewhere"))  # another session's label
    claim("scratch", {"team": "sre"})
    emulator.objects["v1/pods", "hft", "redis-0"] = {
        "metadata": {"name": "redis-0", "namespace": "hft", "labels": {"app": "redis"}},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-redis-0"}}]},
        "status": {"phase": "Running"},
    }


def test_the_sweep_removes_what_earlier_runs_left_and_nothing_else(
    clusters: Any, emulator: Any, emulator_thread: Any
) -> None:
    emulator_thread.call(lambda: _seed_leftovers(emulator))
    cluster = clusters(finalizer_timeout=5.0)
    assert cluster.sweep(keep_run_id="now") == [
        "StressChaos/old-stress",
        "PersistentVolumeClaim/data-postgres-0",
    ]
    left = {
        k[2]
        for k, o in emulator.objects.items()
        if not o.deleted and k[1] == "hft" and str(k[0].plural) != "events"
    }
    assert left == {"current-kill", "not-ours", "data-redis-0", "data-other-0", "scratch", "redis-0"}
    assert cluster.sweep(keep_run_id=None) == ["PodChaos/current-kill"]  # at teardown: every run's
    assert all("/namespaces/hft/" in r.url.path for r in emulator.requests() if r.method != "GET")
    assert cluster.sweep(keep_run_id=None) == []


def test_a_stuck_finalizer_is_reported_with_the_command_that_releases_it(
    clusters: Any, emulator: Any, emulator_thread: Any, kubeconfig: str
) -> None:
    def seed() -> None:
        emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "stuck-stress"] = {
            "kind": "StressChaos",
            "metadata": {
                "name": "stuck-stress",
                "namespace": "hft",
                "labels": {**OURS, "hftk8s.io/run-id": "killed"},
                "finalizers": ["chaos-mesh/records"],
            },
        }
        emulator.stuck_finalizers.add("stuck-stress")  # chaos-controller-manager never recovers it

    emulator_thread.call(seed)
    cluster = clusters(finalizer_timeout=0.5)
    started = time.monotonic()
    (report,) = cluster.sweep(keep_run_id=None)
    assert time.monotonic() - started < 3.0  # bounded: reported, not waited on
    assert report.startswith("StressChaos/stuck-stress STUCK: still present 0.5s after its deletion")
    assert "finalizers ['chaos-mesh/records']" in report
    assert report.endswith(f"release it with `{FORCE}`")
    # the command does what it says: a merge patch of the finalizers lets the API server drop it
    cluster.api.request(
        "PATCH",
        "/apis/chaos-mesh.org/v1alpha1/namespaces/hft/stresschaos/stuck-stress",
        what="release the finalizers",
        body={"metadata": {"finalizers": []}},
        content_type="application/merge-patch+json",
    )
    assert emulator.objects["chaos-mesh.org/v1alpha1/stresschaos", "hft", "stuck-stress"].deleted
