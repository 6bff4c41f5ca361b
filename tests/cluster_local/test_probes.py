"""Probe semantics (kubelet's prober worker) and the three handlers against real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pytest_hftk8s.cluster.local.model import ProbeSpec
from pytest_hftk8s.cluster.local.probes import ProbeOutcome, ProbeState, run_probe

OK, FAIL = ProbeOutcome(True, ""), ProbeOutcome(False, "boom")


def test_initial_results_follow_kubelet() -> None:
    spec = ProbeSpec("tcpSocket", port=1)
    assert ProbeState("readiness", spec, started_at=0).result is False
    assert ProbeState("startup", spec, started_at=0).result is False
    assert ProbeState("liveness", spec, started_at=0).result is True


def test_initial_delay_and_period_gate_when_a_probe_runs() -> None:
    probe = ProbeState("readiness", ProbeSpec("tcpSocket", port=1, initial_delay=5, period=2), started_at=100)
    assert not probe.due(104.9)
    assert probe.due(105)
    probe.begin(105)
    assert not probe.due(106)  # in flight
    probe.record(OK)
    assert not probe.due(106.9)
    assert probe.due(107)


def test_success_threshold_needs_consecutive_successes() -> None:
    probe = ProbeState("readiness", ProbeSpec("tcpSocket", port=1, success_threshold=3), started_at=0)
    assert [probe.record(o) or probe.result for o in (OK, OK, FAIL, OK, OK)] == [False] * 5
    assert probe.record(OK) is True  # third consecutive success flips it
    assert probe.result is True


def test_failure_threshold_needs_consecutive_failures_and_keeps_the_error() -> None:
    probe = ProbeState("liveness", ProbeSpec("tcpSocket", port=1, failure_threshold=3), started_at=0)
    for outcome in (FAIL, FAIL, OK, FAIL, FAIL):
        probe.record(outcome)
        assert probe.result is True
        assert not probe.failed
    probe.record(ProbeOutcome(False, "connection refused"))
    assert probe.result is False
    assert probe.failed
    assert probe.last_error == "connection refused"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/ok": 200, "/redirect": 302, "/bad": 503}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"payload")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "ok"), [("/ok", True), ("/redirect", True), ("/bad", False), ("/missing", False)]
)
def test_http_probe_status_ranges(http_port: int, path: str, ok: bool) -> None:
    outcome = run_probe(ProbeSpec("httpGet", port=http_port, path=path), pod_ip="127.0.0.1")
    assert outcome.ok is ok
    if not ok:
        assert "statuscode" in outcome.message
        assert path in outcome.message


def test_tcp_probe_open_and_refused(http_port: int) -> None:
    assert run_probe(ProbeSpec("tcpSocket", port=http_port), pod_ip="127.0.0.1").ok
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound but not listening: refused
        refused = run_probe(ProbeSpec("tcpSocket", port=closed), pod_ip="127.0.0.1")
    assert not refused.ok
    assert "refused" in refused.message.lower()


def test_http_probe_times_out() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts the connection but never answers
        port = s.getsockname()[1]
        outcome = run_probe(ProbeSpec("httpGet", port=port, path="/", timeout=0.3), pod_ip="127.0.0.1")
    assert not outcome.ok
    assert "timed out" in outcome.message


def test_exec_probe_without_a_running_container_fails() -> None:
    outcome = run_probe(ProbeSpec("exec", command=("true",)), pod_ip="127.0.0.1", pid=None)
    assert not outcome.ok
    assert "not running" in outcome.message
