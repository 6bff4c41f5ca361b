"""Hardening on every profile: non-root pods with a read-only root filesystem (and a writable volume
wherever the image writes), NetworkPolicies that allow exactly the platform's connections, and
PodDisruptionBudgets and placement rules that select real pods."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest
from manifest_support import (
    Peer,
    allowed,
    by_kind,
    container,
    env_of,
    peers,
    pod_spec,
    reachability,
    replicas,
    selected_workloads,
    workloads,
)

DOCKERFILES = Path(__file__).resolve().parents[2] / "platform" / "docker"
#: The users the upstream images define (their Dockerfiles; not checkable offline).
UPSTREAM_USERS = {
    "nginx": 101,
    "postgres": 999,
    "redis": 999,
    "prometheus": 65534,
    "kube-state-metrics": 65534,
}
#: Workloads that talk to the API server (service discovery, kube-state-metrics' watches).
API_CLIENTS = {"prometheus", "kube-state-metrics"}

#: (from, to, port) the platform needs, and nothing else: the client reaches nginx and Prometheus,
#: only nginx (and Prometheus' scrape) reach the backends, only the backends reach the engine and the
#: data stores, the engine reaches PostgreSQL. Prometheus' egress is open (API server, add-ons).
CONNECTIONS = {
    ("outside", "nginx", 80),
    ("outside", "prometheus", 9090),
    ("prometheus", "nginx", 80),
    ("nginx", "backend", 8000),
    ("prometheus", "backend", 8000),
    ("backend", "engine", 9000),
    ("prometheus", "engine", 9100),
    ("backend", "postgres", 5432),
    ("engine", "postgres", 5432),
    ("backend", "redis", 6379),
}
KSM_CONNECTIONS = {
    ("prometheus", "kube-state-metrics", 8080),
    ("kube-state-metrics", "nginx", 80),  # its egress is open, like Prometheus' (the API server)
    ("kube-state-metrics", "prometheus", 9090),
}


def test_pods_run_as_non_root_without_privileges(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    for name, w in workloads(objects).items():
        pod = pod_spec(w)
        sc = pod.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, f"{profile}: {name}"
        assert isinstance(sc.get("runAsUser"), int), f"{profile}: {name}"
        assert sc["runAsUser"] > 0, f"{profile}: {name}"
        assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{profile}: {name}"
        assert pod.get("automountServiceAccountToken", True) is (name in API_CLIENTS), f"{profile}: {name}"
        for c in pod["containers"]:
            csc = c.get("securityContext", {})
            assert csc.get("allowPrivilegeEscalation") is False, f"{profile}: {name}/{c['name']}"
            assert csc.get("capabilities") == {"drop": ["ALL"]}, f"{profile}: {name}/{c['name']}"
            assert csc.get("readOnlyRootFilesystem") is True, f"{profile}: {name}/{c['name']}"
            assert not csc.get("privileged"), f"{profile}: {name}/{c['name']}"


def _dockerfile_user(image: str) -> int:
    text = (DOCKERFILES / f"{image}.Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)", text, re.MULTILINE)
    assert users, f"{image}.Dockerfile names no numeric USER"
    return int(users[-1])


def test_each_pod_runs_as_its_images_user(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    expected = {
        **UPSTREAM_USERS,
        "backend": _dockerfile_user("backend"),
        "engine": _dockerfile_user("engine"),
    }
    for name, w in workloads(objects).items():
        assert pod_spec(w)["securityContext"]["runAsUser"] == expected[name], name


def _writable_mounts(objects: list[dict], workload: str) -> list[str]:
    pod = pod_spec(workloads(objects)[workload])
    writable = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    writable |= {
        t["metadata"]["name"] for t in workloads(objects)[workload]["spec"].get("volumeClaimTemplates", [])
    }
    return [
        m["mountPath"]
        for m in container(objects, workload).get("volumeMounts", [])
        if m["name"] in writable and not m.get("readOnly")
    ]


def _under(path: str, mounts: list[str]) -> bool:
    path = posixpath.normpath(path)
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def test_every_path_an_image_writes_is_a_writable_volume(rendered: tuple[str, list[dict]]) -> None:
    """The root filesystem is read-only, so each place a server writes must be a volume."""
    _, objects = rendered
    conf = by_kind(objects, "ConfigMap")["nginx-conf"]["data"]["nginx.conf"]
    pid = re.search(r"^\s*pid\s+([^;]+);", conf, re.MULTILINE)
    temps = re.findall(r"^\s*\w+_temp_path\s+([^;\s]+)", conf, re.MULTILINE)
    assert pid
    assert len(temps) == 5
    writes = {
        "nginx": [posixpath.dirname(pid.group(1)), *temps],
        "postgres": [env_of(container(objects, "postgres"))["PGDATA"]["value"], "/var/run/postgresql"],
        "redis": ["/data"],
        "prometheus": [
            a.split("=", 1)[1]
            for a in container(objects, "prometheus")["args"]
            if a.startswith("--storage.tsdb.path=")
        ],
        "backend": ["/tmp"],
        "engine": ["/tmp"],
    }
    for workload, paths in writes.items():
        mounts = _writable_mounts(objects, workload)
        for path in paths:
            assert _under(path, mounts), f"{workload} writes {path}; writable volumes: {mounts}"


def test_nginx_may_listen_on_port_80_as_its_user(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    sysctls = pod_spec(workloads(objects)["nginx"])["securityContext"].get("sysctls", [])
    assert {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"} in sysctls


def test_network_policies_allow_exactly_the_platforms_connections(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    policies = by_kind(objects, "NetworkPolicy")
    default_deny = policies["default-deny"]["spec"]
    assert default_deny["podSelector"] == {}
    assert set(default_deny["policyTypes"]) == {"Ingress", "Egress"}
    expected = CONNECTIONS | (KSM_CONNECTIONS if "kube-state-metrics" in workloads(objects) else set())
    assert reachability(objects) == expected, profile


def test_every_pod_may_resolve_names_and_only_api_clients_reach_out(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    policies = list(by_kind(objects, "NetworkPolicy").values())
    outside = Peer("outside", None, {})
    for name, pod in peers(objects).items():
        if pod.labels is None:
            continue
        assert allowed(policies, pod, outside, 53), f"{name} cannot reach DNS"
        assert allowed(policies, pod, outside, 443) is (name in API_CLIENTS), name


def test_network_policy_selectors_match_rendered_pods(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    for name, policy in by_kind(objects, "NetworkPolicy").items():
        spec = policy["spec"]
        assert selected_workloads(objects, spec["podSelector"]), f"policy {name} selects no pods"
        for rule in [*spec.get("ingress", []), *spec.get("egress", [])]:
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer:
                    assert selected_workloads(objects, peer["podSelector"]), f"policy {name}: {peer}"


def test_disruption_budgets_select_pods_and_never_block_a_drain(rendered: tuple[str, list[dict]]) -> None:
    profile, objects = rendered
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert "backend" in budgets
    for name, pdb in budgets.items():
        chosen = selected_workloads(objects, pdb["spec"]["selector"])
        assert chosen, f"{profile}: PDB {name} selects no pods"
        pods = sum(replicas(workloads(objects)[w]) for w in chosen)
        if "maxUnavailable" in pdb["spec"]:
            assert int(pdb["spec"]["maxUnavailable"]) >= 1, f"{profile}: PDB {name}"
        else:
            assert int(pdb["spec"]["minAvailable"]) < pods, f"{profile}: PDB {name} blocks every eviction"


@pytest.mark.parametrize("field", ["affinity", "topologySpreadConstraints"])
def test_placement_rules_select_rendered_pods(rendered: tuple[str, list[dict]], field: str) -> None:
    _, objects = rendered
    for name, w in workloads(objects).items():
        rules = pod_spec(w).get(field)
        if not rules:
            continue
        terms = rules if field == "topologySpreadConstraints" else [
            t.get("podAffinityTerm", t)
            for kind in rules.values()
            for when in kind.values()
            for t in when
        ]  # fmt: skip
        for term in terms:
            assert selected_workloads(objects, term["labelSelector"]), f"{name} {field}: {term}"
