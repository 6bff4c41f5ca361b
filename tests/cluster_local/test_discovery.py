"""Service endpoints and cluster DNS content derived from pod state (no processes)."""

from __future__ import annotations

from pathlib import Path

from pytest_hftk8s.cluster.local import discovery, model
from pytest_hftk8s.cluster.local.pod import EventLog, Pod


def _pods(objects: list[dict]) -> list[Pod]:
    pods = []
    for i, tmpl in enumerate(model.pod_templates(objects, namespace="n")):
        for j, name in enumerate(tmpl.pod_names()):
            pods.append(
                Pod(
                    name=name,
                    template=tmpl,
                    ip=f"127.0.9.{10 * i + j + 2}",
                    directory=Path("/nonexistent"),
                    events=EventLog(),
                )
            )
    return pods


def _objects(*, headless: bool) -> list[dict]:
    dep = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
        },
    }
    svc = {
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    if headless:
        svc["spec"]["clusterIP"] = "None"
    return [dep, svc]


def _resolved(text: str, name: str) -> list[str]:
    return [
        line.split()[0] for line in text.splitlines() if not line.startswith("#") and name in line.split()[1:]
    ]


def test_clusterip_service_resolves_before_ready_then_to_ready_pods_only() -> None:
    objects = _objects(headless=False)
    pods, services = _pods(objects), model.services(objects, namespace="n")
    assert _resolved(discovery.hosts_content(pods, services), "web.n.svc.cluster.local") == [
        "127.0.9.2",
        "127.0.9.3",
    ]
    pods[1].started = True  # no containers: started means ready
    assert _resolved(discovery.hosts_content(pods, services), "web") == ["127.0.9.3"]
    rows = discovery.endpoint_rows(services[0], pods)
    assert [(r.address, r.ready) for r in rows] == [("127.0.9.2", False), ("127.0.9.3", True)]


def test_headless_service_lists_only_ready_pods() -> None:
    objects = _objects(headless=True)
    pods, services = _pods(objects), model.services(objects, namespace="n")
    assert _resolved(discovery.hosts_content(pods, services), "web") == []
    for p in pods:
        p.started = True
    assert _resolved(discovery.hosts_content(pods, services), "web.n") == ["127.0.9.2", "127.0.9.3"]


def test_prometheus_discovery_includes_the_exporter_as_ksm_and_node() -> None:
    objects = _objects(headless=False)
    sd = discovery.prometheus_discovery(
        _pods(objects), model.services(objects, namespace="n"), exporter_address="127.0.9.1:8080"
    )
    assert [n.address for n in sd.nodes] == ["127.0.9.1:8080"]
    ksm = [e for e in sd.endpoints if e.service == "kube-state-metrics"]
    assert [(e.namespace, e.address, e.port, e.port_name) for e in ksm] == [
        ("kube-system", "127.0.9.1", 8080, "http-metrics")
    ]
    assert {p.controller_kind for p in sd.pods} == {"ReplicaSet"}
