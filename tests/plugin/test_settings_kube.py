"""The kube-context settings: choices, conflicts and the provider's default overlay (no pytest run)."""

from __future__ import annotations

import pathlib

import pytest

from pytest_hftk8s.errors import ConfigError
from pytest_hftk8s.settings import HftSettings, resolve


def _resolve(**flags: object) -> HftSettings:
    return resolve(flags, {}, rootpath=pathlib.Path("/tmp"), environ={})


@pytest.mark.parametrize(
    ("cluster", "profile"),
    [
        ("kind", "kind"),
        ("kind-ci", "kind"),
        ("orbstack", "orbstack"),
        ("gke-prod", "local"),
        ("local", "local"),
    ],
)
def test_a_provider_gets_its_own_overlay_unless_one_is_named(cluster: str, profile: str) -> None:
    assert _resolve(hft_cluster=cluster).profile == profile
    assert _resolve(hft_cluster=cluster, hft_profile="scale4").profile == "scale4"


def test_delete_policy_and_keep() -> None:
    assert _resolve(hft_cluster="kind").delete == "always"
    assert _resolve(hft_cluster="kind", hft_delete="on-success").delete == "on-success"
    assert _resolve(hft_cluster="kind", hft_keep=True).delete == "never"
    with pytest.raises(ConfigError, match="--hft-keep means --hft-delete=never; got --hft-delete=always"):
        _resolve(hft_cluster="kind", hft_keep=True, hft_delete="always")


def test_kube_only_options_are_refused_on_the_local_cluster() -> None:
    with pytest.raises(ConfigError, match=r"--hft-access, --hft-images apply to kube contexts only"):
        _resolve(hft_cluster="local", hft_images="load", hft_access="nodeport")
    s = _resolve(hft_cluster="kind", hft_images="load", hft_access="nodeport", hft_registry="ghcr.io/acme")
    assert (s.images, s.access, s.registry) == ("load", "nodeport", "ghcr.io/acme")


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("HFT_DELETE", "sometimes", "--hft-delete: expected one of always, on-success, never"),
        ("HFT_IMAGES", "push", "--hft-images: expected one of skip, build, load"),
        ("HFT_ACCESS", "ingress", "--hft-access: expected one of auto, loadbalancer, nodeport, port-forward"),
        ("HFT_REGISTRY", "https://ghcr.io", "--hft-registry: expected a registry host"),
        ("HFT_DB_SECRET", "Team_DB", "--hft-db-secret: expected a Secret name"),
    ],
)
def test_bad_values_say_what_was_expected_and_where_they_came_from(
    env: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"environment variable {env}: {message}"):
        resolve({}, {}, rootpath=pathlib.Path("/tmp"), environ={"HFT_CLUSTER": "kind", env: value})


def test_a_registry_from_the_environment_loses_its_trailing_slash() -> None:
    s = resolve(
        {}, {}, rootpath=pathlib.Path("/tmp"), environ={"HFT_CLUSTER": "kind", "HFT_REGISTRY": "ghcr.io/a/"}
    )
    assert s.registry == "ghcr.io/a"
