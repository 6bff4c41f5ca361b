"""The typed records every part of the plugin hands to the others: windows, load summaries, SLO
results, chaos records, measured series, and one test's record.

Plain frozen-or-simple dataclasses and two functions to turn them into JSON-ready dicts and back
(``to_dict`` / ``from_dict``, the latter through ``dacite``). The report, the summary, the digest and
the plots read only these types, never pytest objects. No I/O and no imports from the rest of the
package: this module is the bottom of the house.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "AckCheck",
    "ActionCounts",
    "Baseline",
    "Bottleneck",
    "Capacity",
    "ChaosRecord",
    "Comparison",
    "DigestRow",
    "FillCheck",
    "Intensity",
    "LoadSummary",
    "MeasureComparison",
    "OomSequence",
    "PlatformInfo",
    "Recovery",
    "ResilienceScore",
    "RunIdentity",
    "SaturationSignal",
    "ScaleRecord",
    "ScoreItem",
    "Series",
    "SessionReport",
    "SloResult",
    "SweepPoint",
    "SweepProbe",
    "SweepResult",
    "TestRecord",
    "Totals",
    "UslFit",
    "Window",
    "from_dict",
    "to_dict",
]


@dataclass(frozen=True)
class Window:
    """A closed time range in epoch seconds (wall clock, the clock Prometheus stamps samples with).

    ``lookback`` widens event-counter queries (``$window_wide``) by about one scrape interval, so a
    change just after the window opened, before its first sample, is still seen.
    """

    start: float
    end: float
    lookback: float = 0.0
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", max(0.0, self.end - self.start))

    @property
    def promql_range(self) -> str:
        # Milliseconds, not whole seconds: rounding a 6.001 s window up to [7s] would dilute a rate
        # by 1/7 with samples from before the window.
        return f"{max(1, round(self.seconds * 1000))}ms"

    @property
    def promql_range_wide(self) -> str:
        return f"{max(1, round((self.seconds + self.lookback) * 1000))}ms"

    def with_lookback(self, lookback: float) -> Window:
        return Window(self.start, self.end, lookback)


@dataclass(frozen=True)
class Series:
    """Equal-width samples: ``values[i]`` covers ``[start + i*step, start + (i+1)*step)``.

    A range query's result keeps its name (the catalogue query's) and its labels (e.g. ``pod``); a
    missing sample is ``nan`` (written to JSON as ``null``).
    """

    name: str
    start: float
    step: float
    values: tuple[float, ...]
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def points(self) -> list[tuple[float, float]]:
        return [(self.start + i * self.step, v) for i, v in enumerate(self.values)]

    @property
    def end(self) -> float:
        return self.start + len(self.values) * self.step


@dataclass
class ActionCounts:
    """One kind of request in an order flow (limit, cancel, cross): how many were due and answered."""

    scheduled: int = 0
    ok: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadSummary:
    """One load run as the generator measured it. Latencies count from each request's intended send
    time; ``histogram`` is the HDR histogram's compressed encoding (microseconds)."""

    name: str
    mode: str  # "open" (constant rate) | "closed"
    offered_rate: float  # requests/s due (0 for closed loop)
    duration_s: float
    window: Window  # registrations included
    order_window: Window  # the schedule only
    users: int
    registrations_ok: int
    registrations_failed: int
    scheduled: int
    sent: int
    completed: int
    ok: int
    achieved_rate: float  # 2xx answers/s over the order window
    statuses: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]  # answered and timed-out requests (a timeout counts at its time)
    cpu: dict[str, float]
    schedule: dict[str, float]
    valid: bool
    invalid_reasons: list[str] = field(default_factory=list)
    results_file: str = ""
    timeout_s: float = 0.0
    timed_out: int = 0
    unanswered: int = 0  # never sent, or sent on a connection that was lost before its answer
    mix: dict[str, float] = field(default_factory=dict)
    actions: dict[str, ActionCounts] = field(default_factory=dict)
    offered_order_rate: float = 0.0  # order placements/s due (the flow's cancels are not orders)
    order_prefix: str = ""
    histogram: str = ""
    timeline: Series | None = None  # 2xx answers per 100 ms of wall clock
    # Per second of intended send time: client-side latency quantiles ("p50", "p99", ms) and the
    # requests that failed (non-2xx, timed out or unanswered), from the same requests as the histogram.
    latency_timeline: dict[str, Series] = field(default_factory=dict)
    errors_timeline: Series | None = None


