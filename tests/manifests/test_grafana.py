"""The optional Grafana component (``render(profile, components=["grafana"])``, ``--hft-grafana``):
it renders with the pinned kubectl onto every kubernetes overlay, validates against the target
schemas, runs hardened like every other pod, reaches only Prometheus, and provisions exactly the
generated dashboards against the platform's Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from manifest_support import by_kind, container, pod_spec, reachability, workloads
from test_render import TARGET

from pytest_hftk8s import manifests, settings
from pytest_hftk8s.errors import ConfigError

#: The overlays of real kube contexts (local and emulated run pods as processes: no Grafana there).
KUBE_PROFILES = ("kind", "orbstack", "multinode")
GRAFANA_UID = 472  # the grafana/grafana image's user
DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


@pytest.fixture(scope="module", params=KUBE_PROFILES)
def with_grafana(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, manifests.render(request.param, components=["grafana"])


def _configmap_file(objects: list[dict], name: str, key: str) -> str:
    return by_kind(objects, "ConfigMap")[name]["data"][key]


def test_the_component_adds_grafana_and_nothing_else(with_grafana: tuple[str, list[dict]]) -> None:
    profile, objects = with_grafana
    without = manifests.render(profile)
    added = [o for o in objects if o not in without]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in added) == [
        ("ConfigMap", "grafana-dashboards"),
        ("ConfigMap", "grafana-provisioning"),
        ("Deployment", "grafana"),
        ("NetworkPolicy", "grafana"),
        ("Service", "grafana"),
    ]
    assert len(objects) == len(without) + len(added)  # nothing of the overlay changed
    assert {o["metadata"]["namespace"] for o in added} == {"hft"}
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hftk8s" for o in added)


@pytest.mark.parametrize("version", [TARGET, kubernetes_validate.latest_version()])
def test_every_object_is_valid_against_the_schemas(
    with_grafana: tuple[str, list[dict]], version: str
) -> None:
    _, objects = with_grafana
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_grafana_is_pinned_and_hardened(with_grafana: tuple[str, list[dict]]) -> None:
    _, objects = with_grafana
    pod = pod_spec(workloads(objects)["grafana"])
    image = container(objects, "grafana")["image"]
    repository, _, tag = image.rpartition(":")
    assert repository == "grafana/grafana"
    assert tag[:1].isdigit()  # a release tag, never latest
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == GRAFANA_UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False  # it never talks to the API server
    c = container(objects, "grafana")
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(c)
    # read-only root: every place Grafana writes is an emptyDir
    env = {e["name"]: e.get("value") for e in c["env"]}
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty}
    assert {env["GF_PATHS_DATA"], env["GF_PATHS_LOGS"], "/tmp"} <= writable
    # nobody logs in, so no password exists to commit or leak; anonymous users may only view
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert not [name for name in env if "PASSWORD" in name]


def test_grafana_reaches_prometheus_and_nothing_else(with_grafana: tuple[str, list[dict]]) -> None:
    profile, objects = with_grafana
    allowed = reachability(objects)
    assert ("grafana", "prometheus", 9090) in allowed
    assert ("outside", "grafana", 3000) in allowed
    assert {(s, d, p) for s, d, p in allowed if s == "grafana"} == {("grafana", "prometheus", 9090)}
    # Its port is open like nginx's: to the outside, and to the pods whose egress is open anyway.
    open_to = {s for s, d, _ in allowed if d == "nginx"}
    assert "outside" in open_to
    assert {(s, d, p) for s, d, p in allowed if d == "grafana"} == {(s, "grafana", 3000) for s in open_to}
    mine = {(s, d, p) for s, d, p in allowed if "grafana" in (s, d)}
    assert allowed - mine == reachability(manifests.render(profile))  # nothing else changed


def test_grafana_reads_the_platforms_prometheus(with_grafana: tuple[str, list[dict]]) -> None:
    _, objects = with_grafana
    (source,) = yaml.safe_load(_configmap_file(objects, "grafana-provisioning", "datasources.yaml"))[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    service = by_kind(objects, "Service")["prometheus"]
    assert source["url"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_grafana_provisions_exactly_the_generated_dashboards(with_grafana: tuple[str, list[dict]]) -> None:
    _, objects = with_grafana
    data = by_kind(objects, "ConfigMap")["grafana-dashboards"]["data"]
    assert data == {p.name: p.read_text() for p in sorted(DASHBOARDS.glob("*.json"))}
    assert json.loads(data["platform.json"])["uid"] == "hftk8s-platform"
    (provider,) = yaml.safe_load(_configmap_file(objects, "grafana-provisioning", "dashboards.yaml"))[
        "providers"
    ]
    c = container(objects, "grafana")
    pod = pod_spec(workloads(objects)["grafana"])
    volume = next(
        v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "grafana-dashboards"
    )
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume]
    assert provider["options"]["path"] == mount["mountPath"]
    assert provider["allowUiUpdates"] is False
    provisioning = next(e["value"] for e in c["env"] if e["name"] == "GF_PATHS_PROVISIONING")
    mounted = {m["mountPath"] for m in c["volumeMounts"] if m["name"] == "provisioning"}
    assert mounted == {
        f"{provisioning}/datasources/datasources.yaml",
        f"{provisioning}/dashboards/dashboards.yaml",
    }


def test_an_unknown_component_names_the_optional_ones() -> None:
    with pytest.raises(ConfigError, match="grafana"):
        manifests.render("kind", components=["no-such-component"])


def test_components_and_images_combine_in_one_wrapper() -> None:
    objects = manifests.render(
        "kind", components=["grafana"], images={"hftk8s/backend": "registry.example/hftk8s/backend:1.2.3"}
    )
    assert "grafana" in workloads(objects)
    assert container(objects, "backend")["image"] == "registry.example/hftk8s/backend:1.2.3"


@pytest.mark.parametrize("cluster", ["local", "emulated"])
def test_grafana_is_refused_where_pods_are_processes_and_says_where_the_dashboards_go(
    cluster: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"Debian has no Grafana package.*report directory"):
        settings.resolve({"hft_cluster": cluster, "hft_grafana": True}, {}, rootpath=tmp_path, environ={})
    kube = settings.resolve(
        {
            "hft_cluster": "kind",
            "hft_grafana": True,
            "hft_grafana_url": settings.parse_grafana_url("http://g:3000/"),
        },
        {},
        rootpath=tmp_path,
        environ={},
    )
    assert (kube.grafana, kube.grafana_url) == (True, "http://g:3000")
