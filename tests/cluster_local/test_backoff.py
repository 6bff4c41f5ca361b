"""Kubelet's restart backoff: immediate first restart, 10 s doubling to 5 min, reset after 10 min."""

from __future__ import annotations

import pytest

from pytest_hftk8s.cluster.local.backoff import CrashBackoff


def _delays(backoff: CrashBackoff, exits: int, *, run_for: float = 1.0) -> list[float]:
    now, out = 0.0, []
    for _ in range(exits):
        delay = backoff.delay_after_exit(now)
        out.append(delay)
        now += delay + run_for  # restarted after the delay, crashed again run_for later
    return out


def test_schedule_matches_kubelet() -> None:
    assert _delays(CrashBackoff(), 9) == [0, 10, 20, 40, 80, 160, 300, 300, 300]


def test_scale_shortens_every_step() -> None:
    assert _delays(CrashBackoff(scale=0.01), 8) == pytest.approx([0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0])


def test_running_ten_minutes_resets_the_schedule() -> None:
    backoff = CrashBackoff()
    assert _delays(backoff, 4) == [0, 10, 20, 40]
    last = backoff._last_restart
    assert backoff.delay_after_exit(last + 601) == 0  # ran > 10 min since its last restart
    assert backoff.delay_after_exit(last + 602) == 10


def test_running_under_ten_minutes_keeps_doubling() -> None:
    backoff = CrashBackoff()
    _delays(backoff, 3)  # 0, 10, 20
    assert backoff.delay_after_exit(backoff._last_restart + 599) == 40


def test_pod_kill_leaves_no_backoff_history() -> None:
    """A pod-killed container restarts at once, and so does the replacement's first own exit (as a
    new Kubernetes pod would); only its second exit waits kubelet's first 10 s step."""
    from pytest_hftk8s.cluster.local.cluster import _ReplacementBackoff

    backoff = _ReplacementBackoff(1.0)
    assert [backoff.delay_after_exit(t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 10.0]
