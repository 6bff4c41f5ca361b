"""The generator's own CPU accounting: portable to macOS (no ``RUSAGE_THREAD``), and counting the
threads of an in-process port-forward that carry its traffic."""

from __future__ import annotations

import resource
import threading
import time

import pytest

from pytest_hftk8s.load.driver import LoadDriver
from pytest_hftk8s.load.engine import EngineResult, thread_cpu_seconds
from pytest_hftk8s.load.run import LoadRun, judge


def _get(target: tuple[str, int]):
    raw = f"GET /ok HTTP/1.1\r\nHost: {target[0]}:{target[1]}\r\n\r\n".encode()
    return lambda _seq: raw


def test_a_load_run_without_rusage_thread_as_on_macos(target, tmp_path, monkeypatch) -> None:
    monkeypatch.delattr(resource, "RUSAGE_THREAD")  # what Darwin's resource module lacks
    with pytest.raises(AttributeError):
        resource.getrusage(resource.RUSAGE_THREAD)
    driver = LoadDriver(target, results_dir=tmp_path)
    with driver.constant_rate(rate=300, duration=1, make_request=_get(target), connections=4) as run:
        pass
    s = run.summary
    assert s.ok == s.scheduled == 300
    assert s.valid, s.invalid_reasons
    assert 0.0 < s.cpu["seconds"] < 1.5  # measured with time.thread_time(): the generator thread only
    assert s.cpu["forwarding_seconds"] == 0.0


def test_the_fallback_measures_the_calling_thread_only(monkeypatch) -> None:
    monkeypatch.delattr(resource, "RUSAGE_THREAD")
    stop = threading.Event()
    burner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)], daemon=True)
    start, process = thread_cpu_seconds(), time.process_time()
    time.sleep(0.2)
    idle = thread_cpu_seconds() - start
    burner.start()  # another thread spinning: not ours to count
    try:
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            pass
    finally:
        stop.set()
        burner.join(timeout=5)
    ours, everyone = thread_cpu_seconds() - start, time.process_time() - process
    assert idle < 0.05  # sleeping costs nothing
    assert ours > 0.02  # our spinning counts
    assert ours < 0.8 * everyone  # the other thread's does not


def test_forwarding_threads_that_saturate_make_the_run_invalid(target, tmp_path) -> None:
    # a CPU source standing for port-forward threads busy 95% of the run's wall clock
    started = time.monotonic()
    run = LoadRun(
        base_url=target,
        mode="open",
        rate=100,
        duration=1,
        make_request=_get(target),
        results_dir=tmp_path,
        extra_cpu=lambda: 0.95 * (time.monotonic() - started),
    )
    with run:
        pass
    s = run.summary
    assert s.ok == 100
    assert s.cpu["forwarding_seconds"] > 0.9
    assert not s.valid
    (reason,) = s.invalid_reasons
    assert "load generator saturated" in reason
    assert "of which the in-process port-forward's threads" in reason
    assert "--hft-access=loadbalancer or nodeport" in reason


def test_judge_counts_the_extra_cpu_against_one_core() -> None:
    alone = EngineResult(cpu_s=0.5, wall_s=1.0, scheduled=10, sent=10)
    assert judge(alone, mode="open") == []
    forwarded = EngineResult(cpu_s=0.5, extra_cpu_s=0.45, wall_s=1.0, scheduled=10, sent=10)
    (reason,) = judge(forwarded, mode="open")
    assert "saturated: 95% of one core" in reason
    assert "port-forward's threads 45%" in reason
