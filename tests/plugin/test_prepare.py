"""What the session adds to and drops from the rendered objects, and how a missing prerequisite stops it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from pytest_hftk8s.credentials import DB_SECRET, new_password, with_db_secret
from pytest_hftk8s.errors import PreflightFailed
from pytest_hftk8s.manifests import render
from pytest_hftk8s.orchestration.prepare import (
    ADDON_LABEL,
    KSM_CHECK,
    present_addons,
    run_preflight,
    without_addons,
)
from pytest_hftk8s.report.preflight import failed, format_table
from pytest_hftk8s.results import PreflightCheck


def _secret_refs(objects: Sequence[dict]) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("secretKeyRef"), dict):
                found.append(node["secretKeyRef"]["name"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(list(objects))
    return found


def test_the_rendered_manifests_carry_no_password_and_the_session_adds_one() -> None:
    objects = render("local")
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == DB_SECRET]
    assert set(_secret_refs(objects)) == {DB_SECRET}, "every database client reads hft-db"
    password = new_password()
    deployed = with_db_secret(objects, password=password, secret_name=None)
    secrets = [o for o in deployed if o["kind"] == "Secret" and o["metadata"]["name"] == DB_SECRET]
    assert len(secrets) == 1
    assert secrets[0]["stringData"] == {"password": password}
    assert deployed.index(secrets[0]) == 1
    assert deployed[0]["kind"] == "Namespace"
    assert new_password() != password
    assert len(password) >= 40


def test_a_named_secret_replaces_every_reference_and_none_is_generated() -> None:
    objects = render("local")
    deployed = with_db_secret(objects, password=None, secret_name="team-db")
    assert set(_secret_refs(deployed)) == {"team-db"}
    assert not [o for o in deployed if o["kind"] == "Secret" and o["metadata"]["name"] == DB_SECRET]
    assert set(_secret_refs(objects)) == {DB_SECRET}, "the render itself is left as it was"


def test_an_overlays_own_secret_wins() -> None:
    own = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": DB_SECRET},
        "stringData": {"password": "x"},
    }
    deployed = with_db_secret([own], password="generated", secret_name=None)
    assert deployed == [own]


def test_addons_the_cluster_already_runs_are_not_deployed_again() -> None:
    ksm = {
        "kind": "Deployment",
        "metadata": {"name": "kube-state-metrics", "labels": {ADDON_LABEL: KSM_CHECK}},
    }
    app = {"kind": "Deployment", "metadata": {"name": "backend", "labels": {}}}
    found = [PreflightCheck(KSM_CHECK, True, "kube-system/kube-state-metrics, ready")]
    missing = [PreflightCheck(KSM_CHECK, False, "none running", "the overlay's is deployed", blocking=False)]
    assert without_addons([ksm, app], present_addons(found)) == [app]
    assert without_addons([ksm, app], present_addons(missing)) == [ksm, app]


class _Preflighted:
    name = "kind-kind"
    namespace = "hft"

    def __init__(self, rows: list[PreflightCheck]) -> None:
        self.rows = rows
        self.asked: list[tuple[tuple[str, ...], bool]] = []

    def preflight(self, *, images: Sequence[str] = (), chaos: bool = True) -> list[PreflightCheck]:
        self.asked.append((tuple(images), chaos))
        return self.rows


def test_a_missing_prerequisite_stops_the_session_with_the_table() -> None:
    rows = [
        PreflightCheck("context reachable", True, "kind-kind, v1.33.1"),
        PreflightCheck(
            "Chaos Mesh", False, "CRD stresschaos.chaos-mesh.org not installed", "helm install chaos-mesh ..."
        ),
        PreflightCheck(KSM_CHECK, False, "none running", "the overlay's is deployed", blocking=False),
    ]
    cluster = _Preflighted(rows)
    printed: list[str] = []
    began = time.monotonic()
    with pytest.raises(PreflightFailed) as e:
        run_preflight(cluster, images=["hftk8s/backend:0.1.0-abc"], chaos=True, progress=printed.append)  # type: ignore[arg-type]
    assert time.monotonic() - began < 1.0
    assert cluster.asked == [(("hftk8s/backend:0.1.0-abc",), True)]
    message = str(e.value)
    assert "nothing was deployed" in message
    assert "helm install chaos-mesh" in message
    assert "1 ok, 1 warning(s), 1 failed" in message
    assert printed
    assert "FAIL" in printed[0]
    assert failed(rows) == [rows[1]]


def test_passing_preflight_returns_its_rows() -> None:
    rows = [PreflightCheck("context reachable", True, "kind-kind, v1.33.1")]
    assert run_preflight(_Preflighted(rows), images=[], chaos=False, progress=lambda _m: None) == rows  # type: ignore[arg-type]


def test_the_table_wraps_long_cells_and_keeps_commands_whole() -> None:
    command = (
        "helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh --set chaosDaemon.runtime=containerd"
    )
    table = format_table([PreflightCheck("Chaos Mesh chaos-daemon", False, "not found " * 8, command)])
    assert command in table.splitlines()[3]
    assert max(len(line) for line in table.splitlines() if command not in line) <= 100
