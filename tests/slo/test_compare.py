"""The comparison statistics on synthetic samples with known answers (``slo/compare.py``).

Each verdict has a case that should give it and a case that should not: no change, a small change
inside the baseline's noise, a clear regression, an improvement, too few samples, latency
quantiles from HDR histograms, a known regression, and two whole reports.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from pytest_hftk8s.results import (
    ChaosRecord,
    Comparison,
    LoadSummary,
    MeasureComparison,
    Recovery,
    RunIdentity,
    SessionReport,
    SloResult,
    TestRecord,
    Window,
)
from pytest_hftk8s.results import Series as Ts
from pytest_hftk8s.slo.compare import (
    MIN_REPEATS,
    Histogram,
    Samples,
    compare_blocks,
    compare_reports,
    judge,
    per_second,
)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _seconds(mean: float, n: int, rng: np.random.Generator, sd: float = 3.0) -> list[float]:
    return list(rng.normal(mean, sd, n))


def _blocks(means: list[float], *, n: int = 20, seed: int = 1, sd: float = 3.0) -> Samples:
    rng = _rng(seed)
    return Samples(blocks=[_seconds(m, n, rng, sd) for m in means])


# -- judge -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "better", "verdict"),
    [
        ((-0.30, -0.20), "higher", "regressed"),
        ((0.20, 0.30), "lower", "regressed"),
        ((0.20, 0.30), "higher", "improved"),
        ((-0.02, 0.03), "higher", "unchanged"),
        ((-0.08, 0.01), "higher", "inconclusive"),  # straddles the -5% edge
        ((-0.06, -0.04), "higher", "inconclusive"),  # below zero, but not wholly beyond 5%
    ],
)
def test_judge_needs_the_whole_interval_beyond_the_minimum_effect(ci, better, verdict):
    assert judge(ci, better=better, threshold=0.05, enough=True)[0] == verdict


def test_judge_never_calls_a_regression_with_too_few_samples():
    assert judge((-0.9, -0.8), better="higher", threshold=0.05, enough=False)[0] == "inconclusive"


# -- throughput ------------------------------------------------------------------------------------


def test_no_change_is_unchanged():
    m = compare_blocks(
        "throughput", _blocks([200, 201, 199], seed=1), _blocks([200, 199, 201], seed=2), test="t"
    )
    assert m.verdict == "unchanged", m
    assert m.ci is not None
    assert -0.05 <= m.ci[0] <= 0 <= m.ci[1] <= 0.05
    assert m.effect == pytest.approx(0.0, abs=0.02)
    assert m.p_value is not None
    assert m.p_value > 0.01


def test_a_clear_regression_is_regressed_with_its_effect():
    m = compare_blocks(
        "throughput", _blocks([200, 201, 199], seed=1), _blocks([140, 141, 139], seed=2), test="t"
    )
    assert m.verdict == "regressed", m
    assert m.effect == pytest.approx(-0.30, abs=0.02)
    assert m.ci is not None
    assert m.ci[1] < -0.05
    assert m.ci[0] <= m.effect <= m.ci[1]
    assert m.p_value is not None
    assert m.p_value < 1e-6
    assert m.distribution == "samples"
    assert len(m.baseline_values) == 60
    assert len(m.current_values) == 60


def test_an_improvement_is_improved():
    m = compare_blocks(
        "throughput", _blocks([200, 201, 199], seed=1), _blocks([260, 258, 262], seed=2), test="t"
    )
    assert m.verdict == "improved", m


def test_a_small_change_inside_the_baselines_noise_is_not_a_regression():
    """The baseline's repeats spread 12% between them: an 8% drop is inside that noise."""
    base = _blocks([188, 200, 212], seed=3, sd=2.0)
    m = compare_blocks("throughput", base, _blocks([184, 185, 183], seed=4, sd=2.0), test="t")
    assert m.noise == pytest.approx(0.12, abs=0.02)
    assert m.min_effect == pytest.approx(m.noise)  # widened from 5%
    assert "widened" in m.reason
    assert m.effect is not None
    assert m.effect < -0.05
    assert m.verdict != "regressed", m  # ...but not beyond what the baseline itself varies by


