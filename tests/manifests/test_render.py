"""Rendering: the pinned kubectl renders every overlay into objects valid for Kubernetes 1.33."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from pytest_hftk8s import manifests
from pytest_hftk8s.errors import ConfigError

#: The field report's cluster (OrbStack, Kubernetes v1.33.5): the version every overlay must fit.
TARGET = "1.33.0"


def test_every_overlay_is_a_profile() -> None:
    assert set(manifests.profiles()) == {"local", "scale4", "orbstack", "kind", "multinode", "emulated"}


def test_the_validator_carries_the_target_schemas() -> None:
    assert TARGET in all_versions()


@pytest.mark.parametrize("version", [TARGET, kubernetes_validate.latest_version()])
def test_every_object_is_valid_against_the_schemas(rendered: tuple[str, list[dict]], version: str) -> None:
    profile, objects = rendered
    assert objects, f"{profile} rendered nothing"
    for obj in objects:
        # strict=True rejects unknown fields, which catches typos like `readinesProbe`.
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "two"),
        (("spec", "template", "spec", "securityContext", "runAsNonRoot"), "yes"),
        (("spec", "template", "spec", "containers", 0, "readinesProbe"), {}),
    ],
)
def test_invalid_objects_are_rejected_by_the_validator(
    rendered: tuple[str, list[dict]], path: tuple, value: object
) -> None:
    _, objects = rendered
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, TARGET, strict=True)


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="local"):
        manifests.render("no-such-profile")


def test_kustomize_failure_carries_stderr(tmp_path: Path) -> None:
    overlay = tmp_path / "overlays" / "broken"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        manifests.render("broken", root=tmp_path)
