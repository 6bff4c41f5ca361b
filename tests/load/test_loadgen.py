"""The load generator against a real HTTP server: rate, coordinated omission, timeouts, deadlines,
results written on failure and Ctrl-C, and self-judgement."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from pytest_hftk8s.errors import LoadError
from pytest_hftk8s.load.driver import LoadDriver
from pytest_hftk8s.load.engine import EngineResult
from pytest_hftk8s.load.run import judge


def _get(path: str, host: tuple[str, int]):
    raw = f"GET {path} HTTP/1.1\r\nHost: {host[0]}:{host[1]}\r\n\r\n".encode()
    return lambda _seq: raw


def test_open_loop_holds_its_rate(target, tmp_path) -> None:
    driver = LoadDriver(target, results_dir=tmp_path)
    with driver.constant_rate(rate=500, duration=2, make_request=_get("/ok", target), connections=8) as run:
        pass
    s = run.summary
    assert s.scheduled == 1000
    assert s.sent == 1000
    assert s.ok == 1000
    assert s.statuses == {"200": 1000}
    assert s.achieved_rate == pytest.approx(500, rel=0.03)
    assert s.valid, s.invalid_reasons
    assert json.loads(pathlib.Path(s.results_file).read_text())["ok"] == 1000


def test_latency_counts_from_intended_send_time(target, tmp_path) -> None:
    """A 1 s server stall delays every request *scheduled* during it, not just those in flight:
    with 4 connections a coordinated-omission-prone tool would report 4 slow requests of ~600."""
    import urllib.request

    driver = LoadDriver(target, results_dir=tmp_path)
    with driver.constant_rate(rate=200, duration=3, make_request=_get("/ok", target), connections=4) as run:
        time.sleep(1.0)
        req = urllib.request.Request(f"http://{target[0]}:{target[1]}/pause", data=b'{"seconds": 1.0}')
        urllib.request.urlopen(req, timeout=5).close()
    lat = run.summary.latency_ms
    assert run.summary.ok == 600
    assert lat["max"] >= 900
    assert lat["p90"] >= 300  # ~1/3 of all requests were scheduled inside the stall
    assert lat["p50"] < 100
    # Over time, by intended send second: the stall shows in the second it began, not spread out.
    p99 = run.summary.latency_timeline["p99"]
    assert p99.start == run.summary.order_window.start
    assert p99.step == 1.0
    assert len(p99.values) == 3
    assert p99.values[0] < 100  # before the stall
    assert max(p99.values[1:]) >= 500  # requests due during it waited for it to end
    assert run.summary.latency_timeline["p50"].values[0] <= p99.values[0]
    assert run.summary.errors_timeline is not None
    assert sum(run.summary.errors_timeline.values) == 0


def test_requests_time_out_and_the_run_ends_on_time(target, tmp_path) -> None:
    driver = LoadDriver(target, results_dir=tmp_path)
    started = time.monotonic()
    with driver.constant_rate(
        rate=20, duration=1, make_request=_get("/hang", target), connections=4, request_timeout=0.3
    ) as run:
        pass
    assert time.monotonic() - started < 1 + 0.3 + 2 + 1.5
    s = run.summary
    assert s.ok == 0
    assert s.errors.get("timeout", 0) >= 4
    assert (
        s.errors.get("timeout", 0) + s.errors.get("unsent", 0) + s.errors.get("abandoned_at_deadline", 0)
        >= 18
    )
    # A timeout is a latency (at the moment it timed out, from its intended send); a request never
    # sent or abandoned is a failure, counted apart: together they are every request of the run.
    assert s.timed_out == s.errors["timeout"]
    assert s.latency_ms["max"] >= 300
    assert s.unanswered == s.errors.get("unsent", 0) + s.errors.get("abandoned_at_deadline", 0)
    assert s.timed_out + s.unanswered == s.scheduled
    # Every request of the run failed, and each is counted in the second it was due.
    assert s.errors_timeline is not None
    assert sum(s.errors_timeline.values) == s.scheduled
    assert min(s.latency_timeline["p99"].values) >= 300  # each second's answers are its timeouts


def test_results_written_when_the_body_fails(target, tmp_path) -> None:
    driver = LoadDriver(target, results_dir=tmp_path)
    started = time.monotonic()
    run = driver.constant_rate(rate=100, duration=30, make_request=_get("/ok", target))

    def body() -> None:
        with run:
            time.sleep(0.5)
            raise RuntimeError("chaos went wrong")

    with pytest.raises(RuntimeError, match="chaos went wrong"):
        body()
    assert time.monotonic() - started < 5  # stopped early, not after 30 s
    data = json.loads(pathlib.Path(run.summary.results_file).read_text())
    assert 20 <= data["ok"] <= 100
    assert data["valid"] is False


def test_unreachable_target_fails_loudly_with_partial_results(tmp_path) -> None:
    with socket_port() as port:
        driver = LoadDriver(("127.0.0.1", port), results_dir=tmp_path)
        run = driver.constant_rate(rate=10, duration=1, users=3)
        with pytest.raises(LoadError, match=r"expected to register 3 users.*all failed"):
            run.__enter__()


def test_ctrl_c_still_writes_results(target, tmp_path) -> None:
    script = f"""
import pathlib, sys, time
from pytest_hftk8s.load.driver import LoadDriver
raw = b"GET /ok HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
driver = LoadDriver(({target[0]!r}, {target[1]}), results_dir=pathlib.Path({str(tmp_path)!r}))
print("started", flush=True)
with driver.constant_rate(rate=100, duration=60, make_request=lambda s: raw):
    pass
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode != 0  # KeyboardInterrupt propagated after cleanup
    (results,) = tmp_path.glob("*.json")
    data = json.loads(results.read_text())
    assert 50 <= data["ok"] <= 300  # about a second at 100/s: it stopped long before its 60 s
    assert data["valid"] is False
    assert any("stopped early" in r for r in data["invalid_reasons"]), data["invalid_reasons"]


def test_closed_loop_mode(target, tmp_path) -> None:
    driver = LoadDriver(target, results_dir=tmp_path)
    with driver.closed_loop(connections=4, duration=1, make_request=_get("/ok", target)) as run:
        pass
    s = run.summary
    assert s.mode == "closed"
    assert s.ok > 500
    assert s.errors == {}


def test_judge_flags_saturation_and_falling_behind() -> None:
    busy = EngineResult(cpu_s=0.95, wall_s=1.0, scheduled=100, sent=100)
    assert "saturated: 95% of one core" in judge(busy, mode="open")[0]
    late = EngineResult(
        cpu_s=0.1, wall_s=1.0, ticks=100, late_ticks=20, max_lag_s=0.05, scheduled=100, sent=100
    )
    assert "fell behind its schedule: 20/100 ticks" in judge(late, mode="open")[0]
    backpressure = EngineResult(cpu_s=0.1, wall_s=1.0, scheduled=100, sent=50, errors={"unsent": 50})
    assert judge(backpressure, mode="open") == []  # the server's fault: errors, not an invalid run
    assert judge(EngineResult(cpu_s=0.5, wall_s=1.0, scheduled=10, sent=10), mode="open") == []


class socket_port:
    """A loopback port nothing listens on, for as long as the block runs."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


os.environ.setdefault("PYTHONUNBUFFERED", "1")
