"""The time axis every per-test figure shares: recorded series as plain lists (binned, thinned,
per second), the chaos marks (windows shaded; injections, removals, recoveries, OOMKilled and
CrashLoopBackOff marked) and the axis itself (its span, limits and label).

Reads :mod:`pytest_hftk8s.results` only and draws on axes it is given: the figures themselves are
:mod:`~pytest_hftk8s.report.plots`'.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.report.canvas import Values
from pytest_hftk8s.results import OomSequence, Recovery, Series, TestRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "MAX_POINTS",
    "MIB",
    "Marks",
    "chaos_marks",
    "find",
    "finish_time_axes",
    "moving_mean",
    "per_second",
    "pod_of",
    "scaled",
    "shift",
    "thin",
    "time_axis",
    "utc",
    "window_lines",
    "xy",
]

MAX_POINTS = 400  # per line: keeps a figure's SVG small whatever the window's length
MIB = 1024.0 * 1024.0
_CHAOS_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


@dataclass(frozen=True)
class _Span:
    start: float
    end: float
    label: str
    color: str


@dataclass(frozen=True)
class _Event:
    at: float
    label: str
    color: str
    gid: str
    style: str = "-"


@dataclass
class Marks:
    spans: list[_Span] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)


# -- data shaping ----------------------------------------------------------------------------------


def xy(series: Series) -> tuple[Values, Values]:
    """Bin centres (epoch seconds) and values; ``None`` in a record read back from JSON is ``nan``."""
    t = [series.start + (i + 0.5) * series.step for i in range(len(series.values))]
    v = [math.nan if x is None else float(x) for x in series.values]
    return t, v


def _mean(values: Sequence[float]) -> float:
    finite = [x for x in values if math.isfinite(x)]
    return sum(finite) / len(finite) if finite else math.nan


def thin(t: Values, v: Values, max_points: int = MAX_POINTS) -> tuple[Values, Values]:
    """At most ``max_points`` points: means of consecutive groups, ignoring nan (an all-nan group stays nan)."""
    if len(t) <= max_points:
        return t, v
    group = math.ceil(len(t) / max_points)
    starts = range(0, len(t), group)
    return [_mean(t[i : i + group]) for i in starts], [_mean(v[i : i + group]) for i in starts]


def per_second(series: Sequence[Series]) -> tuple[Values, Values] | None:
    """Counts per bucket (e.g. 2xx answers per 100 ms) of one or more runs as a rate per wall-clock
    second: the sum over each second divided by the time the buckets of that second cover."""
    totals: dict[int, float] = {}
    covered: dict[int, float] = {}
    for s in series:
        if not s.values or s.step <= 0:
            continue
        for ti, vi in zip(*xy(s), strict=True):
            second = math.floor(ti)
            covered[second] = covered.get(second, 0.0) + s.step
            if math.isfinite(vi):
                totals[second] = totals.get(second, 0.0) + vi
    if not covered:
        return None
    seconds = sorted(covered)
    # Overlapping runs add up; a partly covered second is scaled by the share it covers.
    return [s + 0.5 for s in seconds], [totals.get(s, 0.0) / min(1.0, covered[s]) for s in seconds]


def shift(t: Values, t0: float) -> Values:
    return [x - t0 for x in t]


def scaled(v: Values, k: float) -> Values:
    return [x * k for x in v]


def moving_mean(v: Values, width: int) -> Values:
    """Centred mean over ``width`` samples (missing samples count as 0: an outage, not a gap)."""
    filled = [x if math.isfinite(x) else 0.0 for x in v]
    half = width // 2
    out = []
    for i in range(len(filled)):
        window = filled[max(0, i - half) : i - half + width]
        out.append(sum(window) / len(window))  # the edges average what they have
    return out


def find(series: Sequence[Series], name: str) -> list[Series]:
    return [s for s in series if s.name == name and s.values]


def utc(epoch: float, *, ms: bool = False) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return stamp.strftime("%H:%M:%S.%f")[:-3] + "Z" if ms else stamp.strftime("%H:%M:%S") + "Z"


def pod_of(container: str) -> str:
    return container.split("/", 1)[0]


# -- chaos marks -----------------------------------------------------------------------------------


def chaos_marks(test: TestRecord) -> Marks:
    """What every time axis of a test shows: chaos windows shaded, injections, removals, recoveries,
    OOMKilled and CrashLoopBackOff marked."""
    marks = Marks()
    seen: set[tuple[str, float]] = set()

    def event(at: float | None, label: str, color: str, gid: str, style: str = "-") -> None:
        if at is None or not math.isfinite(at) or at <= 0 or (label, round(at, 1)) in seen:
            return
        seen.add((label, round(at, 1)))
        marks.events.append(_Event(at, label, color, gid, style))

    for i, c in enumerate(test.chaos):
        color = _CHAOS_COLORS[i % len(_CHAOS_COLORS)]
        label = c.experiment + (" (dry run)" if c.dry_run else "")
        if c.window is not None and c.window.end > c.window.start:
            marks.spans.append(_Span(c.window.start, c.window.end, label, color))
            event(c.window.start, "injected", color, f"injection-{i}")
            event(c.window.end, "removed", color, f"removal-{i}", ":")
        elif c.requested_at:
            event(c.requested_at, f"requested: {label}", color, f"injection-{i}")
        _recovery_events(c.recovery, i, event)
        _oom_events(c.oom_sequence, i, event)
    for j, slo in enumerate(test.slos):
        if isinstance(slo.detail, Recovery):
            _recovery_events(slo.detail, 100 + j, event)
        elif isinstance(slo.detail, OomSequence):
            _oom_events(slo.detail, 100 + j, event)
    return marks


def _recovery_events(r: Recovery | None, i: int, event: Any) -> None:
    if r is None:
        return
    event(r.fault_at, "fault", "#d62728", f"fault-{i}", "--")
    if r.recovered_at is not None and r.dipped:
        event(r.recovered_at, f"recovered (+{r.recovery_s or 0:.1f} s)", "#2ca02c", f"recovery-{i}", "--")


def _oom_events(o: OomSequence | None, i: int, event: Any) -> None:
    if o is None:
        return
    event(o.oom_killed_at, "OOMKilled", "#d62728", f"oomkilled-{i}", "--")
    event(o.crashloop_at, "CrashLoopBackOff", "#ff7f0e", f"crashloop-{i}", "--")


def _draw_marks(ax: Axes, marks: Marks, t0: float, *, labels: bool, suffix: str) -> None:
    """Shade the chaos windows and draw the events on one axes (labels on the figure's first axes)."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    lo, hi = ax.get_xlim()
    for i, span in enumerate(marks.spans):
        a, b = max(span.start - t0, lo), min(span.end - t0, hi)
        if b <= a:
            continue
        ax.axvspan(a, b, color=span.color, alpha=0.12, lw=0, gid=f"chaos-window-{i}{suffix}")
        if labels:
            ax.text(a, 0.98, " " + span.label, transform=trans, ha="left", va="top", fontsize=7,
                    color=span.color, clip_on=True, gid=f"chaos-label-{i}{suffix}")  # fmt: skip
    near = (hi - lo) * 0.02
    groups: list[list[_Event]] = []
    for ev in sorted((e for e in marks.events if lo <= e.at - t0 <= hi), key=lambda e: e.at):
        if groups and ev.at - groups[-1][-1].at <= near:
            groups[-1].append(ev)
        else:
            groups.append([ev])
    for group in groups:
        for ev in group:
            ax.axvline(ev.at - t0, color=ev.color, ls=ev.style, lw=0.9, gid=f"{ev.gid}{suffix}")
        if labels:  # events close together share one label, so they stay readable
            text = " / ".join(dict.fromkeys(ev.label for ev in group))
            ax.text(group[0].at - t0, 0.02, " " + text, transform=trans, rotation=90, ha="right", va="bottom",
                    fontsize=6.5, color=group[0].color, clip_on=True)  # fmt: skip
    ax.set_xlim(lo, hi)


# -- the axis --------------------------------------------------------------------------------------


def time_axis(test: TestRecord) -> tuple[float, float, float] | None:
    """(t0, x_lo, x_hi): the series window (the test's window plus a margin), else the test's window,
    else what the data covers; x is seconds since t0."""
    w = test.series_window or test.window
    if w is not None and w.end > w.start:
        return w.start, 0.0, w.end - w.start
    starts = [s.start for s in test.series if s.values] + [
        s.start for run in test.loads for s in _timelines(run.timeline, run.latency_timeline.values())
    ]
    ends = [s.end for s in test.series if s.values] + [
        s.end for run in test.loads for s in _timelines(run.timeline, run.latency_timeline.values())
    ]
    if not starts:
        return None
    return min(starts), 0.0, max(1.0, max(ends) - min(starts))


def _timelines(first: Series | None, rest: Iterable[Series]) -> list[Series]:
    return [s for s in (first, *rest) if s is not None and s.values]


def finish_time_axes(axes: Sequence[Axes], marks: Marks, t0: float, lo: float, hi: float) -> None:
    for k, ax in enumerate(axes):
        ax.set_xlim(lo, hi)
        ax.grid(True, lw=0.3, alpha=0.6)
        _draw_marks(ax, marks, t0, labels=k == 0, suffix="" if k == 0 else f"-ax{k}")
    axes[-1].set_xlabel(f"seconds since {utc(t0)} (UTC)")


def window_lines(ax: Axes, test: TestRecord, t0: float) -> None:
    """The test's own window inside the plotted margin, as faint dotted lines."""
    if test.window is not None and test.series_window is not None:
        for edge in (test.window.start, test.window.end):
            ax.axvline(edge - t0, color="#999999", ls=":", lw=0.8)
