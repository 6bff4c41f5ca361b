"""Realistic typed records for the report's tests: what a session on the local cluster records.

- ``pod_kill``: 60 s of open-loop load at ~80 orders/s; the engine pod is killed at t=20 s,
  throughput dips to 0 and is back at t=24 s; the recovery SLO holds, the p99 SLO does not.
- ``cpu_stress``: a CPU stress of backend-0 from t=15 s to t=45 s: CPU at its limit, 40% of CFS
  periods throttled, a named bottleneck.
- ``memory_oom``: memory pressure on engine-0: OOMKilled at t=18 s, CrashLoopBackOff at t=30 s.
- ``sweep``: a scaling sweep on the field report's numbers with its USL fit and bottleneck.
- ``no_load``: a test that drove no load (nothing to plot).

Times are epoch seconds; ``T0`` is the first test's start.
"""

from __future__ import annotations

import math

import numpy as np

from pytest_hftk8s.results import (
    AckCheck,
    Bottleneck,
    ChaosRecord,
    Intensity,
    LoadSummary,
    OomSequence,
    PlatformInfo,
    Recovery,
    ResilienceScore,
    SaturationSignal,
    ScoreItem,
    Series,
    SessionReport,
    SloResult,
    SweepPoint,
    SweepProbe,
    SweepResult,
    TestRecord,
    Totals,
    UslFit,
    Window,
)

T0 = 1_764_740_000.0
MARGIN = 15.0
STEP = 1.0
PODS = ("nginx-7d9f", "backend-0", "engine-0", "postgres-0", "redis-0")
MIB = 1024.0 * 1024.0


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _series(name: str, start: float, values: np.ndarray | list[float], *, step: float = STEP, unit: str = "",
            **labels: str) -> Series:  # fmt: skip
    return Series(
        name=name, start=start, step=step, values=tuple(float(v) for v in values), unit=unit, labels=labels
    )


def _slo(name: str, window: Window, *, observed: object, threshold: object, comparator: str, passed: bool,
         severity: str = "error", unit: str = "", detail: object = None) -> SloResult:  # fmt: skip
    return SloResult(
        name=name, query=f"{name}($window)", comparator=comparator, threshold=threshold, observed=observed,
        passed=passed, window=window, severity=severity, unit=unit, detail=detail,  # type: ignore[arg-type]
    )  # fmt: skip


def load_run(name: str, start: float, *, seconds: float = 60.0, rate: float = 80.0,
             outage: tuple[float, float] | None = None, slow: tuple[float, float] | None = None,
             seed: int = 1) -> LoadSummary:  # fmt: skip
    """An open-loop run: the 100 ms timeline, the per-second client latency and failure timelines."""
    rng = _rng(seed)
    buckets = int(seconds * 10)
    t = start + np.arange(buckets) * 0.1
    counts = rng.poisson(rate / 10.0, buckets).astype(float)
    if outage:
        counts[(t >= start + outage[0]) & (t < start + outage[1])] = 0.0
    secs = int(seconds)
    ts = start + np.arange(secs)
    p50 = 2.0 + rng.normal(0, 0.15, secs)
    p99 = 9.0 + rng.normal(0, 0.8, secs)
    errors = np.zeros(secs)
    if outage:
        hit = (ts >= start + outage[0] - 1) & (ts < start + outage[1])
        p99[hit] = 1500.0
        p50[hit] = 400.0
        errors[hit] = rate
    if slow:
        hit = (ts >= start + slow[0]) & (ts < start + slow[1])
        p99[hit] *= 6
        p50[hit] *= 2
    window = Window(start - 2.0, start + seconds)
    ok = int(counts.sum())
    return LoadSummary(
        name=name, mode="open", offered_rate=rate, duration_s=seconds, window=window,
        order_window=Window(start, start + seconds), users=8, registrations_ok=8, registrations_failed=0,
        scheduled=int(rate * seconds), sent=int(rate * seconds), completed=int(rate * seconds), ok=ok,
        achieved_rate=ok / seconds, statuses={"200": ok}, errors={"timeout": int(errors.sum())},
        latency_ms={"p50": 2.0, "p99": float(np.percentile(p99, 99))}, cpu={"utilization": 0.12}, schedule={},
        valid=True, mix={"limit": 0.6, "cancel": 0.25, "cross": 0.15},
        timeline=_series("timeline", start, counts, step=0.1, unit="answers"),
        latency_timeline={"p50": _series("p50", start, p50, unit="ms"), "p99": _series("p99", start, p99, unit="ms")},
        errors_timeline=_series("errors", start, errors, unit="requests"),
    )  # fmt: skip


