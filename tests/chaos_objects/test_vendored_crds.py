"""The vendored Chaos Mesh CRDs in chaos/crds/: present, well formed, the five kinds we use, licensed.

The schema tests of this folder validate against these files, so a missing or truncated copy
must fail here with a plain message rather than as a confusing validation error elsewhere.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

GROUP = "chaos-mesh.org"
EXPECTED = {
    "chaos-mesh.org_networkchaos.yaml": "NetworkChaos",
    "chaos-mesh.org_podchaos.yaml": "PodChaos",
    "chaos-mesh.org_schedules.yaml": "Schedule",
    "chaos-mesh.org_stresschaos.yaml": "StressChaos",
    "chaos-mesh.org_workflows.yaml": "Workflow",
}
RESTORE = "restore chaos/crds/ from git, or re-vendor the Chaos Mesh v2.8 CRDs as chaos/crds/NOTICE says"


def _crd(path: pathlib.Path) -> dict[str, Any]:
    """The one CustomResourceDefinition a vendored file holds."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path.name}: expected one YAML document, found {len(docs)}; {RESTORE}"
    return docs[0]


def test_crds_are_read_from_the_repository(crd_dir: pathlib.Path, repo_root: pathlib.Path) -> None:
    assert crd_dir == repo_root / "chaos" / "crds", (
        f"tests/chaos_objects/conftest.py reads CRDs from {crd_dir}, "
        f"expected {repo_root / 'chaos' / 'crds'}: "
        "tests must not depend on anything outside the clone"
    )


def test_the_five_crds_are_vendored(crd_dir: pathlib.Path) -> None:
    found = sorted(p.name for p in crd_dir.glob("*.yaml"))
    assert found == sorted(EXPECTED), (
        f"expected exactly {sorted(EXPECTED)} in {crd_dir}, found {found}; {RESTORE}"
    )


@pytest.mark.parametrize(("name", "kind"), sorted(EXPECTED.items()))
def test_crd_is_the_expected_kind_with_a_v1alpha1_schema(crd_dir: pathlib.Path, name: str, kind: str) -> None:
    crd = _crd(crd_dir / name)
    assert (crd.get("apiVersion"), crd.get("kind")) == (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    ), (
        f"{name}: expected an apiextensions.k8s.io/v1 CustomResourceDefinition, "
        f"found {crd.get('apiVersion')} {crd.get('kind')}; {RESTORE}"
    )
    spec = crd["spec"]
    assert (spec["group"], spec["names"]["kind"]) == (GROUP, kind), (
        f"{name}: expected kind {kind} of group {GROUP}, found {spec['names']['kind']} of {spec['group']}"
    )
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{GROUP}", (
        f"{name}: metadata.name {crd['metadata']['name']!r} is not <plural>.{GROUP}"
    )
    versions = {v["name"]: v for v in spec["versions"]}
    assert "v1alpha1" in versions, f"{name}: expected a v1alpha1 version, found {sorted(versions)}"
    v1alpha1 = versions["v1alpha1"]
    flags = (v1alpha1.get("served"), v1alpha1.get("storage"))
    assert flags == (True, True), (
        f"{name}: expected v1alpha1 served and stored, found (served, storage) = {flags}"
    )
    schema = v1alpha1["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object", (
        f"{name}: the v1alpha1 schema is not an object schema: {schema['type']}"
    )
    assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"]), (
        f"{name}: the v1alpha1 schema lacks top-level fields; it has {sorted(schema['properties'])}"
    )
    assert schema["properties"]["spec"].get("properties"), (
        f"{name}: the v1alpha1 spec schema declares no fields"
    )


def test_validators_cover_the_five_kinds(crd_validators: dict[str, Any]) -> None:
    assert sorted(crd_validators) == sorted(EXPECTED.values()), (
        f"expected validators for {sorted(EXPECTED.values())}, conftest built {sorted(crd_validators)}"
    )


def test_notice_credits_chaos_mesh(crd_dir: pathlib.Path) -> None:
    notice = crd_dir / "NOTICE"
    assert notice.is_file(), f"expected {notice}: the Apache-2.0 attribution of the vendored CRDs"
    text = notice.read_text()
    required = [
        "Chaos Mesh v2.8",
        "https://github.com/chaos-mesh/chaos-mesh",
        "Copyright The Chaos Mesh Authors",
        "Apache License, Version 2.0",
        "unmodified",
        *EXPECTED,
    ]
    missing = [s for s in required if s not in text]
    assert not missing, f"{notice} must state source, copyright, license and the files; missing {missing}"


def test_license_is_the_apache_2_text(crd_dir: pathlib.Path) -> None:
    license_file = crd_dir / "LICENSE"
    assert license_file.is_file(), f"expected {license_file}: the Apache License 2.0 the CRDs are under"
    text = license_file.read_text()
    markers = [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "9. Accepting Warranty or Additional Liability.",
        "END OF TERMS AND CONDITIONS",
    ]
    missing = [m for m in markers if m not in text]
    assert not missing, f"{license_file} is not the full Apache License 2.0 text; missing {missing}"
