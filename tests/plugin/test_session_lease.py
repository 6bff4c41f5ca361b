"""PlatformLease without pytest around it: deploy once, attach, release, and crashed holders."""

from __future__ import annotations

import http.server
import json
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from scripted_cluster import ScriptedCluster

from pytest_hftk8s.errors import GateTimeout
from pytest_hftk8s.gate import GateConfig
from pytest_hftk8s.orchestration.lease import STATE_NAME, PlatformLease
from pytest_hftk8s.settings import HftSettings


def _settings(**overrides: object) -> HftSettings:
    values: dict[str, object] = {
        "cluster": "scripted",
        "prometheus_url": "http://127.0.0.1:9",
        "deploy_timeout": 10.0,
        "gate_timeout": 5.0,
        "load_timeout": 10.0,
    }
    values.update(overrides)
    return HftSettings(**values)  # type: ignore[arg-type]


def _lease(tmp_path: pathlib.Path, cluster: ScriptedCluster, **settings: object) -> PlatformLease:
    return PlatformLease(
        _settings(**settings),
        shared_dir=tmp_path,
        session_start=time.time(),
        make_cluster=lambda: cluster,
        attach_cluster=lambda shared: cluster,
        render=lambda profile, images: [{"kind": "Namespace", "metadata": {"name": "hft"}}],
        series_check=lambda *_a, **_k: [],  # no Prometheus here: the plugin tests check the series
        gate_config=GateConfig(timeout_s=2, poll_s=0.01, dns_streak=1, warmup_streak=1),
    )


class _Created(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nginx() -> Iterator[tuple[str, int]]:
    """A real HTTP server answering the warm-up registrations with 201."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Created)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_crashed_holder_does_not_block_teardown(tmp_path: pathlib.Path, nginx: tuple[str, int]) -> None:
    cluster = ScriptedCluster(nginx=nginx)
    lease = _lease(tmp_path, cluster)
    platform = lease.acquire()
    assert platform.owner
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    state = json.loads((tmp_path / STATE_NAME).read_text())
    state["holders"].append(int(dead.stdout))  # a worker that died holding a reference
    (tmp_path / STATE_NAME).write_text(json.dumps(state))
    started = time.monotonic()
    lease.release()
    assert time.monotonic() - started < 3
    assert cluster.deleted
    assert not (tmp_path / STATE_NAME).exists()


def test_gate_failure_tears_down_what_was_deployed(tmp_path: pathlib.Path, nginx: tuple[str, int]) -> None:
    cluster = ScriptedCluster(nginx=nginx, never_ready=["engine"])
    lease = _lease(tmp_path, cluster)
    lease._gate_config = GateConfig(timeout_s=0.2, poll_s=0.01)
    with pytest.raises(GateTimeout, match="'workloads'"):
        lease.acquire()
    assert cluster.deleted
    assert cluster.applied


def test_on_success_keeps_a_deploy_that_did_not_get_ready(
    tmp_path: pathlib.Path, nginx: tuple[str, int]
) -> None:
    cluster = ScriptedCluster(nginx=nginx, never_ready=["engine"])
    lease = _lease(tmp_path, cluster, delete="on-success")
    lease._gate_config = GateConfig(timeout_s=0.2, poll_s=0.01)
    with pytest.raises(GateTimeout, match="'workloads'"):
        lease.acquire()
    assert cluster.applied
    assert not cluster.deleted, "kept for a look: the session failed"
