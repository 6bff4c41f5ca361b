"""Chaos Mesh v2.8 CRD schemas, vendored in chaos/crds/, as jsonschema validators for chaos objects.

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

# Vendored, unmodified, with their Apache-2.0 NOTICE and LICENSE: the tests need nothing outside the clone.
CRD_DIR = pathlib.Path(__file__).resolve().parents[2] / "chaos" / "crds"


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
def crd_dir() -> pathlib.Path:
    """The folder the CRD schemas are read from."""
    return CRD_DIR


@pytest.fixture(scope="session")
def crd_validators() -> dict[str, Any]:
    """A Draft 4 validator per Chaos Mesh kind, from the v1alpha1 schema of each vendored CRD."""
    validators = _load()
    assert validators, (
        f"expected the Chaos Mesh CRDs (chaos-mesh.org_*.yaml) in {CRD_DIR}, found none; "
        "restore chaos/crds/ from git (see chaos/crds/NOTICE)"
    )
    return validators


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
