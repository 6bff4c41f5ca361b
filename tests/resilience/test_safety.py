"""Safety rails of the hft_chaos fixture: a kube context not allowed is refused before any connection,
and a dry run prints the objects and injects nothing (no cluster needed for either)."""

from __future__ import annotations

import pathlib
import socket
import threading

import pytest
from resilience_support import start_inner

from pytest_hftk8s.errors import ChaosRefused
from pytest_hftk8s.orchestration.chaos import check_context
from pytest_hftk8s.settings import HftSettings


def _settings(cluster: str, allow: tuple[str, ...] = ()) -> HftSettings:
    return HftSettings(cluster=cluster, allow_context=allow)


def test_context_allow_list() -> None:
    check_context(_settings("local"))  # always allowed
    check_context(_settings("staging", ("staging",)))
    check_context(_settings("kind", ("kind",)))  # the alias allows the context it stands for
    check_context(_settings("kind", ("kind-kind",)))
    with pytest.raises(ChaosRefused, match=r"'prod-eu'.*--hft-allow-context=prod-eu"):
        check_context(_settings("prod-eu", ("staging",)))


class _Listener:
    """A TCP port that counts the connections it gets (the fake API server nobody may reach)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://127.0.0.1:PORT", insecure-skip-tls-verify: true}}]
users: [{name: prod, user: {token: not-a-real-token}}]
contexts: [{name: prod-eu, context: {cluster: prod, user: prod, namespace: hft}}]
current-context: prod-eu
"""

INNER = """
def test_chaos(hft_chaos):
    with hft_chaos.pod_kill(target="engine"):
        pass
"""


def test_refused_context_errors_before_any_connection(tmp_path: pathlib.Path) -> None:
    listener = _Listener()
    try:
        (tmp_path / "kubeconfig").write_text(KUBECONFIG.replace("PORT", str(listener.port)))
        (tmp_path / "test_refused.py").write_text(INNER)
        proc = start_inner(
            tmp_path, "--hft-cluster=prod-eu", "--hft-allow-context=staging", "test_refused.py",
            env={"KUBECONFIG": str(tmp_path / "kubeconfig")},
        )  # fmt: skip
        out = proc.communicate(timeout=120)[0]
    finally:
        listener.close()
    assert proc.returncode == 1, out[-3000:]
    assert "ChaosRefused" in out, out[-3000:]
    assert "refusing to inject" in out
    assert "--hft-allow-context=prod-eu" in out
    assert listener.accepted == 0, "the fixture connected to the cluster before refusing"


def test_dry_run_prints_objects_and_injects_nothing(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_dry.py").write_text(
        """
import psutil
import pytest

@pytest.mark.hft_chaos("stress_memory", target="backend", size="64MiB", duration="5s")
def test_dry(hft_chaos):
    with hft_chaos.stress_cpu(target="backend", load=80, duration="5s") as exp:
        assert exp.run.dry_run
        children = [c.name() for c in psutil.Process().children(recursive=True)]
        assert children == [], f"a dry run started processes: {children}"
    assert len(hft_chaos.experiments) == 2
"""
    )
    proc = start_inner(tmp_path, "--hft-cluster=local", "--hft-chaos-dry-run", "-s", "test_dry.py")
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-3000:]
    assert "kind: StressChaos" in out, out[-3000:]
    assert "size: 64MiB" in out  # the marker's experiment
    assert "load: 80" in out  # the context manager's
    assert "deploying" not in out, "a dry run deployed the platform"