def test_the_same_small_change_is_a_regression_when_the_baseline_is_quiet():
    """The counterpart: a quiet baseline (spread ~1%) and a 12% drop is a regression."""
    base = _blocks([200, 201, 199], seed=3, sd=2.0)
    m = compare_blocks("throughput", base, _blocks([176, 175, 177], seed=4, sd=2.0), test="t")
    assert m.min_effect == pytest.approx(0.05)
    assert m.verdict == "regressed", m


def test_too_few_repeats_is_inconclusive_never_regressed():
    base = _blocks([200], n=60, seed=1)
    m = compare_blocks("throughput", base, _blocks([100], n=60, seed=2), test="t")
    assert (m.repeats_baseline, m.repeats_current) == (1, 1) < (MIN_REPEATS, MIN_REPEATS)
    assert m.effect == pytest.approx(-0.5, abs=0.03)  # the effect is still measured and shown
    assert m.verdict == "inconclusive"
    assert "--hft-repeat" in m.reason


def test_two_repeats_a_side_that_happen_to_differ_are_not_a_regression():
    """Seen in an A/A run: pod-kill recovery 1.70/1.86 s, then 2.10/2.36 s on the same commit. A
    bootstrap over two values a side calls that +25% [+14%, +37%]; Welch's t (1-2 degrees of freedom)
    says how little two repeats know."""
    m = compare_blocks(
        "recovery_s", Samples(blocks=[[1.70], [1.86]]), Samples(blocks=[[2.10], [2.36]]), test="t"
    )
    assert m.effect == pytest.approx(0.25, abs=0.01)
    assert m.ci is not None
    assert m.ci[0] < 0.05
    assert m.verdict == "inconclusive", m
    # The same difference, consistently over five repeats a side, is a regression.
    five = compare_blocks(
        "recovery_s",
        Samples(blocks=[[v] for v in (1.70, 1.86, 1.78, 1.75, 1.81)]),
        Samples(blocks=[[v] for v in (2.20, 2.28, 2.24, 2.18, 2.26)]),
        test="t",
    )
    assert five.verdict == "regressed", five


def test_too_few_seconds_is_inconclusive():
    m = compare_blocks("throughput", _blocks([200, 200], n=2), _blocks([100, 100], n=2, seed=2), test="t")
    assert m.verdict == "inconclusive"


def test_no_samples_on_a_side_says_which():
    m = compare_blocks("throughput", Samples(), _blocks([100, 100]), test="t")
    assert m.verdict == "inconclusive"
    assert "baseline" in m.reason


def test_the_bootstrap_is_seeded():
    args = ("throughput", _blocks([200, 190, 205], seed=1), _blocks([180, 185, 183], seed=2))
    one, two = compare_blocks(*args, test="t"), compare_blocks(*args, test="t")
    assert one.ci == two.ci


def test_repeats_are_blocks_run_to_run_noise_widens_the_interval():
    """The same seconds regrouped: 3 repeats whose means differ give a wider interval than 3 alike."""
    rng = _rng(7)
    alike = Samples(blocks=[_seconds(200, 20, rng) for _ in range(3)])
    apart = Samples(blocks=[[v + d for v in b] for b, d in zip(alike.blocks, (-15, 0, 15), strict=True)])
    cur = _blocks([200, 200, 200], seed=8)
    narrow = compare_blocks("throughput", alike, cur, test="t").ci
    wide = compare_blocks("throughput", apart, cur, test="t").ci
    assert narrow is not None
    assert wide is not None
    assert (wide[1] - wide[0]) > 2 * (narrow[1] - narrow[0])


# -- latency quantiles -----------------------------------------------------------------------------


def _hist(scale_ms: float, n: int, seed: int, unanswered: int = 0) -> Histogram:
    rng = _rng(seed)
    h = HdrHistogram(1, 120_000_000, 3)
    for v in rng.lognormal(math.log(scale_ms * 1000), 0.5, n):
        h.record_value(int(v))
    load = _load("x", histogram=h.encode().decode())
    load.unanswered = unanswered
    hist = Histogram.of(load)
    assert hist is not None
    return hist