@dataclass
class Intensity:
    """What a stress experiment asked of one container and what was observed there."""

    container: str  # "pod/container"
    kind: str  # "cpu" | "memory"
    unit: str  # "cores" | "bytes"
    requested: float
    expected: float  # what can be reached: the request, capped by the container's limit
    observed: float | None
    reached: bool
    source: str  # "prometheus" (the judgement) | "cgroup" (the local driver's cross-check)
    limit: float | None = None
    baseline: float = 0.0  # memory: the working set before the stress
    oom_kills: int = 0
    query: str = ""


@dataclass
class Recovery:
    """Throughput around one fault, from a load run's 100 ms timeline (epoch seconds)."""

    fault_at: float
    floor_rate: float
    resolution_s: float = 0.1
    hold_s: float = 1.0
    dipped: bool = False
    dip_at: float | None = None
    recovered_at: float | None = None
    recovery_s: float | None = None  # recovered_at - fault_at; 0.0 when throughput never dipped
    min_rate: float | None = None  # lowest per-bucket rate after the fault
    observed_until: float | None = None


@dataclass
class AckCheck:
    """Acknowledged orders against the database."""

    acked: int
    stored: int
    acked_stored: int
    lost: int
    duplicated: int
    stored_not_acked: int
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)


@dataclass
class FillCheck:
    """Fill-level integrity: nothing applied twice, nothing over-filled, the book matches the database."""

    orders: int
    filled_orders: int  # orders with filled > 0
    fills: int
    duplicated_fills: int  # one (taker, maker) execution stored more than once
    overfilled_orders: int  # fills add up to more than the order's quantity
    accounting_mismatches: int  # orders.filled differs from the sum of its fills
    book_mismatches: int  # price levels where the engine's book and PostgreSQL's open orders differ
    open_orders: int = 0
    symbols: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.duplicated_fills
            or self.overfilled_orders
            or self.accounting_mismatches
            or self.book_mismatches
        )


@dataclass
class OomSequence:
    """When Prometheus first saw a container OOMKilled and then in CrashLoopBackOff."""

    container: str
    oom_killed_at: float | None = None
    crashloop_at: float | None = None
    queries: dict[str, str] = field(default_factory=dict)

    @property
    def detected(self) -> bool:
        return self.oom_killed_at is not None and self.crashloop_at is not None

    @property
    def in_order(self) -> bool:
        return (
            self.oom_killed_at is not None
            and self.crashloop_at is not None
            and self.oom_killed_at <= self.crashloop_at
        )


@dataclass
class SloResult:
    """One SLO evaluated over one window. ``observed`` is a value, a label->value map, or ``None``
    (no data, which is a miss)."""

    name: str
    query: str
    comparator: str
    threshold: Any
    observed: Any
    passed: bool
    window: Window
    severity: str = "error"
    unit: str = ""
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    detail: Recovery | AckCheck | FillCheck | OomSequence | None = None  # what a measuring check measured

    @property
    def blocking(self) -> bool:
        return self.severity in ("critical", "error")


@dataclass
class ChaosRecord:
    """One experiment in one test: what was injected where and when, and what was measured."""

    experiment: str  # e.g. "stress-cpu backend"
    kind: str = ""
    name: str = ""
    namespace: str = ""
    action: str | None = None
    dry_run: bool = False
    window: Window | None = None  # from injection to removal (or to the end of its duration)
    requested_at: float = 0.0  # when the driver was asked, before anything was changed
    injected: bool = False
    containers: list[str] = field(default_factory=list)
    # The stressors / action parameters; stresses add "cpu_cores" or "memory_bytes" (what was asked).
    requested: dict[str, Any] = field(default_factory=dict)
    intensity: list[Intensity] = field(default_factory=list)  # judged from Prometheus
    intensity_cross_check: list[Intensity] = field(default_factory=list)  # the driver's own reading
    intensity_reached: bool | None = None
    probes: dict[str, Any] | None = None
    stopped_early: str = ""
    load: str = ""  # the load run it ran under
    recovery: Recovery | None = None
    acked_vs_stored: AckCheck | None = None
    fills: FillCheck | None = None
    oom_sequence: OomSequence | None = None
    figures: dict[str, float] = field(default_factory=dict)  # named measurements (capacity, restarts...)
    cleanup: str = ""


