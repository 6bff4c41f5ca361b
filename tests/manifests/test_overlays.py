"""What each overlay adds to the base: kind's NodePorts and cluster config, OrbStack's LoadBalancers
and field-report budget, the kube-state-metrics add-on, and multinode's shards, spread and budgets."""

from __future__ import annotations

import pytest
import yaml
from hft_platform.settings import load_settings
from manifest_support import (
    ADDON_LABEL,
    by_kind,
    container,
    env_of,
    pod_spec,
    render,
    replicas,
    total_requests,
    workloads,
)

from pytest_hftk8s import manifests
from pytest_hftk8s.cluster.local import model

KIND_CONFIG = manifests.manifests_dir() / "overlays" / "kind" / "kind-cluster.yaml"
KSM_IMAGE = "registry.k8s.io/kube-state-metrics/kube-state-metrics"


def _service(profile: str, name: str) -> dict:
    return by_kind(render(profile), "Service")[name]["spec"]


def test_local_and_scale4_run_what_the_local_backend_runs() -> None:
    for profile, backends in (("local", 1), ("scale4", 4)):
        objects = render(profile)
        assert set(workloads(objects)) == {"backend", "engine", "nginx", "prometheus", "postgres", "redis"}
        assert {n: replicas(w) for n, w in workloads(objects).items()} == {
            "backend": backends, "engine": 1, "nginx": 1, "prometheus": 1, "postgres": 1, "redis": 1,
        }  # fmt: skip
        assert all(
            s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in by_kind(objects, "Service").values()
        )


def test_kind_nodeports_are_the_ports_the_kind_cluster_maps_to_loopback() -> None:
    nginx, prometheus = _service("kind", "nginx"), _service("kind", "prometheus")
    assert (nginx["type"], [p["nodePort"] for p in nginx["ports"]]) == ("NodePort", [30080])
    assert (prometheus["type"], [p["nodePort"] for p in prometheus["ports"]]) == ("NodePort", [30090])
    assert [p["port"] for p in nginx["ports"]] == [80]
    assert [p["port"] for p in prometheus["ports"]] == [9090]
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert (config["apiVersion"], config["kind"]) == ("kind.x-k8s.io/v1alpha4", "Cluster")
    mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
    assert {
        (m["containerPort"], m["hostPort"], m["listenAddress"], m.get("protocol", "TCP")) for m in mappings
    } == {
        (30080, 30080, "127.0.0.1", "TCP"),
        (30090, 30090, "127.0.0.1", "TCP"),
    }
    assert [n["role"] for n in config["nodes"]] == ["control-plane"]


def test_orbstack_exposes_nginx_and_prometheus_as_load_balancers() -> None:
    assert _service("orbstack", "nginx")["type"] == "LoadBalancer"
    assert _service("orbstack", "prometheus")["type"] == "LoadBalancer"
    assert [p["port"] for p in _service("orbstack", "nginx")["ports"]] == [80]


def test_orbstack_fits_the_field_reports_single_node() -> None:
    """~1500m CPU and ~12 GB were left for the platform on the report's 4-core OrbStack node."""
    objects = render("orbstack")
    cpu, memory = total_requests(objects)
    assert cpu <= 1500, f"{cpu}m requested"
    assert memory <= 12 * 1024
    for name, w in workloads(objects).items():
        required = (pod_spec(w).get("affinity") or {}).get("podAntiAffinity", {})
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in required, name