def prometheus_series(window: Window, *, rate: float = 80.0, outage: tuple[float, float] | None = None,
                      cpu_stress: tuple[str, float, float] | None = None,
                      memory: tuple[str, float, float, list[float]] | None = None,
                      restarts: dict[str, list[float]] | None = None, seed: int = 2) -> tuple[Window, list[Series]]:  # fmt: skip
    """What the recorder's range queries return over ``window`` plus a margin (offsets are seconds
    after ``window.start``); one sample is missing (nan) in every series, as after a missed scrape."""
    rng = _rng(seed)
    sw = Window(window.start - MARGIN, window.end + MARGIN)
    n = int(sw.seconds / STEP)
    rel = np.arange(n) * STEP - MARGIN  # seconds since window.start
    inside = (rel >= 0) & (rel < window.seconds)
    accepted = np.where(inside, rate + rng.normal(0, 2.5, n), 0.0)
    errors = np.zeros(n)
    if outage:
        hit = (rel >= outage[0]) & (rel < outage[1])
        accepted[hit] = 0.0
        errors[hit] = rate * 0.6
    accepted[n // 3] = math.nan
    out = [
        _series("accepted_rate", sw.start, accepted, unit="orders/s"),
        _series("order_rate_by_outcome", sw.start, accepted, unit="orders/s", outcome="accepted"),
        _series("order_rate_by_outcome", sw.start, errors, unit="orders/s", outcome="error"),
        _series(
            "server_p50_ms", sw.start, np.where(inside, 1.4 + rng.normal(0, 0.1, n), math.nan), unit="ms"
        ),
        _series(
            "server_p99_ms", sw.start, np.where(inside, 6.0 + rng.normal(0, 0.5, n), math.nan), unit="ms"
        ),
    ]
    limits = {"nginx-7d9f": 0.5, "backend-0": 0.5, "engine-0": 0.5, "postgres-0": 1.0, "redis-0": 0.25}
    mem_limits = {"nginx-7d9f": 64, "backend-0": 256, "engine-0": 256, "postgres-0": 512, "redis-0": 64}
    for i, pod in enumerate(PODS):
        cpu = np.where(inside, limits[pod] * (0.25 + 0.05 * i) + rng.normal(0, 0.01, n), 0.02)
        throttled = np.where(inside, 0.01, 0.0) + np.abs(rng.normal(0, 0.003, n))
        mem = np.full(n, mem_limits[pod] * 0.35 * MIB) + rng.normal(0, 0.5 * MIB, n)
        if cpu_stress and cpu_stress[0] == pod:
            hit = (rel >= cpu_stress[1]) & (rel < cpu_stress[2])
            cpu[hit] = limits[pod] * 0.99
            throttled[hit] = 0.41
        if memory and memory[0] == pod:
            climb = (rel >= memory[1]) & (rel < memory[2])
            mem[climb] = np.minimum(mem_limits[pod] * MIB, mem[climb] + (rel[climb] - memory[1]) * 30 * MIB)
            for at in memory[3]:  # each OOM kill drops the working set back
                mem[(rel >= at) & (rel < at + 2)] = 20 * MIB
        cpu[n // 2] = math.nan
        counts = np.zeros(n)
        for at in (restarts or {}).get(pod, []):
            counts[rel >= at] += 1
        out += [
            _series("cpu_cores_by_pod", sw.start, cpu, unit="cores", pod=pod),
            _series("cpu_limit_by_pod", sw.start, np.full(n, limits[pod]), unit="cores", pod=pod),
            _series("cpu_throttled_share_by_pod", sw.start, throttled, unit="ratio", pod=pod),
            _series("memory_by_pod", sw.start, mem, unit="bytes", pod=pod),
            _series(
                "memory_limit_by_pod", sw.start, np.full(n, mem_limits[pod] * MIB), unit="bytes", pod=pod
            ),
            _series("restarts_by_pod", sw.start, counts, unit="restarts", pod=pod),
        ]
    return sw, out


def pod_kill(start: float = T0) -> TestRecord:
    """A pod kill at t=20 s under 60 s of load at ~80 orders/s: a dip to 0, back at t=24 s."""
    w = Window(start, start + 62.0)
    run = load_run("kill-engine", start + 2.0, outage=(18.0, 22.0))
    fault = start + 20.0
    recovery = Recovery(fault_at=fault, floor_rate=72.0, dipped=True, dip_at=fault + 0.1, recovered_at=fault + 4.0,
                        recovery_s=4.0, min_rate=0.0, observed_until=fault + 30.0)  # fmt: skip
    chaos = ChaosRecord(
        experiment="pod-kill engine", kind="PodChaos", name="kill-engine", action="pod-kill",
        window=Window(fault, fault + 0.5), requested_at=fault - 0.05, injected=True, containers=["engine-0/engine"],
        load="kill-engine", recovery=recovery,
        acked_vs_stored=AckCheck(acked=4480, stored=4480, acked_stored=4480, lost=0, duplicated=0, stored_not_acked=0),
        figures={"engine_restarts": 1},
    )  # fmt: skip
    sw, series = prometheus_series(w, outage=(20.0, 24.5), restarts={"engine-0": [21.0]})
    slos = [
        _slo("throughput", w, observed=0.93, threshold=0.95, comparator=">=", passed=False, unit="ratio"),
        _slo(
            "p99_order_latency_ms", w, observed=1480.0, threshold=50, comparator="<=", passed=False, unit="ms"
        ),
        _slo(
            "recovery_time",
            w,
            observed=4.0,
            threshold=10,
            comparator="<=",
            passed=True,
            unit="s",
            severity="critical",
            detail=recovery,
        ),
        _slo("bounded_restarts", w, observed={"engine-0": 1}, threshold=1, comparator="<=", passed=True),
    ]
    return TestRecord(nodeid="suites/test_resilience.py::test_pod_kill_engine", outcome="failed", duration=64.0,
                      window=w, slos=slos, loads=[run], chaos=[chaos], rates={"orders_per_s": 74.6},
                      series=series, series_window=sw)  # fmt: skip


def bottleneck(window: Window | None = None) -> Bottleneck:
    signals = [
        SaturationSignal("backend pods", "CPU vs limit", 0.495, "cores", capacity=0.5, utilization=0.99,
                         threshold=0.9, saturated=True, query="sum by (pod) (rate(container_cpu_usage_seconds_total[$window]))"),
        SaturationSignal("backend pods", "throttled periods", 0.41, "ratio", utilization=0.41, threshold=0.25,
                         saturated=True),
        SaturationSignal("node", "CPU vs cores", 1.21, "cores", capacity=2.0, utilization=0.605, threshold=0.9),
        SaturationSignal("postgres", "commit p99", 1.8, "ms", threshold=20.0, detail="batch size p50 12"),
        SaturationSignal("redis", "round-trip p99", None, "ms", threshold=5.0, detail="no data"),
    ]  # fmt: skip
    return Bottleneck(
        verdict="backend pods",
        sentence="saturated: backend pods (0.495 of 0.5 cores, throttled 41% of periods); node CPU 1.21 of 2 "
        "cores (not saturated); PostgreSQL commit p99 1.8 ms (not saturated)",
        window=window, saturated=["backend pods"], signals=signals,
    )  # fmt: skip


def cpu_stress(start: float = T0 + 100.0) -> TestRecord:
    w = Window(start, start + 62.0)
    run = load_run("stress-backend", start + 2.0, slow=(13.0, 43.0), seed=3)
    cw = Window(start + 15.0, start + 45.0)
    intensity = Intensity(container="backend-0/backend", kind="cpu", unit="cores", requested=0.8, expected=0.5,
                          observed=0.495, reached=True, source="prometheus", limit=0.5)  # fmt: skip
    chaos = ChaosRecord(experiment="stress-cpu backend", kind="StressChaos", action="cpu", window=cw,
                        requested_at=cw.start - 0.2, injected=True, containers=["backend-0/backend"],
                        intensity=[intensity], intensity_reached=True, load="stress-backend")  # fmt: skip
    sw, series = prometheus_series(w, cpu_stress=("backend-0", 15.0, 45.0), seed=4)
    slos = [
        _slo(
            "client_p99_latency_ms", w, observed=61.0, threshold=50, comparator="<=", passed=False, unit="ms"
        ),
        _slo("no_crashloop", w, observed=0, threshold=0, comparator="==", passed=True),
    ]
    return TestRecord(nodeid="suites/test_resilience.py::test_stress_cpu_backend", outcome="failed", duration=63.0,
                      window=w, slos=slos, loads=[run], chaos=[chaos], rates={"orders_per_s": 79.8},
                      series=series, series_window=sw, bottleneck=bottleneck(w))  # fmt: skip


def memory_oom(start: float = T0 + 200.0) -> TestRecord:
    w = Window(start, start + 50.0)
    cw = Window(start + 10.0, start + 40.0)
    oom = OomSequence(container="engine-0/engine", oom_killed_at=start + 18.0, crashloop_at=start + 30.0)
    chaos = ChaosRecord(experiment="stress-memory engine", kind="StressChaos", action="memory", window=cw,
                        requested_at=cw.start, injected=True, containers=["engine-0/engine"], oom_sequence=oom,
                        load="oom")  # fmt: skip
    run = load_run("oom", start, seconds=50.0, rate=40.0, outage=(18.0, 45.0), seed=5)
    sw, series = prometheus_series(w, rate=40.0, outage=(18.0, 45.0), memory=("engine-0", 10.0, 40.0, [18.0, 25.0]),
                                   restarts={"engine-0": [19.0, 26.0, 36.0]}, seed=6)  # fmt: skip
    slos = [
        _slo(
            "oom_then_crashloop", w, observed=True, threshold=True, comparator="==", passed=True, detail=oom
        ),
        _slo(
            "no_oomkilled",
            w,
            observed={"engine-0": 2},
            threshold=0,
            comparator="==",
            passed=False,
            severity="warning",
        ),
    ]
    return TestRecord(nodeid="suites/test_resilience.py::test_memory_pressure_engine", outcome="passed",
                      duration=52.0, window=w, slos=slos, loads=[run], chaos=[chaos], series=series,
                      series_window=sw)  # fmt: skip


def usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def sweep(start: float = T0 + 300.0) -> TestRecord:
    """The field report's numbers (1 -> 2,653, 4 -> 3,163, 8 -> 2,689) plus N=2, and the fit they give."""
    lam, sigma, kappa = 2653.0, 0.585, 0.050
    n_star = math.sqrt((1 - sigma) / kappa)
    measured = {1: 2653.0, 2: 3010.0, 4: 3163.0, 8: 2689.0}
    points = [
        SweepPoint(backends=n, max_rate=x * 1.02, throughput=x, deploy_s=9.0,
                   probes=[SweepProbe(backends=n, offered_rate=x * 1.02, achieved_rate=x, throughput_ratio=0.98,
                                      client_p99_ms=38.0, valid=True, sustainable=True, load=f"sweep-{n}")])
        for n, x in measured.items()
    ]  # fmt: skip
    fit = UslFit(lam=lam, sigma=sigma, kappa=kappa, sigma_ci=(0.41, 0.76), kappa_ci=(0.031, 0.069), lam_fixed=True,
                 n_star=n_star, n_star_ci=(2.4, 3.6), x_max=usl(n_star, lam, sigma, kappa), x_max_ci=(3010.0, 3260.0),
                 points=[(float(n), x) for n, x in measured.items()], r_squared=0.97)  # fmt: skip
    w = Window(start, start + 240.0)
    result = SweepResult(
        points=points, fit=fit, knee=4, bottleneck=bottleneck(w), budget_s=300.0, took_s=236.0,
        sentence=f"ceiling 3,163 orders/s at N=4, N* ≈ {n_star:.1f}; saturated: backend pods (throttled 41% of periods)",
        criteria={"p99_ms": 50.0, "throughput_ratio": 0.95},
    )  # fmt: skip
    return TestRecord(nodeid="suites/test_scaling.py::test_sweep", duration=240.0, window=w, sweep=result)


def no_load(start: float = T0 + 600.0) -> TestRecord:
    w = Window(start, start + 1.0)
    return TestRecord(nodeid="suites/test_platform.py::test_health", duration=1.0, window=w,
                      slos=[_slo("registration_success", w, observed=1.0, threshold=0.999, comparator=">=",
                                 passed=True)])  # fmt: skip


def score() -> ResilienceScore:
    weights = {"critical": 3.0, "error": 2.0, "warning": 1.0}
    items = [
        ScoreItem("test_pod_kill_engine", "pod-kill engine", "recovery_time", "critical", 3.0, True),
        ScoreItem("test_pod_kill_engine", "pod-kill engine", "throughput", "error", 2.0, False),
        ScoreItem("test_pod_kill_engine", "pod-kill engine", "p99_order_latency_ms", "error", 2.0, False),
        ScoreItem("test_stress_cpu_backend", "stress-cpu backend", "no_crashloop", "error", 2.0, True),
        ScoreItem(
            "test_memory_pressure_engine", "stress-memory engine", "oom_then_crashloop", "error", 2.0, True
        ),
        ScoreItem(
            "test_memory_pressure_engine", "stress-memory engine", "no_oomkilled", "warning", 1.0, False
        ),
    ]
    got = sum(i.weight for i in items if i.passed)
    total = sum(i.weight for i in items)
    return ResilienceScore(score=100 * got / total, weights=weights, items=items,
                           method="sum(weight x passed) / sum(weight) x 100 over the resilience tests' SLOs")  # fmt: skip


def session(tests: list[TestRecord] | None = None) -> SessionReport:
    """Nine tests by default: three of each resilience kind, a sweep... as a session would record them."""
    if tests is None:
        tests = [pod_kill(), cpu_stress(), memory_oom(), sweep(), no_load()]
        tests += [pod_kill(T0 + 700.0), cpu_stress(T0 + 800.0), memory_oom(T0 + 900.0), pod_kill(T0 + 1000.0)]
        for i, t in enumerate(tests[5:]):
            t.nodeid += f"[{i + 2}]"
    platform = PlatformInfo(cluster="local", namespace="hft", nginx="http://127.0.0.2:80",
                            prometheus_url="http://127.0.0.9:9090", ready_seconds=7.1)  # fmt: skip
    slos = [s for t in tests for s in t.slos]
    outcomes: dict[str, int] = {}
    for t in tests:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
    return SessionReport(schema=2, cluster="local", profile="local", started=T0 - 10, finished=T0 + 1100,
                         platform=platform, tests=tests, score=score(),
                         totals=Totals(tests=len(tests), outcomes=outcomes, slos=len(slos),
                                       slos_failed=sum(not s.passed for s in slos)))  # fmt: skip