@dataclass
class ScaleRecord:
    """A run of another replica profile (e.g. 4 backends) deployed beside the session's platform."""

    profile: str
    namespace: str
    window: Window
    deploy_and_gates_s: float
    backends_ready: int
    backend_restarts: int
    engine_restarts: int
    engine_oomkilled: bool
    load: str  # the load run's name in the same test record
    baseline_load: str = ""  # the one-backend run it is compared with


@dataclass
class Baseline:
    """The session's baseline window and what the load generator measured in it."""

    window: Window
    achieved_rate: float
    offered_rate: float
    source: str = ""
    values: dict[str, float] = field(default_factory=dict)  # rendered query -> value over the window


@dataclass
class Capacity:
    """What one backend of the deployed platform can take, and the rate the suites offer it.

    Machines differ (the CPU model changes between runs): a load that is half of one machine's
    capacity saturates another. With ``--hft-baseline-rate=auto`` the offered rate is a stated
    share of the closed-loop capacity measured on this platform at the start of the session.
    """

    offered_rate: float  # requests/s the baseline and the resilience runs offer
    source: str  # "measured" | "--hft-baseline-rate"
    closed_loop_rate: float | None = None  # requests/s of the closed-loop run, when measured
    connections: int = 0
    utilization: float | None = None
    window: Window | None = None
    load: LoadSummary | None = None


@dataclass(frozen=True)
class PreflightCheck:
    """One row of the preflight table: what was checked, what was found, and what to do about it."""

    check: str
    ok: bool
    found: str
    action: str = ""  # what to do when not ok: the command, where there is one
    blocking: bool = True  # a failed blocking check stops the session before anything is deployed


@dataclass
class PlatformInfo:
    cluster: str
    namespace: str
    nginx: str
    prometheus_url: str
    ready_seconds: float
    gates: dict[str, float] = field(default_factory=dict)
    access: str = ""  # how the load reaches nginx: loopback, loadbalancer, nodeport or port-forward
    preflight: list[PreflightCheck] = field(default_factory=list)


@dataclass
class SaturationSignal:
    """One saturation signal of one component over a window: what was observed against what it can take.

    ``utilization`` is observed / capacity where a capacity exists (CPU against a limit or the node's
    cores); a latency signal has none and is judged against ``threshold`` instead.
    """

    component: str  # e.g. "backend pods", "node", "postgres", "engine", "redis", "nginx", "generator"
    signal: str  # e.g. "CPU vs limit", "throttled periods", "commit p99"
    observed: float | None
    unit: str = ""
    capacity: float | None = None
    utilization: float | None = None
    threshold: float | None = None  # at or beyond this (utilization, or observed without capacity): saturated
    saturated: bool = False
    query: str = ""
    detail: str = ""


@dataclass
class Bottleneck:
    """Which component was saturated over a window, from its saturation signals, ranked.

    ``verdict`` names the component, or is ``"ambiguous"`` (several saturated and nothing separates
    them, or the signals are missing) or ``"none"`` (nothing saturated); ``sentence`` says it with numbers.
    """

    verdict: str
    sentence: str
    window: Window | None = None
    saturated: list[str] = field(default_factory=list)
    signals: list[SaturationSignal] = field(default_factory=list)  # ranked, most saturated first


@dataclass
class SweepProbe:
    """One open-loop load run of a scaling sweep at one offered rate."""

    backends: int
    offered_rate: float  # requests/s
    achieved_rate: float  # 2xx answers/s
    throughput_ratio: float | None  # accepted orders/s over offered orders/s
    client_p99_ms: float | None
    valid: bool
    sustainable: bool  # p99 SLO held, >= the throughput ratio, and the run was a valid measurement
    load: str = ""  # the load run's name in the test record
    reasons: list[str] = field(default_factory=list)  # why not sustainable
    window: Window | None = None


