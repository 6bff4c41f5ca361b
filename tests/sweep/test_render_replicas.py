"""``manifests.render(replicas=...)``: any overlay rendered with N backends, through kustomize's
``replicas:`` in the wrapper kustomization (the sweep's deploys), alone and with ``images:``."""

from __future__ import annotations

import pytest

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import ConfigError


def _replicas(objects: list[dict]) -> dict[str, int]:
    return {
        o["metadata"]["name"]: o["spec"].get("replicas", 1)
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }


@pytest.mark.parametrize("profile", ["local", "scale4"])
@pytest.mark.parametrize("n", [1, 2, 8])
def test_any_overlay_renders_with_n_backends(profile: str, n: int) -> None:
    plain = manifests.render(profile)
    scaled = manifests.render(profile, replicas={"backend": n})
    assert _replicas(scaled) == {**_replicas(plain), "backend": n}
    # Nothing else changes: the same objects, only the backend's replica count.
    assert [(o["kind"], o["metadata"]["name"]) for o in scaled] == [
        (o["kind"], o["metadata"]["name"]) for o in plain
    ]


def test_replicas_and_images_together() -> None:
    ref = "registry.test:5000/hftk8s/backend:0.1.0-abc123"
    objects = manifests.render("local", images={"hftk8s/backend": ref}, replicas={"backend": 3})
    backend = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "backend")
    assert backend["spec"]["replicas"] == 3
    assert {c["image"] for c in backend["spec"]["template"]["spec"]["containers"]} == {ref}


def test_unknown_workload_or_bad_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bakend"):
        manifests.render("local", replicas={"bakend": 2})
    with pytest.raises(ConfigError, match="replica count >= 0 for workload 'backend'"):
        manifests.render("local", replicas={"backend": -1})