def test_latency_quantile_unchanged_and_regressed():
    base = Samples(hists=[_hist(2.0, 30_000, s) for s in (1, 2, 3)])
    same = Samples(hists=[_hist(2.0, 30_000, s) for s in (4, 5, 6)])
    slower = Samples(hists=[_hist(3.0, 30_000, s) for s in (7, 8, 9)])
    unchanged = compare_blocks("client_p99_ms", base, same, test="t")
    regressed = compare_blocks("client_p99_ms", base, slower, test="t")
    assert unchanged.verdict == "unchanged", unchanged
    assert regressed.verdict == "regressed", regressed
    assert regressed.effect == pytest.approx(0.5, abs=0.1)
    assert regressed.distribution == "quantiles"
    assert len(regressed.grid) == len(regressed.current_values)
    assert regressed.current_values[-1] > regressed.baseline_values[-1]


def test_a_p99_of_a_few_thousand_requests_cannot_be_called_unchanged_within_5_percent():
    """About 30 requests beyond the p99 of each run: its interval is wider than +-5%, so "inconclusive"."""
    base = Samples(hists=[_hist(2.0, 3000, s) for s in (1, 2, 3)])
    m = compare_blocks(
        "client_p99_ms", base, Samples(hists=[_hist(2.0, 3000, s) for s in (4, 5, 6)]), test="t"
    )
    assert m.verdict == "inconclusive", m
    assert m.ci is not None
    assert m.ci[1] - m.ci[0] > 0.10


def test_unanswered_requests_make_the_p99_infinite_and_a_regression():
    base = Samples(hists=[_hist(2.0, 3000, s) for s in (1, 2, 3)])
    lost = Samples(hists=[_hist(2.0, 3000, s, unanswered=200) for s in (4, 5, 6)])
    m = compare_blocks("client_p99_ms", base, lost, test="t")
    assert m.current == math.inf
    assert m.verdict == "regressed", m


def test_a_p99_from_too_few_requests_is_inconclusive():
    base = Samples(hists=[_hist(2.0, 100, s) for s in (1, 2, 3)])
    m = compare_blocks(
        "client_p99_ms", base, Samples(hists=[_hist(9.0, 100, s) for s in (4, 5, 6)]), test="t"
    )
    assert m.verdict == "inconclusive", m


# -- per-repeat measures ---------------------------------------------------------------------------


def test_recovery_against_a_baseline_that_never_dipped_is_judged_on_the_difference():
    never = Samples(blocks=[[0.0], [0.0], [0.0]])
    m = compare_blocks("recovery_s", never, Samples(blocks=[[3.1], [2.8], [3.4]]), test="t")
    assert m.verdict == "regressed"
    assert m.effect is None
    assert "difference" in m.reason
    m = compare_blocks("recovery_s", never, Samples(blocks=[[0.0], [0.1], [0.0]]), test="t")
    assert m.verdict == "unchanged", m  # within the 0.2 s the timeline can resolve


# -- two reports -----------------------------------------------------------------------------------

START = 1_800_000_000.0


def _load(name: str, *, rate: float = 200.0, seconds: int = 10, seed: int = 0, histogram: str = "",
          start: float = START, offered: float = 200.0) -> LoadSummary:  # fmt: skip
    rng = _rng(seed)
    counts = np.round(rng.normal(rate / 10, 1.0, seconds * 10))  # a constant-rate schedule: little jitter
    ok = int(counts.sum())
    return LoadSummary(
        name=name, mode="open", offered_rate=offered, duration_s=seconds, window=Window(start - 1, start + seconds),
        order_window=Window(start, start + seconds), users=8, registrations_ok=8, registrations_failed=0,
        scheduled=ok, sent=ok, completed=ok, ok=ok, achieved_rate=ok / seconds, statuses={"200": ok}, errors={},
        latency_ms={}, cpu={}, schedule={}, valid=True, histogram=histogram,
        timeline=Ts("timeline", start - 1, 0.1, (0.0,) * 10 + tuple(counts), unit="answers"),
    )  # fmt: skip


