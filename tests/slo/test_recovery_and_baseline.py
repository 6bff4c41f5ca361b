"""Pure judgements: recovery from a 100 ms timeline, baseline-relative thresholds, the Secret's
password, and the resilience digest built from typed records."""

from __future__ import annotations

import base64

import pytest

from pytest_hftk8s.errors import ConfigError, HftError
from pytest_hftk8s.report.digest import digest
from pytest_hftk8s.results import AckCheck, ChaosRecord, LoadSummary, Recovery, Series, TestRecord, Window
from pytest_hftk8s.slo.database import db_password
from pytest_hftk8s.slo.recovery import recovery
from pytest_hftk8s.slo.relative import accepted_rate, relative, resolve


def _timeline(counts: list[int], *, start: float = 1000.0) -> Series:
    """One entry per 100 ms bucket."""
    return Series(name="t", start=start, step=0.1, values=tuple(float(c) for c in counts))


def _per_second(rates: list[float]) -> list[int]:
    return [int(r / 10) for r in rates for _ in range(10)]


def test_recovery_time_is_back_to_the_floor_for_a_full_second() -> None:
    tl = _timeline(_per_second([300, 300, 0, 0, 0, 150, 300, 300, 300]))
    rec = recovery(tl, fault_at=1002.0, floor_rate=270)
    assert rec.dipped
    assert rec.min_rate == 0
    assert rec.recovery_s == pytest.approx(4.0, abs=1e-6)  # 1006.0 starts the first full second >= 270/s


def test_a_backlog_flushed_at_the_end_of_a_second_is_not_recovery() -> None:
    # Nothing for 0.9 s after the fault, then the whole second's backlog in the last 100 ms: a one-second
    # average says 300/s from the fault on; the throughput only holds the floor from the flush on.
    counts = _per_second([300, 300]) + [0] * 9 + [300] + _per_second([300, 300])
    rec = recovery(_timeline(counts), fault_at=1002.0, floor_rate=270)
    assert rec.dipped
    assert rec.dip_at == pytest.approx(1002.0)
    assert rec.recovery_s == pytest.approx(0.9, abs=1e-6)
    one_second_average = sum(counts[20:30]) / 1.0
    assert one_second_average >= 270  # what the old definition looked at: "recovered" at once


def test_a_flush_at_the_start_of_a_silent_second_is_not_recovery() -> None:
    counts = _per_second([300, 300]) + [300] + [0] * 9 + _per_second([300, 300])
    rec = recovery(_timeline(counts), fault_at=1002.0, floor_rate=270)
    assert rec.recovery_s == pytest.approx(1.0, abs=1e-6)  # only when answers come again


def test_jitter_of_one_bucket_is_not_a_dip_but_two_empty_buckets_are() -> None:
    # At a low rate answers land one bucket early or late: 11, 12, 10, 13... around a floor of 10.5.
    jitter = [11, 12, 10, 13, 11, 12, 10, 12, 11, 12] * 3
    assert recovery(_timeline(jitter), fault_at=1000.0, floor_rate=105).recovery_s == 0.0
    gap = [12] * 5 + [0, 0] + [12] * 20
    rec = recovery(_timeline(gap), fault_at=1000.0, floor_rate=105)
    assert rec.dipped
    assert rec.recovery_s == pytest.approx(0.7, abs=1e-6)


def test_no_dip_is_zero_recovery_and_never_back_is_none() -> None:
    assert recovery(_timeline(_per_second([300] * 6)), fault_at=1001.0, floor_rate=270).recovery_s == 0.0
    never = recovery(_timeline(_per_second([300, 300, 0, 0, 100])), fault_at=1002.0, floor_rate=270)
    assert never.dipped
    assert never.recovery_s is None
    # A last bucket that is not wholly observed (``until``) cannot complete a second.
    short = recovery(
        _timeline(_per_second([300, 300, 0]) + [30] * 10), fault_at=1002.0, floor_rate=270, until=1003.95
    )
    assert short.recovery_s is None


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


def _load(name: str, achieved: float) -> LoadSummary:
    w = Window(1.0, 2.0)
    return LoadSummary(
        name=name, mode="open", offered_rate=300, duration_s=1, window=w, order_window=w, users=1,
        registrations_ok=1, registrations_failed=0, scheduled=1, sent=1, completed=1, ok=1, achieved_rate=achieved,
        statuses={}, errors={}, latency_ms={}, cpu={}, schedule={}, valid=True,
    )  # fmt: skip


def test_digest_lists_each_experiment_with_the_throughput_of_its_load_run() -> None:
    chaos = ChaosRecord(
        experiment="pod-kill engine",
        window=Window(1.0, 1.0),
        load="kill-engine",
        recovery=Recovery(fault_at=1.0, floor_rate=270, recovery_s=0.7),
        acked_vs_stored=AckCheck(acked=5, stored=6, acked_stored=5, lost=0, duplicated=0, stored_not_acked=1),
    )
    records = [
        TestRecord(nodeid="t::a"),
        TestRecord(nodeid="t::b", chaos=[chaos], loads=[_load("other", 1.0), _load("kill-engine", 296.5)]),
    ]
    (row,) = digest(records)
    assert row.test == "t::b"
    assert row.recovery_s == 0.7
    assert row.acked_vs_stored is not None
    assert row.acked_vs_stored.stored == 6
    assert row.throughput == 296.5  # the pod-kill's own run, found by name (it was a bare string before)
