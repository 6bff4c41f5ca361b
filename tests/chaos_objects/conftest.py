"""Chaos Mesh v2.8 CRD schemas as jsonschema validators, for checking generated chaos objects.

The CRDs' ``openAPIV3Schema`` is turned into plain JSON Schema the way the API server reads it:
``x-kubernetes-int-or-string`` becomes integer-or-string, ``nullable`` admits null, and an object
with declared ``properties`` rejects unknown fields unless it says ``x-kubernetes-preserve-unknown-
fields`` (the server would silently prune them, so a typo would inject nothing).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

CRD_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "chaos-mesh-crds"
if not CRD_DIR.is_dir():  # CI lays shared/ beside the clone; a developer tree has it at /work/shared
    CRD_DIR = pathlib.Path("/work/shared/reference/chaos-mesh-crds")


def to_jsonschema(node: Any) -> Any:
    """A structural OpenAPI v3 schema (with Kubernetes extensions) as strict JSON Schema."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items() if k != "description"}
    if out.pop("x-kubernetes-int-or-string", False) and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _load() -> dict[str, jsonschema.protocols.Validator]:
    validators: dict[str, Any] = {}
    for path in sorted(CRD_DIR.glob("chaos-mesh.org_*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
            schema = to_jsonschema(version["schema"]["openAPIV3Schema"])
            # OpenAPI v3.0 schemas use Draft 4 semantics (boolean exclusiveMinimum).
            jsonschema.Draft4Validator.check_schema(schema)
            validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft4Validator(schema)
    return validators


@pytest.fixture(scope="session")
def crd_validators() -> dict[str, Any]:
    if not CRD_DIR.is_dir():
        pytest.skip(f"Chaos Mesh CRDs not found at {CRD_DIR} (shared/reference is laid beside the repo)")
    return _load()


@pytest.fixture(scope="session")
def schema_errors(crd_validators: dict[str, Any]) -> Callable[[dict[str, Any]], list[str]]:
    """Messages of every schema violation of an object, by its ``kind`` (empty list = valid)."""

    def errors(obj: dict[str, Any]) -> list[str]:
        validator = crd_validators[obj["kind"]]
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]

    return errors


@pytest.fixture(scope="session")
def as_jsonschema() -> Callable[[Any], Any]:
    """The OpenAPI-to-JSON-Schema conversion used for the CRDs, for testing it directly."""
    return to_jsonschema
