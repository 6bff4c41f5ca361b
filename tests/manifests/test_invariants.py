"""Invariants the platform and both cluster backends rely on, checked on every rendered profile."""

from __future__ import annotations

import yaml
from manifest_support import (
    LOCAL_PROVIDERS,
    PLATFORM,
    by_kind,
    container,
    containers,
    env_of,
    pod_labels,
    pod_spec,
    replicas,
    workloads,
)

#: Backend replicas per profile: local and scale4 are what the local backend runs today.
BACKENDS = {"local": 1, "scale4": 4, "kind": 1, "orbstack": 1, "emulated": 1, "multinode": 8}


def test_the_platform_is_complete(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    assert set(workloads(objects)) >= PLATFORM
    assert set(by_kind(objects, "Service")) >= PLATFORM
    assert {"nginx-conf", "prometheus-config", "hft-config"} <= set(by_kind(objects, "ConfigMap"))
    namespaced = [o for o in objects if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"hft"}


def test_no_password_is_committed(rendered: tuple[str, list[dict]]) -> None:
    """The session adds the hft-db Secret per deployment (or uses --hft-db-secret): none is rendered,
    no environment variable carries a literal password, and every reference names hft-db/password."""
    _, objects = rendered
    assert not by_kind(objects, "Secret")
    refs = []
    for workload, c in containers(objects):
        for name, item in env_of(c).items():
            if "PASSWORD" in name:
                assert "value" not in item, f"{workload}/{c['name']} {name} is a literal"
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                refs.append((workload, name, ref))
    assert refs
    assert {(r["name"], r["key"]) for _, _, r in refs} == {("hft-db", "password")}
    assert {w for w, _, _ in refs} >= {"backend", "engine", "postgres"}


def test_every_container_has_limits_requests_and_three_probes(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    for workload, c in containers(objects):
        res = c.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(section, {})), f"{workload}/{c['name']} {section}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in c, f"{workload}/{c['name']} lacks {probe}"


def test_backend_sizing_matches_the_field_report(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    backend = container(objects, "backend")
    assert backend["resources"] == {
        "requests": {"cpu": "150m", "memory": "64Mi"},
        "limits": {"cpu": "300m", "memory": "128Mi"},
    }
    assert backend["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert backend["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_replicas_per_profile(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    w = workloads(objects)
    assert replicas(w["backend"]) == BACKENDS[profile]
    assert replicas(w["engine"]) == (3 if profile == "multinode" else 1)
    assert w["engine"]["kind"] == ("StatefulSet" if profile == "multinode" else "Deployment")


def test_images_are_never_pulled_for_local_providers(rendered: tuple[str, list[dict]]) -> None:
    """Platform images are built and loaded (kind load, OrbStack's image store): never pulled first."""
    profile, objects = rendered
    if profile not in LOCAL_PROVIDERS:
        return
    for workload, c in containers(objects):
        assert c.get("imagePullPolicy") == "IfNotPresent", f"{profile}: {workload}/{c['name']}"
    images = {c["image"] for _, c in containers(objects)}
    assert {"hftk8s/backend:0.1.0", "hftk8s/engine:0.1.0"} <= images


def test_platform_env_follows_the_contract(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    for name in ("backend", "engine"):
        env = env_of(container(objects, name))
        assert env["HFT_BIND_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        assert env["HFT_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "hft-db", "key": "password"}
    if profile != "multinode":  # one database, behind the postgres Service (multinode: test_overlays)
        for name in ("backend", "engine"):
            assert env_of(container(objects, name))["HFT_DB_HOST"]["value"] == "postgres"
    pg_env = env_of(container(objects, "postgres"))
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "hft-db"


def test_every_named_probe_and_service_port_exists(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    for name, w in workloads(objects).items():
        for c in pod_spec(w)["containers"]:
            names = {x for p in c.get("ports", []) for x in (p["name"], p["containerPort"])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                handler = c[probe].get("httpGet") or c[probe].get("tcpSocket")
                if handler:
                    assert handler["port"] in names, f"{name}/{c['name']} {probe} port {handler['port']}"
    for svc in by_kind(objects, "Service").values():
        selector = svc["spec"]["selector"]
        chosen = [w for w in workloads(objects).values() if selector.items() <= pod_labels(w).items()]
        assert chosen, f"service {svc['metadata']['name']} selects no pods"
        ports = {x for w in chosen for c in pod_spec(w)["containers"] for p in c.get("ports", []) for x in (p["name"], p["containerPort"])}  # fmt: skip
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, f"service {svc['metadata']['name']} port {port['name']}"


def test_statefulsets_are_governed_by_a_headless_service(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    services = by_kind(objects, "Service")
    for name, w in workloads(objects).items():
        if w["kind"] == "StatefulSet":
            governing = services[w["spec"]["serviceName"]]
            assert governing["spec"].get("clusterIP") == "None", f"{name}'s Service is not headless"


def test_nginx_upstream_is_the_backend_service_with_keepalive(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    conf = by_kind(objects, "ConfigMap")["nginx-conf"]["data"]["nginx.conf"]
    assert "server backend:8000" in conf
    assert "keepalive " in conf


def test_prometheus_config_relabels_to_namespace_pod_container(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    config = yaml.safe_load(by_kind(objects, "ConfigMap")["prometheus-config"]["data"]["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    pods = jobs["hft-pods"]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    targets = {r.get("target_label") for r in pods["relabel_configs"]}
    assert {"namespace", "pod", "container", "__address__", "__metrics_path__"} <= targets
    ksm = jobs["kube-state-metrics"]
    assert ksm["honor_labels"] is True
    assert ksm["kubernetes_sd_configs"] == [{"role": "endpoints"}]  # wherever it runs: any namespace
    cadvisor = jobs["kubernetes-cadvisor"]
    assert cadvisor["kubernetes_sd_configs"] == [{"role": "node"}]
    assert "insecure_skip_verify" not in cadvisor["tls_config"]  # the API server's CA is verified
    replacements = {r.get("replacement") for r in cadvisor["relabel_configs"]}
    assert {"/api/v1/nodes/$1/proxy/metrics/cadvisor", "kubernetes.default.svc:443"} <= replacements


def test_prometheus_may_discover_and_use_the_node_proxy(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    role = by_kind(objects, "ClusterRole")["hft-prometheus"]
    granted = {
        (res, verb) for rule in role["rules"] for res in rule.get("resources", []) for verb in rule["verbs"]
    }
    for res in ("pods", "endpoints", "services", "nodes"):
        assert {(res, "list"), (res, "watch")} <= granted
    assert ("nodes/proxy", "get") in granted
    assert not any(verb in ("create", "update", "patch", "delete", "*") for _, verb in granted)
    binding = by_kind(objects, "ClusterRoleBinding")["hft-prometheus"]
    assert binding["roleRef"]["name"] == "hft-prometheus"
    account = pod_spec(workloads(objects)["prometheus"])["serviceAccountName"]
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("ServiceAccount", account)]