@dataclass
class SweepPoint:
    """The highest sustainable throughput found at one replica count."""

    backends: int
    max_rate: float | None  # highest sustainable offered rate (requests/s); None: none was
    throughput: float | None  # achieved 2xx/s at that rate
    probes: list[SweepProbe] = field(default_factory=list)
    budget_exhausted: bool = False  # the search stopped on its time budget, not on its resolution
    deploy_s: float = 0.0
    bottleneck: Bottleneck | None = None


@dataclass
class UslFit:
    """X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)), fitted to measured points.

    Intervals are 95% confidence intervals from the fit's covariance (``None`` where the fit cannot
    give one, e.g. with as many parameters as points).
    """

    lam: float
    sigma: float
    kappa: float
    lam_ci: tuple[float, float] | None = None
    sigma_ci: tuple[float, float] | None = None
    kappa_ci: tuple[float, float] | None = None
    lam_fixed: bool = False  # lambda held at X(1) instead of fitted
    n_star: float | None = None  # sqrt((1 - sigma) / kappa); None when kappa <= 0
    n_star_ci: tuple[float, float] | None = None
    x_max: float | None = None  # X(N*)
    x_max_ci: tuple[float, float] | None = None
    points: list[tuple[float, float]] = field(default_factory=list)  # (N, X) the fit used
    r_squared: float | None = None
    dof: int = 0  # degrees of freedom the fit left (points minus fitted parameters)


@dataclass
class SweepResult:
    """A scaling sweep: the points, the USL fit, the knee and what was saturated there."""

    points: list[SweepPoint]
    fit: UslFit | None = None
    knee: int | None = None  # the replica count with the highest measured sustainable throughput
    bottleneck: Bottleneck | None = None  # at the knee
    sentence: str = ""
    budget_s: float = 0.0
    took_s: float = 0.0
    criteria: dict[str, float] = field(default_factory=dict)  # p99 bound (ms), throughput ratio, ...


@dataclass
class ScoreItem:
    """One weighted term of the resilience score: an SLO of a resilience test."""

    test: str
    experiment: str
    slo: str
    severity: str
    weight: float
    passed: bool


@dataclass
class ResilienceScore:
    """Litmus/krkn-style weighted score: sum(weight x passed) / sum(weight) x 100 over the resilience
    tests' SLOs, each SLO weighted by its severity."""

    score: float | None  # 0-100; None when no resilience SLO was evaluated
    weights: dict[str, float] = field(default_factory=dict)  # severity -> weight
    items: list[ScoreItem] = field(default_factory=list)
    method: str = ""


@dataclass
class TestRecord:
    """Everything one test did with the platform, as the report reads it."""

    __test__ = False  # not a pytest test class, whatever its name says

    nodeid: str
    outcome: str = "passed"
    phase: str = "call"
    duration: float = 0.0
    window: Window | None = None
    slos: list[SloResult] = field(default_factory=list)
    loads: list[LoadSummary] = field(default_factory=list)
    chaos: list[ChaosRecord] = field(default_factory=list)
    scale: list[ScaleRecord] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)  # from Prometheus: orders_per_s, fills_per_s
    bundle: str = ""
    longrepr: str = ""
    plugin_overhead_s: float = 0.0
    # Range queries over the window plus a margin, for the report's plots (names: slo.queries.PLOTS).
    series: list[Series] = field(default_factory=list)
    series_window: Window | None = None
    bottleneck: Bottleneck | None = None  # named when a throughput or latency SLO was missed
    sweep: SweepResult | None = None
    # --hft-repeat=N: which repeat this is (1..N), and the test's id without the repeat ("case");
    # repeats of one case are the blocks a comparison resamples. Without repeats: 1 and the nodeid.
    repeat: int = 1
    case: str = ""

    def load(self, name: str) -> LoadSummary | None:
        return next((s for s in self.loads if s.name == name), None)

    @property
    def case_id(self) -> str:
        return self.case or self.nodeid


T = TypeVar("T")


