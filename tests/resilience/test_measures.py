"""Pure parts of the resilience measures: recovery from a timeline, baseline-relative thresholds,
the Secret's password and the allow-context option."""

from __future__ import annotations

import base64

import pytest

from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.resilience.measures import db_password, recovery
from pytest_hftk8s.slo.relative import accepted_rate, relative, resolve


def _timeline(rates: list[float], *, start: float = 1000.0) -> list[tuple[float, int]]:
    """100 ms buckets: each entry of ``rates`` is orders/s for one second."""
    return [(start + i / 10 + s, int(r / 10)) for s, r in enumerate(rates) for i in range(10)]


def test_recovery_time_is_back_to_the_floor_for_a_full_second() -> None:
    tl = _timeline([300, 300, 0, 0, 0, 150, 300, 300, 300])
    rec = recovery(tl, fault_at=1002.0, floor_rate=270)
    assert rec.dipped
    assert rec.min_rate == 0
    assert rec.recovery_s == pytest.approx(4.0, abs=0.11)  # 1006.0 starts the first full second >= 270/s


def test_no_dip_is_zero_recovery_and_never_back_is_none() -> None:
    assert recovery(_timeline([300] * 6), fault_at=1001.0, floor_rate=270).recovery_s == 0.0
    never = recovery(_timeline([300, 300, 0, 0, 100]), fault_at=1002.0, floor_rate=270)
    assert never.dipped
    assert never.recovery_s is None


def test_relative_threshold_is_ratio_of_baseline() -> None:
    rel = relative(accepted_rate(), ratio=0.9)
    slo = resolve(rel, 300.0)
    assert slo.name == "accepted_rate_vs_baseline"
    assert slo.threshold == pytest.approx(270.0)
    assert slo.comparator == ">="
    with pytest.raises(ConfigError, match="ratio > 0"):
        relative(accepted_rate(), ratio=0)


def test_db_password_from_rendered_secret() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "hft-db"},
        "data": {"password": base64.b64encode(b"s3").decode()},
    }
    assert db_password([{"kind": "ConfigMap"}, secret]) == "s3"
    with pytest.raises(HftError, match="hft-db"):
        db_password([])


def test_allow_context_is_repeatable_with_env_fallback(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        """
def pytest_configure(config):
    from pytest_hftk8s.options import resolve
    s = resolve(config)
    print("ALLOW", ",".join(s.allow_contexts), "DRY", s.chaos_dry_run)
"""
    )
    flags = pytester.runpytest_subprocess(
        "-s", "--hft-allow-context=a", "--hft-allow-context=b", "--hft-chaos-dry-run"
    )
    flags.stdout.fnmatch_lines(["*ALLOW a,b DRY True*"])
    monkeypatch.setenv("HFT_ALLOW_CONTEXT", "x, y")
    env = pytester.runpytest_subprocess("-s")
    env.stdout.fnmatch_lines(["*ALLOW x,y DRY False*"])


def test_pod_kill_leaves_no_backoff_history() -> None:
    """A pod-killed container restarts at once, and so does the replacement's first own exit (as a
    new Kubernetes pod would); only its second exit waits kubelet's first 10 s step."""
    from pytest_hftk8s.cluster.local.cluster import _ReplacementBackoff

    backoff = _ReplacementBackoff(1.0)
    assert [backoff.delay_after_exit(t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 10.0]


def test_digest_lists_each_experiment_with_its_figures() -> None:
    from pytest_hftk8s.resilience.digest import digest

    records = [
        {"nodeid": "t::a", "outcome": "passed", "chaos": ["text entry"]},
        {
            "nodeid": "t::b",
            "outcome": "passed",
            "chaos": [
                {
                    "experiment": "pod-kill engine",
                    "window": {"start": 1.0, "end": 1.0, "seconds": 0.0},
                    "intensity_reached": None,
                    "recovery": {"recovery_s": 0.7},
                    "acked_vs_stored": {
                        "acked": 5,
                        "acked_stored": 5,
                        "stored": 6,
                        "lost": 0,
                        "duplicated": 0,
                    },
                }
            ],
        },
    ]
    (row,) = digest(records)
    assert row["test"] == "t::b"
    assert row["recovery_s"] == 0.7
    assert row["acked_vs_stored"]["stored"] == 6
