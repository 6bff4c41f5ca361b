"""``manifests.render(cpu_limit_scale=...)``: a workload's CPU limits scaled through a kustomize patch
in the wrapper (the regression gate's known slowdown, ``--hft-cpu-limit-scale=backend=0.7``), with
requests lowered under the new limit, everything else as the overlay renders it, and clear errors."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from manifest_support import container, cpu_millis, pod_spec, render, workloads

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import ConfigError

#: The field report's cluster version, as in test_render.py: the scaled objects must fit it too.
TARGET = "1.33.0"
#: A CPU quantity the patch writes: whole millicores.
MILLICORES = re.compile(r"[1-9]\d*m")


def _with_cpu(objects: list[dict], workload: str, *, limit: str, request: str) -> list[dict]:
    """A copy of ``objects`` with ``workload``'s (only) container given this CPU limit and request."""
    out = copy.deepcopy(objects)
    resources = container(out, workload)["resources"]
    resources["limits"]["cpu"], resources["requests"]["cpu"] = limit, request
    return out


@pytest.mark.parametrize("profile", ["local", "emulated"])
def test_the_backend_limit_is_cut_by_30_percent_and_nothing_else_changes(profile: str) -> None:
    plain = render(profile)
    base = container(plain, "backend")["resources"]
    scaled = manifests.render(profile, cpu_limit_scale={"backend": 0.7})
    want = f"{round(cpu_millis(base['limits']['cpu']) * 0.7)}m"
    assert container(scaled, "backend")["resources"]["limits"]["cpu"] == want
    # The request (150m) stays under the new limit, so it is kept; every other field and object,
    # the other workloads included, is exactly what the unscaled overlay renders.
    assert scaled == _with_cpu(plain, "backend", limit=want, request=base["requests"]["cpu"])


def test_the_field_reports_300m_backend_becomes_210m() -> None:
    # Pinned on purpose: the A/B case is the field report's sizing cut by 30%.
    assert container(render("local"), "backend")["resources"]["limits"]["cpu"] == "300m"
    scaled = manifests.render("local", cpu_limit_scale={"backend": 0.7})
    assert container(scaled, "backend")["resources"]["limits"]["cpu"] == "210m"


@pytest.mark.parametrize("profile", ["local", "emulated"])
def test_a_request_above_the_new_limit_is_lowered_to_it(profile: str) -> None:
    plain = render(profile)
    base = container(plain, "backend")["resources"]
    assert (base["requests"]["cpu"], base["limits"]["cpu"]) == ("150m", "300m")
    scaled = manifests.render(profile, cpu_limit_scale={"backend": 0.3})
    assert scaled == _with_cpu(plain, "backend", limit="90m", request="90m")


def test_a_request_equal_to_the_new_limit_is_kept() -> None:
    scaled = manifests.render("local", cpu_limit_scale={"backend": 0.5})
    assert scaled == _with_cpu(render("local"), "backend", limit="150m", request="150m")


def test_whole_cores_statefulsets_and_factors_above_one() -> None:
    # postgres is a StatefulSet whose limit is "1" (a core, not millicores); the engine's is too.
    plain = render("local")
    scaled = manifests.render("local", cpu_limit_scale={"postgres": 0.5, "engine": 4})
    expected = _with_cpu(plain, "postgres", limit="500m", request="250m")
    expected = _with_cpu(expected, "engine", limit="4000m", request="200m")
    assert scaled == expected


def test_tiny_limits_round_to_whole_millicores_at_least_one(tmp_path: Path) -> None:
    root = _overlay(tmp_path, [("a", {"limits": {"cpu": "1.5"}}), ("b", {"limits": {"cpu": "1m"}})])
    objects = manifests.render("test", root=root, cpu_limit_scale={"app": 0.0001})
    assert [c["resources"]["limits"]["cpu"] for c in pod_spec(workloads(objects)["app"])["containers"]] == [
        "1m",  # 1500m * 0.0001 = 0.15m, rounded up to the smallest quantity
        "1m",
    ]
    objects = manifests.render("test", root=root, cpu_limit_scale={"app": 0.333})
    assert [c["resources"]["limits"]["cpu"] for c in pod_spec(workloads(objects)["app"])["containers"]] == [
        "500m",  # 1500 * 0.333 = 499.5, half up
        "1m",
    ]