def to_dict(record: Any) -> Any:
    """A JSON-ready copy (non-finite floats become ``None``: JSON has no NaN or Infinity)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return _finite(dataclasses.asdict(record))
    return _finite(record)


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a record written by :func:`to_dict` (e.g. one that crossed from an xdist worker)."""
    import dacite

    return dacite.from_dict(cls, dict(data), config=dacite.Config(cast=[tuple], check_types=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass
class DigestRow:
    """One experiment of the session's resilience digest: what held, what broke, how long recovery took."""

    test: str
    outcome: str
    experiment: str
    window: Window | None = None
    intensity_reached: bool | None = None
    recovery_s: float | None = None
    acked_vs_stored: AckCheck | None = None
    fills: FillCheck | None = None
    oom_then_crashloop: bool | None = None
    throughput: float | None = None  # orders/s achieved by the load run it ran under
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Totals:
    tests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    slos: int = 0
    slos_failed: int = 0


@dataclass
class RunIdentity:
    """Which run a report is: what a comparison names its baseline by."""

    commit: str = ""  # the git commit of the tests' repository, when it is one
    dirty: bool = False
    started: float = 0.0
    machine: str = ""  # hostname
    cpu_model: str = ""
    cores: int = 0
    python: str = ""
    plugin_version: str = ""
    path: str = ""  # where the baseline was read from (a comparison's baseline only)


@dataclass
class MeasureComparison:
    """One measure of one test (or load run) in the current run against the baseline run.

    ``effect`` is the relative change of the current point estimate, ``current / baseline - 1``;
    ``ci`` its interval at the comparison's confidence. The verdict counts a change only when the
    whole interval lies beyond ``min_effect`` (the default minimum, or the baseline's own
    repeat-to-repeat ``noise`` when that is wider), in the measure's bad or good direction.
    """

    test: str  # the case (nodeid without the repeat), or "session"
    load: str  # the load run's name; "" for a test-level or session-level measure
    measure: str  # throughput | client_p50_ms | client_p99_ms | recovery_s | resilience_score
    unit: str
    better: str  # "higher" | "lower"
    verdict: str  # regressed | improved | unchanged | inconclusive
    baseline: float | None = None
    current: float | None = None
    effect: float | None = None
    ci: tuple[float, float] | None = None
    min_effect: float = 0.05
    noise: float | None = None  # the baseline's relative spread between its repeats
    method: str = ""
    p_value: float | None = None  # Mann-Whitney U, two-sided, where it fits
    n_baseline: int = 0  # samples (per-second values, or one per repeat)
    n_current: int = 0
    repeats_baseline: int = 0
    repeats_current: int = 0
    known: bool = False  # regressed in the baseline's own comparison too: not a new alert
    reason: str = ""  # why inconclusive, or what the verdict rests on
    # What the report overlays for a regression: per-second samples, or quantiles on ``grid``.
    distribution: str = "samples"  # "samples" | "quantiles"
    grid: list[float] = field(default_factory=list)  # quantile levels (0-100) of a "quantiles" distribution
    baseline_values: list[float] = field(default_factory=list)
    current_values: list[float] = field(default_factory=list)
    key: str = ""  # "test::load::measure" (or "test::measure"): what known regressions are matched by

    def __post_init__(self) -> None:
        if not self.key:
            self.key = (
                f"{self.test}::{self.load}::{self.measure}" if self.load else f"{self.test}::{self.measure}"
            )


@dataclass
class Comparison:
    """The current run against a baseline run (``--hft-compare``): a verdict per measure."""

    baseline: RunIdentity
    current: RunIdentity
    verdict: str  # regressed (a new regression) | improved | unchanged | inconclusive
    measures: list[MeasureComparison] = field(default_factory=list)
    min_effect: float = 0.05
    confidence: float = 0.95
    resamples: int = 0
    regressions: list[str] = field(default_factory=list)  # keys of new regressions
    known_regressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. another machine, another offered rate
    fail_on_regression: bool = False


@dataclass
class SessionReport:
    """What ``summary.json`` holds and ``index.html`` shows."""

    schema: int
    cluster: str | None
    profile: str
    started: float
    finished: float
    platform: PlatformInfo | None = None
    capacity: Capacity | None = None
    baseline: Baseline | None = None
    totals: Totals = field(default_factory=Totals)
    tests: list[TestRecord] = field(default_factory=list)
    resilience: list[DigestRow] = field(default_factory=list)
    score: ResilienceScore | None = None
    identity: RunIdentity | None = None
    repeat: int = 1  # --hft-repeat
    comparison: Comparison | None = None
