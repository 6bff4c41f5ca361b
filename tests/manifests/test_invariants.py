"""Invariants the platform relies on, checked on every rendered profile."""

from __future__ import annotations

import yaml


def _containers(objects: list[dict]) -> list[tuple[str, dict]]:
    return [
        (o["metadata"]["name"], c)
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_the_platform_is_complete(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    assert set(_by_kind(objects, "Deployment")) == {"backend", "engine", "nginx", "prometheus"}
    assert set(_by_kind(objects, "StatefulSet")) == {"postgres", "redis"}
    assert {"postgres", "redis", "engine", "backend", "nginx", "prometheus"} <= set(
        _by_kind(objects, "Service")
    )
    assert {"nginx-conf", "prometheus-config"} <= set(_by_kind(objects, "ConfigMap"))
    assert "hft-db" in _by_kind(objects, "Secret")
    namespaced = [o for o in objects if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"hft"}


def test_every_container_has_limits_requests_and_three_probes(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    for workload, c in _containers(objects):
        res = c.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(section, {})), f"{workload}/{c['name']} {section}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in c, f"{workload}/{c['name']} lacks {probe}"


def test_backend_sizing_matches_the_field_report(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    backend = dict(_containers(objects))["backend"]
    assert backend["resources"] == {
        "requests": {"cpu": "150m", "memory": "64Mi"},
        "limits": {"cpu": "300m", "memory": "128Mi"},
    }
    assert backend["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert backend["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_replicas_per_profile(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    deployments = _by_kind(objects, "Deployment")
    expected_backends = {"local": 1, "scale4": 4}.get(profile)
    if expected_backends is not None:
        assert deployments["backend"]["spec"]["replicas"] == expected_backends
    assert deployments["engine"]["spec"]["replicas"] == 1


def test_platform_env_follows_the_contract(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    containers = dict(_containers(objects))
    for name in ("backend", "engine"):
        env = {e["name"]: e for e in containers[name]["env"]}
        assert env["HFT_BIND_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    for name in ("backend", "engine"):  # both talk to PostgreSQL with the Secret's password
        env = {e["name"]: e for e in containers[name]["env"]}
        assert env["HFT_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "hft-db", "key": "password"}
        assert env["HFT_DB_HOST"]["value"] == "postgres"
    pg_env = {e["name"]: e for e in containers["postgres"]["env"]}
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "hft-db"


def test_every_named_probe_and_service_port_exists(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    ports_by_app: dict[str, set] = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            names = ports_by_app.setdefault(labels["app"], set())
            for c in o["spec"]["template"]["spec"]["containers"]:
                for p in c.get("ports", []):
                    names |= {p["name"], p["containerPort"]}
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    handler = c[probe].get("httpGet") or c[probe].get("tcpSocket")
                    if handler:
                        assert handler["port"] in names, f"{c['name']} {probe} port {handler['port']}"
    for svc in _by_kind(objects, "Service").values():
        app = svc["spec"]["selector"]["app"]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports_by_app[app], f"service {svc['metadata']['name']}"


def test_nginx_upstream_is_the_backend_service_with_keepalive(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    conf = _by_kind(objects, "ConfigMap")["nginx-conf"]["data"]["nginx.conf"]
    assert "server backend:8000;" in conf
    assert "keepalive " in conf


def test_prometheus_config_relabels_to_namespace_pod_container(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    config = yaml.safe_load(_by_kind(objects, "ConfigMap")["prometheus-config"]["data"]["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    pods = jobs["hft-pods"]
    assert pods["kubernetes_sd_configs"][0]["role"] == "pod"
    targets = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"namespace", "pod", "container", "__address__", "__metrics_path__"} <= targets
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    assert jobs["kubernetes-cadvisor"]["kubernetes_sd_configs"][0]["role"] == "node"