def test_with_replicas_images_and_components_together() -> None:
    ref = "registry.test:5000/hftk8s/backend:0.1.0-abc123"
    objects = manifests.render(
        "local",
        images={"hftk8s/backend": ref},
        replicas={"backend": 3},
        components=["grafana"],
        cpu_limit_scale={"backend": 0.7, "grafana": 0.5},
    )
    backend = workloads(objects)["backend"]
    assert backend["spec"]["replicas"] == 3
    assert container(objects, "backend")["image"] == ref
    assert container(objects, "backend")["resources"]["limits"]["cpu"] == "210m"
    assert container(objects, "grafana")["resources"]["limits"]["cpu"] == "250m"


@pytest.mark.parametrize("profile", ["local", "emulated"])
@pytest.mark.parametrize("version", [TARGET, kubernetes_validate.latest_version()])
def test_scaled_objects_are_valid_against_the_schemas(profile: str, version: str) -> None:
    objects = manifests.render(profile, cpu_limit_scale={"backend": 0.3, "postgres": 0.7})
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)
    for name in ("backend", "postgres"):
        cpu = container(objects, name)["resources"]
        assert MILLICORES.fullmatch(cpu["limits"]["cpu"]), cpu
        assert cpu_millis(cpu["requests"]["cpu"]) <= cpu_millis(cpu["limits"]["cpu"]), cpu


def test_an_unknown_workload_names_the_overlays_workloads() -> None:
    with pytest.raises(
        ConfigError,
        match=r"expected a Deployment or StatefulSet named bakend in overlay 'local'; it has: "
        r"Deployment backend, .*StatefulSet postgres",
    ):
        manifests.render("local", cpu_limit_scale={"bakend": 0.7})


def test_a_container_without_a_cpu_limit_is_refused(tmp_path: Path) -> None:
    root = _overlay(
        tmp_path, [("limited", {"limits": {"cpu": "300m"}}), ("unlimited", {"requests": {"cpu": "1"}})]
    )
    with pytest.raises(ConfigError, match=r"CPU limit \(resources.limits.cpu\) on container 'unlimited'"):
        manifests.render("test", root=root, cpu_limit_scale={"app": 0.7})


def test_an_unreadable_cpu_quantity_is_refused(tmp_path: Path) -> None:
    root = _overlay(tmp_path, [("a", {"limits": {"cpu": "2k"}})])
    with pytest.raises(ConfigError, match=r"CPU quantity .* saw '2k'"):
        manifests.render("test", root=root, cpu_limit_scale={"app": 0.7})


@pytest.mark.parametrize("factor", [0, -0.5, 4.5, float("nan"), float("inf"), True, "0.7"])
def test_a_factor_outside_0_to_4_is_refused(factor: object) -> None:
    with pytest.raises(ConfigError, match=r"CPU limit factor in \(0, 4\] for workload 'backend'"):
        manifests.render("local", cpu_limit_scale={"backend": factor})  # type: ignore[dict-item]


def test_parse_cpu_limit_scale_reads_the_settings_strings() -> None:
    assert manifests.parse_cpu_limit_scale(["backend=0.7", " engine = 4 "]) == {"backend": 0.7, "engine": 4.0}
    assert manifests.parse_cpu_limit_scale([]) == {}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["backend=0.7", "backend=0.5"], "backend is given twice"),
        (["backend"], "expected WORKLOAD=FACTOR"),
        (["backend=fast"], "expected WORKLOAD=FACTOR"),
        (["=0.7"], "expected WORKLOAD=FACTOR"),
        (["backend=0"], r"factor in \(0, 4\]"),
        (["backend=4.01"], r"factor in \(0, 4\]"),
    ],
)
def test_parse_cpu_limit_scale_refuses_bad_items(items: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        manifests.parse_cpu_limit_scale(items)


def _overlay(tmp: Path, containers: list[tuple[str, dict]]) -> Path:
    """A manifests root with one overlay ``test``: a Deployment ``app`` with these containers' resources."""
    overlay = tmp / "overlays" / "test"
    overlay.mkdir(parents=True)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    "containers": [
                        {"name": name, "image": "busybox:1", "resources": resources}
                        for name, resources in containers
                    ]
                },
            },
        },
    }
    (overlay / "app.yaml").write_text(yaml.safe_dump(deployment))
    (overlay / "kustomization.yaml").write_text("resources:\n  - app.yaml\n")
    return tmp
