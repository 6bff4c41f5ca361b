"""The API stand-in's own semantics, through the official client where the backend uses them, and
the fault switches' parsing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_hftk8s.cluster.emulated import FAULTS, Faults
from pytest_hftk8s.cluster.emulated.apiserver import (
    ApiServer,
    ServedApi,
    _matches_fields,
    matches_selector,
    write_kubeconfig,
)
from pytest_hftk8s.cluster.kubernetes.api import KubeApi
from pytest_hftk8s.errors import ClusterError, ConfigError
from pytest_hftk8s.settings import FAULT_NAMES


@pytest.fixture
def served() -> Iterator[ServedApi]:
    api = ServedApi(ApiServer)
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def client(served: ServedApi, tmp_path: Path) -> Iterator[KubeApi]:
    api = KubeApi(
        context="t", kubeconfig=write_kubeconfig(tmp_path / "kc.yaml", server=served.url, context="t")
    )
    try:
        yield api
    finally:
        api.close()


@pytest.mark.parametrize(
    ("labels", "selector", "expected"),
    [
        ({"app": "web"}, "app=web", True),
        ({"app": "web"}, "app==web", True),
        ({"app": "web"}, "app!=web", False),
        ({"app": "db"}, "app!=web", True),
        ({"app": "web"}, "app", True),
        ({"app": "web"}, "!app", False),
        ({"app": "web", "tier": "a"}, "app=web,tier=b", False),
    ],
)
def test_label_selectors_follow_the_api_conventions(
    labels: dict[str, str], selector: str, expected: bool
) -> None:
    assert matches_selector(labels, selector) is expected


def test_field_selectors_compare_text_and_negate() -> None:
    event = {"involvedObject": {"name": "x", "kind": "PodChaos"}, "status": {"ready": False}}
    assert _matches_fields(event, "involvedObject.name=x,involvedObject.kind=PodChaos")
    assert not _matches_fields(event, "involvedObject.name!=x")
    assert _matches_fields(event, "involvedObject.kind!=StressChaos")
    assert _matches_fields(event, "status.ready=false")


def test_apply_creates_and_a_claim_template_change_is_refused(client: KubeApi) -> None:
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "n"},
        "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
    }  # fmt: skip
    path = "/apis/apps/v1/namespaces/n/statefulsets/db"
    query = [("fieldManager", "t"), ("force", "true")]
    apply = "application/apply-patch+yaml"
    client.request("PATCH", path, what="apply", body=sts, query=query, content_type=apply)
    assert client.request("GET", path, what="read")["metadata"]["name"] == "db"
    changed = {**sts, "spec": {"volumeClaimTemplates": [{"metadata": {"name": "other"}}]}}
    with pytest.raises(ClusterError, match="Forbidden: updates to statefulset spec"):
        client.request("PATCH", path, what="apply", body=changed, query=query, content_type=apply)


def test_the_chaos_mesh_crds_are_served_and_dropped_by_group(served: ServedApi, client: KubeApi) -> None:
    served.locked(served.api.install_crds)
    served.locked(lambda: served.api.store("apiextensions.k8s.io/v1/customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"}}))  # fmt: skip
    listing = client.request("GET", "/apis/chaos-mesh.org/v1alpha1/namespaces/n/stresschaos", what="list")
    assert listing["items"] == []
    served.locked(served.api.drop_crds)
    crds = client.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", what="list")
    assert [c["metadata"]["name"] for c in crds["items"]] == ["widgets.example.com"]
    with pytest.raises(ClusterError):
        client.request("GET", "/apis/chaos-mesh.org/v1alpha1/namespaces/n/stresschaos", what="list")


def test_a_bad_fault_switch_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        Faults.parse(["unpullable"])
    with pytest.raises(ConfigError, match="expected one of StressChaos, PodChaos, NetworkChaos, all"):
        Faults.parse(["stuck-finalizer=Pods"])
    with pytest.raises(ConfigError, match="deny: expected <verb>:<resource>"):
        Faults.parse(["deny=create"])
    faults = Faults.parse(["unpullable=backend", "stuck-finalizer=all", "deny=create:stresschaos"])
    assert faults.unpullable == {"backend"}
    assert faults.stuck_finalizers == {"all"}
    assert faults.denied == {"create stresschaos"}


def test_the_settings_know_every_fault_the_bridge_plays() -> None:
    assert set(FAULT_NAMES) == set(FAULTS)