def _record(case: str, repeat: int, *, rate: float, seed: int, recovery: float | None = None) -> TestRecord:
    h = HdrHistogram(1, 120_000_000, 3)
    for v in _rng(seed).lognormal(math.log(2000), 0.4, 1500):
        h.record_value(int(v))
    load = _load("run", rate=rate, seed=seed, histogram=h.encode().decode())
    rec = TestRecord(nodeid=f"{case}[rep{repeat}]", repeat=repeat, case=case, loads=[load])
    if recovery is not None:
        w = Window(START, START + 10)
        rec.chaos = [
            ChaosRecord(
                experiment="pod-kill backend",
                load="run",
                recovery=Recovery(START, 100.0, recovery_s=recovery),
            )
        ]
        rec.slos = [SloResult("recovery_time_s", "", "<=", 10.0, recovery, recovery <= 10.0, w)]
    return rec


def _report(rate: float, *, seeds: tuple[int, ...], repeat: int = 3, cpu: str = "EPYC",
            comparison: Comparison | None = None) -> SessionReport:  # fmt: skip
    tests = [_record("suite.py::test_rate", i + 1, rate=rate, seed=s) for i, s in enumerate(seeds)]
    tests += [
        _record("suite.py::test_kill", i + 1, rate=rate, seed=s + 50, recovery=0.8)
        for i, s in enumerate(seeds)
    ]
    return SessionReport(schema=3, cluster="local", profile="local", started=START, finished=START + 60,
                         tests=tests, repeat=repeat, comparison=comparison,
                         identity=RunIdentity(commit="abc", cpu_model=cpu, cores=2))  # fmt: skip


def test_reports_compare_per_case_and_load_run():
    base = _report(200, seeds=(1, 2, 3))
    same = compare_reports(_report(200, seeds=(4, 5, 6)), base)
    assert {m.verdict for m in same.measures if m.measure == "throughput"} == {"unchanged"}
    assert not same.regressions
    assert same.verdict in ("unchanged", "inconclusive")
    keys = {m.key for m in same.measures}
    assert "suite.py::test_rate::run::throughput" in keys
    assert "suite.py::test_kill::run::recovery_s" in keys
    assert "session::resilience_score" in keys
    slower = compare_reports(_report(130, seeds=(4, 5, 6)), base, fail_on_regression=True)
    assert slower.verdict == "regressed"
    assert slower.fail_on_regression
    assert "suite.py::test_rate::run::throughput" in slower.regressions


def test_a_regression_the_baseline_already_had_is_known_not_new():
    key = "suite.py::test_rate::run::throughput"
    earlier = Comparison(
        baseline=RunIdentity(), current=RunIdentity(), verdict="regressed",
        measures=[MeasureComparison(test="suite.py::test_rate", load="run", measure="throughput", unit="requests/s",
                                    better="higher", verdict="regressed")],
    )  # fmt: skip
    result = compare_reports(_report(130, seeds=(4, 5, 6)), _report(200, seeds=(1, 2, 3), comparison=earlier))
    m = next(m for m in result.measures if m.key == key)
    assert m.verdict == "regressed"
    assert m.known
    assert key in result.known_regressions
    assert key not in result.regressions
    assert result.verdict != "regressed" or result.regressions  # a known one alone does not alert


def test_warnings_name_another_machine_and_too_few_repeats():
    result = compare_reports(_report(200, seeds=(4,), repeat=1, cpu="Xeon"), _report(200, seeds=(1, 2, 3)))
    text = " ".join(result.warnings)
    assert "another machine" in text
    assert "--hft-repeat" in text
    assert {m.verdict for m in result.measures} == {"inconclusive"}


def test_per_second_sums_whole_seconds_of_the_order_window():
    load = _load("x", rate=100, seconds=5, seed=3)
    secs = per_second(load)
    assert len(secs) == 5  # the second before the window (registrations) is not counted
    assert sum(secs) == pytest.approx(load.ok)


def test_a_closed_loop_run_is_compared_on_throughput_only():
    """Its latency is the concurrency over its throughput (Little's law): not a measure of its own."""
    base, cur = _report(200, seeds=(1, 2, 3)), _report(200, seeds=(4, 5, 6))
    for rec in base.tests + cur.tests:
        rec.loads[0].mode = "closed"
    measures = {m.key.rsplit("::", 1)[1] for m in compare_reports(cur, base).measures if "test_rate" in m.key}
    assert measures == {"throughput"}
