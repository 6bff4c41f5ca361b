"""Readiness gate logic: ordering, streaks that reset, bounds, and what a timeout says."""

from __future__ import annotations

import time

import pytest
from scripted_cluster import ScriptedCluster

from pytest_hftk8s.errors import GateTimeout
from pytest_hftk8s.gate import GateConfig, ReadinessGate


def _cluster(server, **kwargs) -> ScriptedCluster:
    return ScriptedCluster(nginx=server.server_address, **kwargs)


def _config(**kwargs) -> GateConfig:
    return GateConfig(**{"timeout_s": 5.0, "poll_s": 0.01, "dns_streak": 3, "warmup_streak": 4, **kwargs})


def test_passes_all_gates_in_order(registrations) -> None:
    notes: list[str] = []
    cluster = _cluster(registrations, ready_after_polls=5)
    result = ReadinessGate(cluster, config=_config(), progress=notes.append).wait()
    assert list(result.durations) == ["workloads", "endpoints", "dns", "warmup"]
    assert cluster.polls >= 5
    assert next(n for n in notes if n.endswith("passed") or " passed " in n).startswith(
        "gate workloads: passed"
    )
    assert len(registrations.bodies) == 4  # exactly the streak, all through the real HTTP server
    assert all(set(b) == {"name"} for b in registrations.bodies)


def test_dns_streak_restarts_after_a_miss(registrations) -> None:
    # ok, ok, miss, then ok x3: the miss resets the streak, so 3 more full rounds are needed
    cluster = _cluster(registrations, dns_script=[True] * 8 + [False])
    ReadinessGate(cluster, config=_config()).wait()
    rounds = cluster.resolutions // len(cluster.services())
    assert cluster.resolutions > 3 * len(cluster.services())
    assert rounds >= 4


def test_warmup_streak_restarts_after_a_failure(registrations) -> None:
    registrations.script = [201, 201, 503, 201]
    ReadinessGate(_cluster(registrations), config=_config()).wait()
    # 2 ok, 1 failure (reset), then 4 in a row
    assert len(registrations.bodies) == 7


def test_timeout_names_the_gate_and_shows_pods_probe_error_and_logs(registrations) -> None:
    cluster = _cluster(registrations, never_ready=["engine"])
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        ReadinessGate(cluster, config=_config(timeout_s=0.5)).wait()
    assert time.monotonic() - started < 3.0
    text = str(info.value)
    assert "readiness gate 'workloads' did not pass within 0.5s" in text
    assert "seen: not available: Deployment/engine 0/1" in text
    assert "container engine: waiting (CrashLoopBackOff) restarts=3" in text
    assert "last probe error: Readiness probe failed: connection refused" in text
    assert "| engine-0: boom, connection refused" in text
    assert "what to do:" in text


def test_warmup_timeout_says_what_the_server_answered(registrations) -> None:
    registrations.script = [500] * 1000
    with pytest.raises(GateTimeout) as info:
        ReadinessGate(_cluster(registrations), config=_config(timeout_s=0.5)).wait()
    assert "readiness gate 'warmup'" in str(info.value)
    assert "HTTP 500" in str(info.value)


def test_unreachable_nginx_is_a_warmup_miss_not_a_crash() -> None:
    cluster = ScriptedCluster(nginx=("127.0.0.1", 9))  # discard port: nothing listens
    with pytest.raises(GateTimeout, match=r"'warmup'(.|\n)*ConnectError"):
        ReadinessGate(cluster, config=_config(timeout_s=0.3)).wait()


def test_the_whole_gate_shares_one_deadline(registrations) -> None:
    # workloads take ~0.3 s of a 0.4 s budget: dns + warm-up must fit in what is left or fail
    cluster = _cluster(registrations, ready_after_polls=30, dns_script=[False] * 1000)
    started = time.monotonic()
    with pytest.raises(GateTimeout, match="'dns'"):
        ReadinessGate(cluster, config=_config(timeout_s=0.4)).wait()
    assert time.monotonic() - started < 1.5
