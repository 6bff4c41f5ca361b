"""Rendering: the pinned kubectl produces schema-valid objects; errors say what to do."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import ConfigError


def test_profiles_include_local_and_scale4() -> None:
    assert {"local", "scale4"} <= set(manifests.profiles())


def test_every_object_is_valid_against_the_newest_pinned_schema(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    version = kubernetes_validate.latest_version()
    for obj in objects:
        # strict=True rejects unknown fields, which catches typos like `readinesProbe`.
        kubernetes_validate.validate(obj, version, strict=True)


def test_invalid_objects_are_rejected_by_the_validator(rendered: tuple[str, list[dict]]) -> None:
    _, objects = rendered
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="local"):
        manifests.render("no-such-profile")


def test_kustomize_failure_carries_stderr(tmp_path: Path) -> None:
    overlay = tmp_path / "overlays" / "broken"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        manifests.render("broken", root=tmp_path)
