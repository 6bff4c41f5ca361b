"""Reading rendered objects: quantities, env resolution, pod naming, services."""

from __future__ import annotations

import pytest

from pytest_hftk8s import manifests
from pytest_hftk8s.cluster.local import model
from pytest_hftk8s.credentials import with_db_secret
from pytest_hftk8s.errors import ConfigError


@pytest.mark.parametrize(("text", "millis"), [("300m", 300), ("1", 1000), ("0.5", 500), (2, 2000)])
def test_cpu_quantities(text: str | int, millis: int) -> None:
    assert model.cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("64k", 64_000), ("2e6", 2_000_000)],
)
def test_memory_quantities(text: str, size: int) -> None:
    assert model.memory_bytes(text) == size


def test_bad_quantity_says_what_was_expected() -> None:
    with pytest.raises(ConfigError, match="128Mi"):
        model.memory_bytes("lots")


@pytest.fixture(scope="module")
def platform() -> list[dict]:
    return with_db_secret(manifests.render("local"), password="pw-model", secret_name=None)


def test_platform_templates_and_services(platform: list[dict]) -> None:
    templates = {t.workload: t for t in model.pod_templates(platform, namespace="hft")}
    assert set(templates) == {"backend", "engine", "nginx", "prometheus", "postgres", "redis"}
    backend = templates["backend"].containers[0]
    assert (backend.cpu_limit_millis, backend.memory_limit_bytes) == (300, 128 * 2**20)
    assert backend.readiness is not None
    assert backend.readiness.port == 8000
    assert backend.readiness.path == "/readyz"
    assert templates["postgres"].pod_names() == ["postgres-0"]
    assert "data" in templates["postgres"].volumes  # from volumeClaimTemplates
    names = templates["backend"].pod_names()
    assert len(names) == 1
    assert names[0].startswith("backend-")
    services = {s.name: s for s in model.services(platform, namespace="hft")}
    assert services["postgres"].headless
    assert not services["backend"].headless


def test_env_resolution_follows_kubelet(platform: list[dict]) -> None:
    configmaps, secrets = model.config_data(platform)
    backend = next(
        t for t in model.pod_templates(platform, namespace="hft") if t.workload == "backend"
    ).containers[0]
    env = model.resolve_env(
        backend,
        pod_fields={"status.podIP": "127.0.9.9", "metadata.name": "b-0"},
        configmaps=configmaps,
        secrets=secrets,
    )
    assert env["HFT_BIND_HOST"] == "127.0.9.9"
    assert env["HFT_DB_PASSWORD"] == secrets["hft-db"]["password"] != ""
    assert env["HFT_SYMBOLS"] == configmaps["hft-config"]["symbols"]


def _container(env: list[dict]) -> model.ContainerSpec:
    return model.ContainerSpec("c", "x", None, None, tuple(env), ())


def test_dollar_references_expand_from_earlier_variables() -> None:
    env = model.resolve_env(
        _container([{"name": "A", "value": "one"}, {"name": "B", "value": "$(A)-two-$(MISSING)"}]),
        pod_fields={}, configmaps={}, secrets={},
    )  # fmt: skip
    assert env["B"] == "one-two-$(MISSING)"


def test_missing_secret_key_names_it_and_optional_is_skipped() -> None:
    ref = {"name": "S", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}
    with pytest.raises(ConfigError, match="nope"):
        model.resolve_env(_container([ref]), pod_fields={}, configmaps={}, secrets={})
    optional = {"name": "S", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}
    assert model.resolve_env(_container([optional]), pod_fields={}, configmaps={}, secrets={}) == {}


def test_label_field_refs() -> None:
    ref = {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
    env = model.resolve_env(_container([ref]), pod_fields={"labels/app": "web"}, configmaps={}, secrets={})
    assert env == {"APP": "web"}