def _custom_resource_state(objects: list[dict], ksm: dict) -> dict:
    """The Custom Resource State config the kube-state-metrics container reads (its file flag's mount)."""
    flag = "--custom-resource-state-config-file="
    path = next(a for a in ksm["args"] if a.startswith(flag)).removeprefix(flag)
    mount = next(m for m in ksm["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(
        v for v in pod_spec(workloads(objects)["kube-state-metrics"])["volumes"] if v["name"] == mount["name"]
    )
    data = by_kind(objects, "ConfigMap")[volume["configMap"]["name"]]["data"]
    return yaml.safe_load(data[path.removeprefix(mount["mountPath"] + "/")])


@pytest.mark.parametrize("profile", ["kind", "orbstack", "multinode"])
def test_kube_state_metrics_exports_each_chaos_experiment_as_hftk8s_chaos_injected(profile: str) -> None:
    """The dashboards' chaos annotation reads hftk8s_chaos_injected{namespace, kind, name}; on a cluster
    kube-state-metrics makes it from each Chaos Mesh kind the plugin creates (its CRDs are vendored)."""
    objects = render(profile)
    config = _custom_resource_state(objects, container(objects, "kube-state-metrics"))
    assert config["kind"] == "CustomResourceStateMetrics"
    crds = [yaml.safe_load(p.read_text()) for p in sorted((manifests.chaos_dir() / "crds").glob("*.yaml"))]
    plurals = {c["spec"]["names"]["kind"]: c["spec"]["names"]["plural"] for c in crds}
    versions = {c["spec"]["names"]["kind"]: {v["name"] for v in c["spec"]["versions"]} for c in crds}
    kinds = set()
    for resource in config["spec"]["resources"]:
        gvk = resource["groupVersionKind"]
        kinds.add(gvk["kind"])
        assert gvk["group"] == "chaos-mesh.org"
        assert gvk["version"] in versions[gvk["kind"]]
        assert resource["resourcePlural"] == plurals[gvk["kind"]]
        assert resource["commonLabels"] == {"kind": gvk["kind"]}
        assert resource["labelsFromPath"] == {
            "namespace": ["metadata", "namespace"],
            "name": ["metadata", "name"],
        }
        (metric,) = resource["metrics"]
        assert f"{resource['metricNamePrefix']}_{metric['name']}" == "hftk8s_chaos_injected"
        assert metric["each"]["gauge"]["path"] == ["status", "conditions", "[type=AllInjected]", "status"]
    assert kinds == {"StressChaos", "PodChaos", "NetworkChaos"}


@pytest.mark.parametrize("profile", ["kind", "orbstack", "multinode"])
def test_cluster_overlays_bring_kube_state_metrics_as_a_droppable_add_on(profile: str) -> None:
    objects = render(profile)
    addon = [o for o in objects if o["metadata"].get("labels", {}).get(ADDON_LABEL) == "kube-state-metrics"]
    assert {o["kind"] for o in addon} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
        "NetworkPolicy",
    }
    named = [o for o in objects if "kube-state-metrics" in o["metadata"]["name"]]
    assert named == addon  # nothing of the add-on lacks the label (the session drops by label) ...
    rest = yaml.safe_dump([o for o in objects if o not in addon])
    assert "serviceAccountName: kube-state-metrics" not in rest  # ... and nothing else needs it
    # Its one cluster-wide grant reads CRD definitions (Custom Resource State resolves kinds by them).
    (cluster_role,) = [
        o for o in objects if o["kind"] == "ClusterRole" and "kube-state" in o["metadata"]["name"]
    ]
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    ]
    binding = by_kind(objects, "ClusterRoleBinding")[cluster_role["metadata"]["name"]]
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": "hft"}
    ]
    ksm = container(objects, "kube-state-metrics")
    assert ksm["image"].rpartition(":")[0] == KSM_IMAGE
    assert "--namespaces=$(POD_NAMESPACE)" in ksm["args"]
    assert env_of(ksm)["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = by_kind(objects, "Role")["kube-state-metrics"]
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    resources = next(a for a in ksm["args"] if a.startswith("--resources=")).split("=", 1)[1].split(",")
    group = {"pods": ""}
    chaos_kinds = {r["resourcePlural"] for r in _custom_resource_state(objects, ksm)["spec"]["resources"]}
    assert chaos_kinds == {"stresschaos", "podchaos", "networkchaos"}
    assert granted == {(group.get(r, "apps"), r, v) for r in resources for v in ("list", "watch")} | {
        ("chaos-mesh.org", r, v) for r in chaos_kinds for v in ("list", "watch")
    }
    service = by_kind(objects, "Service")["kube-state-metrics"]
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "kube-state-metrics"
    assert "http-metrics" in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("profile", ["local", "scale4"])
def test_the_local_backend_runs_its_own_kube_state_metrics(profile: str) -> None:
    assert "kube-state-metrics" not in workloads(render(profile))


# -- multinode -----------------------------------------------------------------------------------


def _shard_map(objects: list[dict]) -> tuple[list[tuple[str, list[str]]], list[str], list[str]]:
    data = by_kind(objects, "ConfigMap")["hft-config"]["data"]
    engines = [(e.split("=")[0], e.split("=")[1].split(",")) for e in data["engine-shards"].split(";")]
    return engines, data["db-shards"].split(","), data["symbols"].split(",")


def test_multinode_runs_8_backends_3_engine_shards_and_3_database_shards() -> None:
    objects = render("multinode")
    w = workloads(objects)
    assert replicas(w["backend"]) == 8
    assert (w["engine"]["kind"], replicas(w["engine"])) == ("StatefulSet", 3)
    assert (w["postgres"]["kind"], replicas(w["postgres"])) == ("StatefulSet", 3)
    engines, databases, symbols = _shard_map(objects)
    assert [host for host, _ in engines] == [f"engine-{i}.engine:9000" for i in range(3)]
    assert databases == [f"postgres-{i}.postgres:5432" for i in range(3)]
    owned = [s for _, syms in engines for s in syms]
    assert sorted(owned) == sorted(symbols)  # a partition: every symbol ...
    assert len(owned) == len(set(owned))  # ... on exactly one shard
    assert all(syms for _, syms in engines)


def _pod_env(objects: list[dict], workload: str, pod: str, index: int) -> dict[str, str]:
    """The environment kubelet gives ``pod`` (the session's Secret stands in as 'pw')."""
    configmaps, _ = model.config_data(objects)
    tmpl = next(t for t in model.pod_templates(objects, namespace="hft") if t.workload == workload)
    fields = {
        "metadata.name": pod,
        "status.podIP": "10.0.0.1",
        "labels/apps.kubernetes.io/pod-index": str(index),
    }
    return model.resolve_env(tmpl.containers[0], pod_fields=fields, configmaps=configmaps, secrets={"hft-db": {"password": "pw"}})  # fmt: skip


def test_each_engine_shard_owns_its_symbols_and_journals_to_its_database() -> None:
    """The platform's own settings parser, on the environment each pod gets, agrees with the map."""
    objects = render("multinode")
    engines, databases, _ = _shard_map(objects)
    for i in range(3):
        settings = load_settings(_pod_env(objects, "engine", f"engine-{i}", i))
        assert list(settings.symbols) == engines[i][1]
        assert f"{settings.db_host}:{settings.db_port}" == databases[i]
        assert settings.id_shard == (i, 3)
        assert settings.shard_name == f"engine-{i}"
    backend = load_settings(_pod_env(objects, "backend", "backend-x", 0))
    assert [f"{d.host}:{d.port}" for d in backend.order_databases] == databases
    assert f"{backend.db_host}:{backend.db_port}" == databases[0]  # users live in shard 0
    assert [s.address for s in backend.shards] == [host for host, _ in engines]


def test_multinode_engine_is_the_base_engine_apart_from_its_shard_environment() -> None:
    sharded, single = container(render("multinode"), "engine"), container(render("local"), "engine")
    strip = lambda c: {k: v for k, v in c.items() if k != "env"}  # noqa: E731
    assert strip(sharded) == strip(single)
    assert set(env_of(sharded)) - set(env_of(single)) == {
        "HFT_SHARD_INDEX",
        "HFT_ENGINE_SHARDS",
        "HFT_DB_SHARDS",
    }
    assert set(env_of(single)) - set(env_of(sharded)) == {"HFT_DB_HOST", "HFT_DB_PORT"}  # from its shard
    base, multi = (
        pod_spec(workloads(render("local"))["engine"]),
        pod_spec(workloads(render("multinode"))["engine"]),
    )
    rest = lambda spec: {k: v for k, v in spec.items() if k not in ("containers", "affinity")}  # noqa: E731
    assert rest(multi) == rest(base)


def test_multinode_places_shards_apart_and_budgets_one_of_each() -> None:
    objects = render("multinode")
    w = workloads(objects)
    pg = pod_spec(w["postgres"])["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert pg == [
        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "postgres"}}}
    ]
    assert replicas(w["postgres"]) <= 3  # the field report's minimum of 3 nodes fits one shard each
    engine = pod_spec(w["engine"])["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert engine[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    spread = pod_spec(w["backend"])["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    assert spread[0]["maxSkew"] == 1
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert {n: b["spec"]["maxUnavailable"] for n, b in budgets.items()} == {
        "backend": 1, "engine": 1, "postgres": 1, "nginx": 1,
    }  # fmt: skip


def test_multinode_fits_the_field_reports_three_nodes() -> None:
    """3 nodes of 2 CPU / 4 GB, 30 GB of database storage."""
    objects = render("multinode")
    cpu, memory = total_requests(objects)
    assert cpu <= 3 * 2000 * 0.75, f"{cpu}m requested: leave a quarter for the system pods"
    assert memory <= 3 * 4096 * 0.75
    claims = workloads(objects)["postgres"]["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]
    assert claims["requests"]["storage"] == "10Gi"


def test_no_database_client_is_pointed_at_the_sharded_service_name() -> None:
    """`postgres` resolves to every shard in multinode: each client names its database."""
    for name, c in (
        (n, c) for n, w in workloads(render("multinode")).items() for c in pod_spec(w)["containers"]
    ):
        assert env_of(c).get("HFT_DB_HOST", {}).get("value") != "postgres", name


def test_the_local_backend_keeps_every_mount_but_the_tmp_it_shares() -> None:
    """Its runtime directory lives in the host's /tmp, so an emptyDir there is left out (model.py)."""
    objects = render("local")
    templates = {t.workload: t for t in model.pod_templates(objects, namespace="hft")}
    for name, w in workloads(objects).items():
        rendered = {m["mountPath"] for c in pod_spec(w)["containers"] for m in c.get("volumeMounts", [])}
        local = {m.mount_path for c in templates[name].containers for m in c.mounts}
        assert local == rendered - {"/tmp"}, name
    assert {m.mount_path for m in templates["postgres"].containers[0].mounts} >= {"/var/run/postgresql"}
