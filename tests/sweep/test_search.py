"""The ceiling search over synthetic probes with a known ceiling: found within its resolution, the
time budget respected, invalid and noisy probes handled; and the probe criteria on load summaries."""

from __future__ import annotations

import random

import pytest

from pytest_hftk8s.results import ActionCounts, LoadSummary, SweepProbe, Window
from pytest_hftk8s.sweep.criteria import Criteria, judge, throughput_ratio
from pytest_hftk8s.sweep.search import find_ceiling


class Clock:
    """A fake monotonic clock that the synthetic probes advance by their duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def synthetic(
    ceiling: float, clock: Clock, *, seconds: float = 7.0, invalid_at=(), noise: float = 0.0, seed: int = 0
):
    """probe(rate): sustainable below ``ceiling`` (blurred by ``noise``), invalid once at ``invalid_at``."""
    rng = random.Random(seed)
    invalid = set(invalid_at)
    rates: list[float] = []

    def probe(rate: float) -> SweepProbe:
        clock.now += seconds
        rates.append(rate)
        if rate in invalid:
            invalid.discard(rate)
            return SweepProbe(
                1, rate, rate, None, None, valid=False, sustainable=False, reasons=["invalid run"]
            )
        limit = ceiling * (1 + rng.uniform(-noise, noise))
        ok = rate <= limit
        return SweepProbe(1, rate, min(rate, limit), 1.0 if ok else limit / rate, 5.0, True, ok)

    probe.rates = rates  # type: ignore[attr-defined]
    return probe


@pytest.mark.parametrize("ceiling", [37.0, 100.0, 333.0, 1234.0, 5000.0])
@pytest.mark.parametrize("start", [10.0, 50.0, 400.0])
def test_ceiling_found_within_resolution(ceiling: float, start: float) -> None:
    clock = Clock()
    found = find_ceiling(synthetic(ceiling, clock), start=start, budget_s=1e9, resolution=0.05, clock=clock)
    assert found.stopped == "resolution"
    assert not found.budget_exhausted
    assert found.best is not None
    assert found.failed is not None
    assert found.best.offered_rate <= ceiling < found.failed.offered_rate
    assert found.failed.offered_rate / found.best.offered_rate - 1 <= 0.05
    assert found.best.offered_rate >= ceiling / 1.05
    assert found.best in found.probes


def test_doubling_then_bisecting_probes_few_rates() -> None:
    clock = Clock()
    probe = synthetic(300.0, clock)
    found = find_ceiling(probe, start=50.0, budget_s=1e9, resolution=0.1, clock=clock)
    # 50, 100, 200, 400 (fails), then 300, 350 (fails), 325 (fails), 312.5 (fails): within 10%.
    assert probe.rates[:4] == [50.0, 100.0, 200.0, 400.0]
    assert all(200.0 < r < 400.0 for r in probe.rates[4:])
    assert len(probe.rates) <= 9
    assert found.best is not None
    assert found.best.offered_rate == 300.0


def test_budget_is_respected_and_says_so() -> None:
    clock = Clock()
    probe = synthetic(1000.0, clock, seconds=7.0)
    found = find_ceiling(probe, start=50.0, budget_s=30.0, probe_cost_s=7.0, resolution=0.05, clock=clock)
    assert found.budget_exhausted
    assert found.stopped == "budget"
    assert clock.now <= 30.0  # never started a probe it could not finish
    assert len(found.probes) == 4  # 4 x 7 s fit into 30 s, a fifth would not
    assert found.best is not None
    assert found.best.offered_rate == 400.0  # the highest sustained so far, not a guess
    assert found.failed is None


def test_budget_learns_the_real_probe_cost() -> None:
    # The caller's estimate is 1 s, but a probe takes 10 s: after the first one the search plans
    # with 10 s, so it stops before overrunning a 25 s budget (two probes, not three).
    clock = Clock()
    found = find_ceiling(
        synthetic(1000.0, clock, seconds=10.0), start=50.0, budget_s=25.0, probe_cost_s=1.0, clock=clock
    )
    assert len(found.probes) == 2
    assert clock.now <= 25.0


def test_an_invalid_run_is_repeated_before_it_counts() -> None:
    clock = Clock()
    probe = synthetic(300.0, clock, invalid_at=[100.0])
    found = find_ceiling(probe, start=50.0, budget_s=1e9, resolution=0.1, clock=clock)
    assert probe.rates[:3] == [50.0, 100.0, 100.0]  # the generator's hiccup at 100/s was retried
    assert found.best is not None
    assert found.best.offered_rate == 300.0


def test_a_run_invalid_every_time_is_not_sustainable() -> None:
    clock = Clock()

    def saturated_generator(rate: float) -> SweepProbe:
        clock.now += 1
        valid = rate < 150
        return SweepProbe(1, rate, rate, 1.0, 5.0, valid=valid, sustainable=valid)

    found = find_ceiling(saturated_generator, start=50.0, budget_s=1e9, resolution=0.1, clock=clock)
    assert found.best is not None
    assert found.best.offered_rate < 150 <= found.failed.offered_rate  # type: ignore[union-attr]


def test_nothing_sustainable_stops_at_the_floor() -> None:
    clock = Clock()
    found = find_ceiling(synthetic(0.5, clock), start=40.0, min_rate=5.0, budget_s=1e9, clock=clock)
    assert found.best is None
    assert found.stopped == "min_rate"
    assert [p.offered_rate for p in found.probes] == [40.0, 20.0, 10.0, 5.0]


def test_everything_sustainable_stops_at_the_cap() -> None:
    clock = Clock()
    found = find_ceiling(synthetic(1e9, clock), start=100.0, max_rate=500.0, budget_s=1e9, clock=clock)
    assert found.stopped == "max_rate"
    assert found.best is not None
    assert found.best.offered_rate == 500.0


@pytest.mark.parametrize("seed", range(20))
def test_noisy_probes_still_land_near_the_ceiling(seed: int) -> None:
    # +-5% noise on the ceiling: the answer is always a rate that passed, within the noise band
    # widened by the resolution.
    clock = Clock()
    probe = synthetic(800.0, clock, noise=0.05, seed=seed)
    found = find_ceiling(probe, start=50.0, budget_s=1e9, resolution=0.05, clock=clock)
    assert found.best is not None
    assert found.best.sustainable
    assert 800.0 * 0.95 / 1.05 <= found.best.offered_rate <= 800.0 * 1.05


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_rate <= start <= max_rate"):
        find_ceiling(lambda r: None, start=0.5, min_rate=1.0, budget_s=10)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="resolution > 0"):
        find_ceiling(lambda r: None, start=5, resolution=0, budget_s=10)  # type: ignore[arg-type,return-value]


def _summary(*, placed: int, placed_ok: int, cancels: int = 0, valid: bool = True) -> LoadSummary:
    w = Window(0.0, 5.0)
    return LoadSummary(
        name="probe", mode="open", offered_rate=100.0, duration_s=5.0, window=w, order_window=w, users=8,
        registrations_ok=8, registrations_failed=0, scheduled=placed + cancels, sent=placed + cancels,
        completed=placed_ok + cancels, ok=placed_ok + cancels, achieved_rate=(placed_ok + cancels) / 5,
        statuses={}, errors={}, latency_ms={}, cpu={}, schedule={}, valid=valid,
        invalid_reasons=[] if valid else ["load generator saturated: 97% of one core (limit 90%)"],
        actions={"limit": ActionCounts(placed // 2, placed_ok // 2), "cross": ActionCounts(placed - placed // 2,
                 placed_ok - placed_ok // 2), "cancel": ActionCounts(cancels, cancels)},
    )  # fmt: skip


def test_criteria_judge_p99_ratio_and_validity() -> None:
    criteria = Criteria(max_p99_ms=100.0, min_ratio=0.95)
    good = judge(
        _summary(placed=400, placed_ok=390, cancels=100), backends=2, client_p99_ms=40.0, criteria=criteria
    )
    assert good.sustainable
    assert good.reasons == []
    assert good.throughput_ratio == pytest.approx(0.975)
    assert good.backends == 2

    # Cancels are not orders: 100 of them all answered do not hide 30 lost placements.
    lossy = _summary(placed=400, placed_ok=370, cancels=100)
    assert throughput_ratio(lossy) == pytest.approx(0.925)
    bad = judge(lossy, backends=2, client_p99_ms=180.0, criteria=criteria)
    assert not bad.sustainable
    assert any("client p99 180.0 ms > 100 ms" in r for r in bad.reasons)
    assert any("accepted 92.5% of offered orders < 95%" in r for r in bad.reasons)

    unbounded = judge(
        _summary(placed=10, placed_ok=10), backends=1, client_p99_ms=float("inf"), criteria=criteria
    )
    assert not unbounded.sustainable
    assert "unbounded" in unbounded.reasons[0]

    invalid = judge(
        _summary(placed=10, placed_ok=10, valid=False), backends=1, client_p99_ms=3.0, criteria=criteria
    )
    assert not invalid.sustainable
    assert invalid.reasons == ["invalid run: load generator saturated: 97% of one core (limit 90%)"]
