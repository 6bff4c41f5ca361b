"""Readiness gate logic: ordering, streaks that reset, bounds, and what a timeout says."""

from __future__ import annotations

import time

import pytest
from scripted_cluster import WORKLOADS, ScriptedCluster

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
    # a round resolves each service's short name and FQDN; ok, ok, miss, then ok x3: the miss resets
    # the streak, so 3 more full rounds are needed
    names = 2 * len(WORKLOADS)
    cluster = _cluster(registrations, dns_script=[True] * (2 * names) + [False])
    ReadinessGate(cluster, config=_config()).wait()
    assert cluster.resolutions == 2 * names + 1 + 3 * names


def test_dns_resolves_every_service_short_and_fully_qualified(registrations) -> None:
    cluster = _cluster(registrations, namespace="hft-ci")
    ReadinessGate(cluster, config=_config(dns_streak=1)).wait()
    assert cluster.resolved == [n for w in WORKLOADS for n in (w, f"{w}.hft-ci.svc.cluster.local")]
    other = _cluster(registrations, namespace="hft-ci")
    ReadinessGate(other, config=_config(dns_streak=1, cluster_domain="corp.internal")).wait()
    assert "backend.hft-ci.svc.corp.internal" in other.resolved


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


@pytest.mark.parametrize(
    ("reason", "advice"),
    [
        ("ImagePullBackOff", "python -m pytest_hftk8s images"),
        ("ErrImagePull", "--hft-registry"),
        ("CreateContainerConfigError", "--hft-db-secret"),
        ("Unschedulable", "no node can take the pod"),
    ],
)
def test_a_reason_that_never_heals_fails_fast_with_the_pods_events(registrations, reason, advice) -> None:
    cluster = _cluster(registrations, never_ready=["engine"], waiting_reason=reason)
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        ReadinessGate(cluster, config=_config(timeout_s=60, fail_fast_grace_s=0.3)).wait()
    assert time.monotonic() - started < 3.0  # not the 60 s of the timeout
    text = str(info.value)
    assert "readiness gate 'workloads' failed fast after" in text
    assert f"pod engine-0 container engine is waiting with {reason}" in text
    assert "events of pod engine-0 (latest last):" in text
    assert "Warning BackOff: Back-off restarting failed container" in text  # the pod's own events
    assert advice in text
    assert "seen: not available: Deployment/engine 0/1" in text


def test_a_reason_that_never_heals_is_given_its_grace(registrations) -> None:
    # ImagePullBackOff for the first polls only (e.g. a registry blip): within the grace, no failure
    cluster = _cluster(registrations, ready_after_polls=10, waiting_reason="ImagePullBackOff")
    ReadinessGate(cluster, config=_config(fail_fast_grace_s=2.0)).wait()
    assert cluster.polls >= 10


def test_a_crash_loop_gets_a_longer_grace_then_fails(registrations) -> None:
    # a start-up order crash that heals (ready after ~0.3 s) passes with the crash-loop grace ...
    healing = _cluster(registrations, ready_after_polls=30, waiting_reason="CrashLoopBackOff")
    ReadinessGate(healing, config=_config(fail_fast_grace_s=0.05, crashloop_grace_s=5.0)).wait()
    # ... one that does not fails once the grace is over, with the log tail and what to do
    looping = _cluster(registrations, never_ready=["engine"])
    started = time.monotonic()
    with pytest.raises(GateTimeout) as info:
        ReadinessGate(looping, config=_config(timeout_s=60, crashloop_grace_s=0.5)).wait()
    assert 0.5 <= time.monotonic() - started < 3.0
    text = str(info.value)
    assert "container engine is waiting with CrashLoopBackOff" in text
    assert "| engine-0: boom, connection refused" in text
    assert "the container keeps exiting" in text
