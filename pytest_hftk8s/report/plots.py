"""The report's figures, drawn with matplotlib from typed records into SVG text.

One test with load or recorded series gets: throughput (accepted orders/s and errors from
Prometheus, the generator's own 2xx/s overlaid), latency (client-side p50/p99 against server-side
p99), per-pod resources (CPU against the limit, throttled CFS periods, memory working set against the
limit, restarts), and a timeline per resilience experiment (a pod kill's dip and recovery; memory
pressure's OOMKilled then CrashLoopBackOff). Chaos windows, injections and recoveries are shaded and
marked on every time axis. A scaling sweep gets its Universal Scalability Law figure, and a measure
that regressed against a baseline run its two distributions overlaid (:func:`comparison_plot`).

Reads :mod:`pytest_hftk8s.results` only. matplotlib is imported lazily (it costs about a second) and
driven through ``Figure`` and the SVG canvas directly, never ``pyplot``: no global figure manager,
no backend switch, nothing left behind in the user's matplotlib. A figure with nothing to draw is a
:class:`Plot` without ``svg`` and with a note that says what is missing.
"""

from __future__ import annotations

import datetime
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.results import (
    ChaosRecord,
    MeasureComparison,
    OomSequence,
    Recovery,
    Series,
    SweepResult,
    TestRecord,
    Window,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Plot", "comparison_plot", "plot_keys", "record_plots", "usl_plot"]

MAX_POINTS = 400  # per line: keeps a figure's SVG small whatever the window's length
WIDTH_IN = 8.0
_RC = {"svg.fonttype": "none", "svg.hashsalt": "pytest-hftk8s", "font.size": 8.0, "axes.titlesize": 9.0}
_CHAOS_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
_MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Plot:
    """One figure of the report: ``key`` is unique within its test (``throughput``, ``latency``,
    ``resources``, ``recovery-0``, ``oom-1``, ``usl``); ``svg`` is ``None`` when there was nothing to
    draw, and ``notes`` then say why (otherwise they name what was missing from a drawn figure)."""

    key: str
    title: str
    svg: str | None
    notes: tuple[str, ...] = ()


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
class _Marks:
    spans: list[_Span] = field(default_factory=list)
    events: list[_Event] = field(default_factory=list)


# -- data shaping (plain lists: matplotlib takes them, and the plugin declares no numpy) -----------

Values = list[float]


def _xy(series: Series) -> tuple[Values, Values]:
    """Bin centres (epoch seconds) and values; ``None`` in a record read back from JSON is ``nan``."""
    t = [series.start + (i + 0.5) * series.step for i in range(len(series.values))]
    v = [math.nan if x is None else float(x) for x in series.values]
    return t, v


def _mean(values: Sequence[float]) -> float:
    finite = [x for x in values if math.isfinite(x)]
    return sum(finite) / len(finite) if finite else math.nan


def _thin(t: Values, v: Values, max_points: int = MAX_POINTS) -> tuple[Values, Values]:
    """At most ``max_points`` points: means of consecutive groups, ignoring nan (an all-nan group stays nan)."""
    if len(t) <= max_points:
        return t, v
    group = math.ceil(len(t) / max_points)
    starts = range(0, len(t), group)
    return [_mean(t[i : i + group]) for i in starts], [_mean(v[i : i + group]) for i in starts]


def _per_second(series: Sequence[Series]) -> tuple[Values, Values] | None:
    """Counts per bucket (e.g. 2xx answers per 100 ms) of one or more runs as a rate per wall-clock
    second: the sum over each second divided by the time the buckets of that second cover."""
    totals: dict[int, float] = {}
    covered: dict[int, float] = {}
    for s in series:
        if not s.values or s.step <= 0:
            continue
        for ti, vi in zip(*_xy(s), strict=True):
            second = math.floor(ti)
            covered[second] = covered.get(second, 0.0) + s.step
            if math.isfinite(vi):
                totals[second] = totals.get(second, 0.0) + vi
    if not covered:
        return None
    seconds = sorted(covered)
    # Overlapping runs add up; a partly covered second is scaled by the share it covers.
    return [s + 0.5 for s in seconds], [totals.get(s, 0.0) / min(1.0, covered[s]) for s in seconds]


def _finite(v: Values) -> Values:
    return [x for x in v if math.isfinite(x)]


def _has_data(v: Values) -> bool:
    return any(math.isfinite(x) for x in v)


def _shift(t: Values, t0: float) -> Values:
    return [x - t0 for x in t]


def _scale(v: Values, k: float) -> Values:
    return [x * k for x in v]


def _moving_mean(v: Values, width: int) -> Values:
    """Centred mean over ``width`` samples (missing samples count as 0: an outage, not a gap)."""
    filled = [x if math.isfinite(x) else 0.0 for x in v]
    half = width // 2
    out = []
    for i in range(len(filled)):
        window = filled[max(0, i - half) : i - half + width]
        out.append(sum(window) / len(window))  # the edges average what they have
    return out


def _find(series: Sequence[Series], name: str) -> list[Series]:
    return [s for s in series if s.name == name and s.values]


def _utc(epoch: float, *, ms: bool = False) -> str:
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return stamp.strftime("%H:%M:%S.%f")[:-3] + "Z" if ms else stamp.strftime("%H:%M:%S") + "Z"


def _pod_of(container: str) -> str:
    return container.split("/", 1)[0]


# -- chaos marks -----------------------------------------------------------------------------------


def _marks(test: TestRecord) -> _Marks:
    """What every time axis of a test shows: chaos windows shaded, injections, removals, recoveries,
    OOMKilled and CrashLoopBackOff marked."""
    marks = _Marks()
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


def _draw_marks(ax: Axes, marks: _Marks, t0: float, *, labels: bool, suffix: str) -> None:
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


# -- figure plumbing -------------------------------------------------------------------------------


def _figure(height_in: float, *, right: float = 0.76, hspace: float = 0.1, wspace: float = 0.2) -> Figure:
    """A figure with fixed margins (in inches where it matters): a layout engine would cost about
    half of the drawing time, and these figures have known shapes. ``right`` leaves room for a
    legend beside the axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in))
    fig.subplots_adjust(left=0.7 / WIDTH_IN, right=right, bottom=0.45 / height_in, top=1 - 0.32 / height_in,
                        hspace=hspace, wspace=wspace)  # fmt: skip
    return fig


def _svg(fig: Figure, title: str) -> str:
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Title": title})
    return _compact(buf.getvalue())


_COORDS = re.compile(r'(?<![-\w:])(?:d|x|y|width|height)="[^"]*"')
_DECIMALS = re.compile(r"(-?\d+)\.(\d)\d*")


def _compact(svg: str) -> str:
    """A smaller SVG that draws the same: coordinates to 0.1 pt (matplotlib writes six decimals), no
    RDF metadata, no indentation between tags. Text content is left alone."""
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)

    def short(m: re.Match[str]) -> str:
        attr = _DECIMALS.sub(lambda n: n[1] if n[2] == "0" else f"{n[1]}.{n[2]}", m[0])
        return " ".join(attr.split())

    return re.sub(r">\s+<", "><", _COORDS.sub(short, svg))


def _time_axis(test: TestRecord) -> tuple[float, float, float] | None:
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


def _finish_time_axes(axes: Sequence[Axes], marks: _Marks, t0: float, lo: float, hi: float) -> None:
    for k, ax in enumerate(axes):
        ax.set_xlim(lo, hi)
        ax.grid(True, lw=0.3, alpha=0.6)
        _draw_marks(ax, marks, t0, labels=k == 0, suffix="" if k == 0 else f"-ax{k}")
    axes[-1].set_xlabel(f"seconds since {_utc(t0)} (UTC)")


def _legend(ax: Axes, *, outside: bool = True) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles and outside:  # beside the axes, never over the data
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6.5, frameon=False)
    elif handles:
        ax.legend(handles, labels, loc="best", fontsize=6.5, framealpha=0.8)


def _window_lines(ax: Axes, test: TestRecord, t0: float) -> None:
    """The test's own window inside the plotted margin, as faint dotted lines."""
    if test.window is not None and test.series_window is not None:
        for edge in (test.window.start, test.window.end):
            ax.axvline(edge - t0, color="#999999", ls=":", lw=0.8)


# -- the per-test figures --------------------------------------------------------------------------


def plot_keys(test: TestRecord) -> list[str]:
    """The keys of the figures :func:`record_plots` gives ``test``, in order, without drawing them."""
    return [key for key, _ in _plan(test)]


def record_plots(test: TestRecord) -> list[Plot]:
    """The figures of one test: none for a test without load and without series; otherwise
    throughput, latency and resources (each drawn, or a note), then one timeline per resilience
    experiment (pod-kill recovery, OOM sequence)."""
    plan = _plan(test)
    if not plan:
        return []
    axis = _time_axis(test)
    marks = _marks(test)
    out = []
    for key, chaos in plan:
        if key == "throughput":
            out.append(_throughput(test, axis, marks))
        elif key == "latency":
            out.append(_latency(test, axis, marks))
        elif key == "resources":
            out.append(_resources(test, axis, marks))
        elif chaos is not None and key.startswith("recovery-"):
            recovery = chaos.recovery or _slo_detail(test, Recovery, chaos.window)
            out.append(_recovery(test, chaos, recovery, int(key.split("-")[1]), marks))
        elif chaos is not None:
            oom = chaos.oom_sequence or _slo_detail(test, OomSequence, chaos.window)
            out.append(_oom(test, chaos, oom, int(key.split("-")[1]), axis, marks))
    return out


def _plan(test: TestRecord) -> list[tuple[str, ChaosRecord | None]]:
    if not test.loads and not test.series:
        return []
    plan: list[tuple[str, ChaosRecord | None]] = [
        ("throughput", None),
        ("latency", None),
        ("resources", None),
    ]
    for i, c in enumerate(test.chaos):
        if c.recovery is not None or _slo_detail(test, Recovery, c.window) is not None:
            plan.append((f"recovery-{i}", c))
        if c.oom_sequence is not None or _slo_detail(test, OomSequence, c.window) is not None:
            plan.append((f"oom-{i}", c))
    return plan


def _slo_detail(test: TestRecord, kind: type[Any], window: Window | None) -> Any:
    for s in test.slos:
        if isinstance(s.detail, kind):
            at = s.detail.fault_at if isinstance(s.detail, Recovery) else s.detail.oom_killed_at
            if window is None or at is None or window.start - 5 <= at <= window.end + 60:
                return s.detail
    return None


def _throughput(test: TestRecord, axis: tuple[float, float, float] | None, marks: _Marks) -> Plot:
    title = "Throughput: accepted orders/s and errors (Prometheus), the generator's own rate"
    notes: list[str] = []
    accepted = _find(test.series, "accepted_rate")
    others = [s for s in _find(test.series, "order_rate_by_outcome") if s.labels.get("outcome") != "accepted"]
    # An outcome that stayed at 0 is not drawn (a session has a handful of them); a note says so.
    outcomes = [s for s in others if any(v is not None and math.isfinite(v) and v > 0 for v in s.values)]
    generated = _per_second([r.timeline for r in test.loads if r.timeline is not None and r.timeline.values])
    gen_errors = _per_second(
        [r.errors_timeline for r in test.loads if r.errors_timeline and r.errors_timeline.values]
    )
    if not accepted:
        notes.append("no accepted_rate series from Prometheus for this window")
    if generated is None:
        notes.append("no generator timeline (the load runs recorded none)")
    if axis is None or (not accepted and generated is None):
        return Plot("throughput", title, None, ("nothing to plot: " + "; ".join(notes),))
    t0, lo, hi = axis
    fig = _figure(2.8)
    ax = fig.add_subplot()
    drawn = False
    for s in accepted:
        t, v = _thin(*_xy(s))
        if _has_data(v):
            ax.plot(
                _shift(t, t0),
                v,
                color="#1f77b4",
                lw=1.4,
                label="accepted/s (Prometheus)",
                gid="accepted-rate",
            )
            drawn = True
    if generated is not None:
        t, v = _thin(*generated)
        runs = sum(1 for r in test.loads if r.timeline is not None and r.timeline.values)
        ax.plot(_shift(t, t0), v, color="#ff7f0e", lw=1.0, ls="--", gid="generator-rate",
                label=f"generator 2xx/s ({runs} run{'s' if runs != 1 else ''})")  # fmt: skip
        drawn = True
    for k, s in enumerate(outcomes[:5]):
        t, v = _thin(*_xy(s))
        if _has_data(v):
            ax.plot(_shift(t, t0), v, lw=1.0, color=("#d62728", "#e377c2", "#8c564b", "#7f7f7f", "#bcbd22")[k],
                    label=f"{s.labels.get('outcome', 'error')}/s (Prometheus)", gid=f"errors-{k}")  # fmt: skip
    if gen_errors is not None and max(_finite(gen_errors[1]), default=0.0) > 0:
        t, v = _thin(*gen_errors)
        ax.plot(
            _shift(t, t0),
            v,
            color="#d62728",
            lw=0.9,
            ls=":",
            label="generator failures/s",
            gid="generator-errors",
        )
    if others and not outcomes:
        notes.append("no errors: every outcome other than accepted stayed at 0 in Prometheus")
    elif not others:
        notes.append("no order_rate_by_outcome series from Prometheus for this window")
    elif len(outcomes) > 5:
        notes.append(
            "errors: the 5 first outcomes of " + ", ".join(s.labels.get("outcome", "?") for s in outcomes)
        )
    if not drawn:
        return Plot("throughput", title, None, ("nothing to plot: the series hold no samples",))
    ax.set_ylabel("orders/s")
    ax.set_ylim(bottom=0)
    _window_lines(ax, test, t0)
    _finish_time_axes([ax], marks, t0, lo, hi)
    _legend(ax)
    ax.set_title(title, loc="left")
    return Plot("throughput", title, _svg(fig, title), tuple(notes))


def _latency(test: TestRecord, axis: tuple[float, float, float] | None, marks: _Marks) -> Plot:
    title = "Latency: client-side p50 and p99 against server-side p99"
    notes: list[str] = []
    lines: list[tuple[Values, Values, dict[str, Any]]] = []
    styles: dict[str, dict[str, Any]] = {
        "p50": {"color": "#2ca02c", "lw": 1.0, "label": "client p50"},
        "p99": {"color": "#1f77b4", "lw": 1.4, "label": "client p99"},
    }
    for quantile, style in styles.items():
        first = True
        for run in test.loads:
            s = run.latency_timeline.get(quantile)
            if s is None or not s.values:
                continue
            t, v = _thin(*_xy(s))
            if _has_data(v):
                label = style["label"] if first else "_nolegend_"
                lines.append((t, v, {**style, "label": label, "gid": f"client-{quantile}"}))
                first = False
        if first:
            notes.append(f"no client-side {quantile} timeline")
    server: tuple[tuple[str, dict[str, Any]], ...] = (
        ("server_p99_ms", {"color": "#d62728", "lw": 1.2, "ls": "--", "label": "server p99 (Prometheus)"}),
        ("server_p50_ms", {"color": "#d62728", "lw": 0.7, "ls": ":", "label": "server p50 (Prometheus)"}),
    )
    for name, style in server:
        found = False
        for s in _find(test.series, name):
            t, v = _thin(*_xy(s))
            if _has_data(v):
                lines.append((t, v, {**style, "gid": name.replace("_", "-")}))
                found = True
        if not found and name == "server_p99_ms":
            notes.append("no server_p99_ms series from Prometheus for this window")
    if axis is None or not lines:
        return Plot("latency", title, None, ("nothing to plot: " + "; ".join(notes),))
    t0, lo, hi = axis
    fig = _figure(2.8)
    ax = fig.add_subplot()
    positive = [float(x) for _, v, _ in lines for x in v if math.isfinite(x) and x > 0]
    for t, v, style in lines:
        ax.plot(_shift(t, t0), v, **style)
    if positive and max(positive) / max(min(positive), 1e-3) > 50:
        ax.set_yscale("log")  # a pod kill's timeouts next to a quiet p50: both stay readable
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("ms")
    _window_lines(ax, test, t0)
    _finish_time_axes([ax], marks, t0, lo, hi)
    _legend(ax)
    ax.set_title(title, loc="left")
    return Plot("latency", title, _svg(fig, title), tuple(notes))


def _resources(test: TestRecord, axis: tuple[float, float, float] | None, marks: _Marks) -> Plot:
    title = "Per-pod resources: CPU vs limit, throttled CFS periods, memory working set vs limit, restarts"
    panels = (
        ("cpu_cores_by_pod", "cpu_limit_by_pod", "CPU (cores)", 1.0),
        ("cpu_throttled_share_by_pod", None, "throttled periods (%)", 100.0),
        ("memory_by_pod", "memory_limit_by_pod", "memory working set (MiB)", 1.0 / _MIB),
        ("restarts_by_pod", None, "restarts", 1.0),
    )
    pods = sorted(
        {s.labels.get("pod", "") for s in test.series if s.name in {p[0] for p in panels} and s.values}
    )
    notes = [f"no {name} series" for name, *_ in panels if not _find(test.series, name)]
    if axis is None or not pods:
        return Plot(
            "resources", title, None, ("nothing to plot: no per-pod series from Prometheus for this window",)
        )
    t0, lo, hi = axis
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    color = {pod: cmap(i % 10) for i, pod in enumerate(pods)}
    fig = _figure(5.2, right=0.84, hspace=0.12, wspace=0.28)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (name, limit, ylabel, scale) in zip(axes, panels, strict=True):
        for s in _find(test.series, name):
            pod = s.labels.get("pod", "")
            t, v = _thin(*_xy(s))
            if not _has_data(v):
                continue
            kw = {"drawstyle": "steps-post"} if name == "restarts_by_pod" else {}
            ax.plot(_shift(t, t0), _scale(v, scale), color=color.get(pod, "#333333"), lw=1.0, label=pod, **kw)
        if limit is not None:
            for s in _find(test.series, limit):
                t, v = _thin(*_xy(s))
                if _has_data(v):
                    ax.plot(_shift(t, t0), _scale(v, scale), color=color.get(s.labels.get("pod", ""), "#333333"), lw=0.9,
                            ls="--", gid=f"{limit.replace('_', '-')}")  # fmt: skip
            ylabel += " - dashed: limit"
        ax.set_ylabel(ylabel, fontsize=7)
        ax.set_ylim(bottom=0)
        if not ax.lines:
            ax.text(
                0.5, 0.5, f"no {name} data", transform=ax.transAxes, ha="center", va="center", color="#777777"
            )
    _finish_time_axes(list(axes), marks, t0, lo, hi)
    axes[2].set_xlabel(axes[3].get_xlabel())
    handles = [h for h, lab in zip(*axes[0].get_legend_handles_labels(), strict=True) if lab in color]
    seen = {h.get_label() for h in handles}
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab in color and lab not in seen:
                handles.append(h)
                seen.add(lab)
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.85, 1 - 0.32 / 5.2), fontsize=6.5,
                   title="pod", title_fontsize=7, frameon=False)  # fmt: skip
    fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return Plot("resources", title, _svg(fig, title), tuple(notes))


def _recovery(test: TestRecord, c: ChaosRecord, r: Recovery, i: int, marks: _Marks) -> Plot:
    """A pod kill's timeline: throughput at 100 ms resolution (and its 1 s mean) dipping after the
    fault and coming back, the floor it must regain, and the recovery time marked."""
    title = f"Recovery timeline: {c.experiment}"
    run = test.load(c.load) if c.load else None
    candidates = [run] if run is not None else list(test.loads)
    timeline = next((x.timeline for x in candidates if x.timeline is not None and x.timeline.values), None)
    source = "generator 2xx/s"
    if timeline is not None:
        t, counts = _xy(timeline)
        v = _scale(counts, 1.0 / timeline.step)
    else:
        accepted = _find(test.series, "accepted_rate")
        if not accepted:
            return Plot(
                f"recovery-{i}",
                title,
                None,
                ("nothing to plot: no generator timeline and no accepted_rate series",),
            )
        t, v = _xy(accepted[0])
        source = "accepted orders/s (Prometheus)"
    end = max(x for x in (r.recovered_at, r.observed_until, r.fault_at) if x is not None)
    lo, hi = r.fault_at - 10.0, end + 10.0
    around = [(ti, vi) for ti, vi in zip(t, v, strict=True) if lo <= ti <= hi]
    t, v = [ti for ti, _ in around], [vi for _, vi in around]
    if not _has_data(v):
        return Plot(f"recovery-{i}", title, None, ("nothing to plot: no samples around the fault",))
    t0 = r.fault_at
    fig = _figure(2.8)
    ax = fig.add_subplot()
    tt, vv = _thin(t, v, 2 * MAX_POINTS)
    ax.plot(_shift(tt, t0), vv, color="#1f77b4", lw=0.6, alpha=0.45,
            label=f"per {timeline.step * 1000:.0f} ms" if timeline else "Prometheus")  # fmt: skip
    if timeline is not None and timeline.step < 1.0:
        width = max(1, round(1.0 / timeline.step))
        smooth = _moving_mean(v, width)
        ax.plot(*_thin(_shift(t, t0), smooth), color="#1f77b4", lw=1.5, label="1 s mean", gid="recovery-rate")
    ax.axhline(
        r.floor_rate,
        color="#7f7f7f",
        ls="--",
        lw=0.9,
        label=f"floor {r.floor_rate:,.0f}/s",
        gid="recovery-floor",
    )
    notes: list[str] = []
    top = max(*_finite(v), r.floor_rate, 1.0)
    if r.recovered_at is not None and r.dipped:
        ax.axvspan(0.0, r.recovered_at - t0, color="#2ca02c", alpha=0.10, lw=0, gid="recovery-time")
        ax.annotate("", xy=(r.recovered_at - t0, top * 1.08), xytext=(0.0, top * 1.08),
                    arrowprops={"arrowstyle": "<->", "color": "#2ca02c", "lw": 1.0})  # fmt: skip
        ax.text((r.recovered_at - t0) / 2, top * 1.1, f"recovery {r.recovery_s or 0:.2f} s", ha="center",
                va="bottom", color="#2ca02c", fontsize=8, gid="recovery-label")  # fmt: skip
    elif r.dipped:
        ax.text(
            0.5, 0.9, "did not recover while observed", transform=ax.transAxes, ha="center", color="#d62728"
        )
        notes.append("throughput did not recover to the floor while it was observed")
    else:
        notes.append("throughput never dipped below the floor: recovery 0 s")
    if r.dip_at is not None:
        ax.axvline(r.dip_at - t0, color="#ff7f0e", ls=":", lw=0.9, gid="recovery-dip")
    ax.set_ylim(0, top * 1.25)
    ax.set_ylabel(source, fontsize=7)
    _finish_time_axes([ax], marks, t0, lo - t0, hi - t0)
    ax.set_xlabel(f"seconds since the fault at {_utc(r.fault_at, ms=True)} (UTC)")
    _legend(ax)
    ax.set_title(title, loc="left")
    return Plot(f"recovery-{i}", title, _svg(fig, title), tuple(notes))


def _oom(
    test: TestRecord,
    c: ChaosRecord,
    o: OomSequence,
    i: int,
    axis: tuple[float, float, float] | None,
    marks: _Marks,
) -> Plot:
    """Memory pressure's timeline: the target's working set against its limit, then a state lane:
    running, OOMKilled, CrashLoopBackOff (as Prometheus first saw them), and its restarts."""
    title = f"OOM timeline: {c.experiment} ({o.container})"
    pod = _pod_of(o.container)
    times = [x for x in (o.oom_killed_at, o.crashloop_at) if x is not None]
    if c.window is not None:
        times += [c.window.start, c.window.end]
    if axis is not None:
        t0, lo, hi = axis
    elif times:
        t0, lo, hi = min(times) - 10.0, 0.0, max(times) - min(times) + 20.0
    else:
        return Plot(f"oom-{i}", title, None, ("nothing to plot: no time window and no OOM events",))

    def of_pod(name: str) -> list[Series]:
        found = [s for s in _find(test.series, name) if s.labels.get("pod") == pod]
        return found or [s for s in _find(test.series, name) if s.labels.get("pod", "").startswith(pod)]

    fig = _figure(3.4, hspace=0.08)
    top, lane = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1.0))
    for s in of_pod("memory_by_pod"):
        t, v = _thin(*_xy(s))
        top.plot(
            _shift(t, t0),
            _scale(v, 1 / _MIB),
            color="#1f77b4",
            lw=1.2,
            label=f"{s.labels.get('pod', pod)} working set",
        )
    for s in of_pod("memory_limit_by_pod"):
        t, v = _thin(*_xy(s))
        top.plot(
            _shift(t, t0),
            _scale(v, 1 / _MIB),
            color="#1f77b4",
            lw=0.9,
            ls="--",
            label="limit",
            gid="memory-limit",
        )
    notes: list[str] = []
    if not top.lines:
        top.text(0.5, 0.5, f"no memory series for pod {pod}", transform=top.transAxes, ha="center", va="center",
                 color="#777777")  # fmt: skip
        notes.append(f"no memory_by_pod series for pod {pod}")
    top.set_ylabel("MiB")
    top.set_ylim(bottom=0)
    _legend(top)
    # The state lane: what the kubelet said about the container, in order.
    states: list[tuple[float, float, str, str]] = []
    end = t0 + hi
    if o.oom_killed_at is not None:
        states.append((t0 + lo, o.oom_killed_at, "running", "#c7e9c0"))
        states.append((o.oom_killed_at, o.crashloop_at or end, "OOMKilled", "#f4a3a3"))
    if o.crashloop_at is not None:
        start = o.crashloop_at
        if o.oom_killed_at is None:
            states.append((t0 + lo, start, "running", "#c7e9c0"))
        states.append((start, end, "CrashLoopBackOff", "#fdd0a2"))
    for a, b, label, col in states:
        if b > a:
            lane.broken_barh(
                [(a - t0, b - a)], (0.2, 0.6), facecolors=col, edgecolor="none", gid=f"state-{label}"
            )
            lane.text(max(a - t0, lo) + 0.3, 0.5, label, va="center", ha="left", fontsize=7, clip_on=True)
    restart_times = [
        at - t0 for s in of_pod("restarts_by_pod") for at in _increases(*_xy(s)) if lo <= at - t0 <= hi
    ]
    if restart_times:
        lane.plot(restart_times, [0.9] * len(restart_times), marker="v", color="#d62728", ms=5, ls="none",
                  gid="restarts")  # fmt: skip
        notes.append(f"{len(restart_times)} restart(s) of {pod} in the window (red triangles)")
    if o.oom_killed_at is None:
        notes.append("OOMKilled was not seen")
    if o.crashloop_at is None:
        notes.append("CrashLoopBackOff was not seen")
    if not states:
        lane.text(0.5, 0.5, "no OOMKilled / CrashLoopBackOff seen", transform=lane.transAxes, ha="center",
                  va="center", color="#777777")  # fmt: skip
    lane.set_ylim(0, 1)
    lane.set_yticks([])
    lane.set_ylabel("state", fontsize=7)
    _finish_time_axes([top, lane], marks, t0, lo, hi)
    fig.suptitle(
        title + (": OOMKilled then CrashLoopBackOff" if o.in_order else ""), x=0.01, ha="left", fontsize=9
    )
    return Plot(f"oom-{i}", title, _svg(fig, title), tuple(notes))


def _increases(t: Values, v: Values) -> Values:
    """When a counter (restarts) went up, skipping missing samples."""
    seen = [(ti, vi) for ti, vi in zip(t, v, strict=True) if math.isfinite(vi)]
    return [seen[k][0] for k in range(1, len(seen)) if seen[k][1] > seen[k - 1][1]]


# -- the scaling sweep -----------------------------------------------------------------------------


def usl_plot(sweep: SweepResult) -> Plot:
    """Measured sustainable throughput per replica count against the fitted USL curve, N* marked."""
    title = "Scaling: measured throughput vs the Universal Scalability Law fit"
    measured = [(p.backends, p.throughput) for p in sweep.points if p.throughput is not None]
    none = [p.backends for p in sweep.points if p.throughput is None]
    fit = sweep.fit
    if not measured and (fit is None or not fit.points):
        at = f" (no sustainable rate at N={', '.join(str(n) for n in none)})" if none else ""
        return Plot("usl", title, None, (f"nothing to plot: no sustainable throughput was measured{at}",))
    fig = _figure(3.4, right=0.97)
    ax = fig.add_subplot()
    notes: list[str] = []
    n_max = max([n for n, _ in measured] + [n for n, _ in (fit.points if fit else [])] + none + [1])
    if fit is not None:
        top = max(n_max * 1.25, (fit.n_star or 0) * 1.5, 2.0)
        n = [1.0 + (top - 1.0) * k / 199 for k in range(200)]
        x = [fit.lam * m / (1.0 + fit.sigma * (m - 1.0) + fit.kappa * m * (m - 1.0)) for m in n]
        ax.plot(n, x, color="#1f77b4", lw=1.5, gid="usl-curve",
                label=f"USL: λ={fit.lam:,.0f} σ={fit.sigma:.3g} κ={fit.kappa:.3g}")  # fmt: skip
        cap = max(*_finite(x), *(x_i for _, x_i in measured), 1.0) * 1.3
        linear = [(m, fit.lam * m) for m in n if fit.lam * m <= cap]
        ax.plot(
            [m for m, _ in linear], [y for _, y in linear], color="#7f7f7f", lw=0.8, ls=":", label="linear λN"
        )
        ax.set_ylim(0, cap)
        if fit.n_star is not None and math.isfinite(fit.n_star):
            ax.axvline(fit.n_star, color="#d62728", ls="--", lw=1.0, gid="usl-nstar")
            label = f"N* ≈ {fit.n_star:.1f}" + (f", X_max ≈ {fit.x_max:,.0f}/s" if fit.x_max else "")
            ax.text(fit.n_star, 0.04, " " + label, transform=_blend(ax), rotation=90, va="bottom", ha="left",
                    color="#d62728", fontsize=7.5)  # fmt: skip
            if fit.n_star_ci is not None:
                a, b = fit.n_star_ci
                ax.axvspan(max(a, 0.0), b, color="#d62728", alpha=0.08, lw=0, label="N* 95% CI")
        if fit.x_max is not None:
            ax.axhline(fit.x_max, color="#d62728", ls=":", lw=0.7)
    else:
        notes.append("no USL fit (too few points, or the fit failed)")
    if measured:
        ns, xs = zip(*measured, strict=True)
        ax.plot(ns, xs, "o", color="#ff7f0e", ms=6, mec="#333333", mew=0.6, label="measured (highest sustainable)",
                gid="usl-points")  # fmt: skip
        for n_i, x_i in measured:
            ax.annotate(f"{x_i:,.0f}", (n_i, x_i), textcoords="offset points", xytext=(4, 5), fontsize=7)
    if sweep.knee is not None:
        knee = next((x for n_i, x in measured if n_i == sweep.knee), None)
        if knee is not None:
            ax.plot(
                [sweep.knee],
                [knee],
                marker="*",
                color="#d62728",
                ms=12,
                ls="none",
                label=f"knee N={sweep.knee}",
            )
    if none:
        ax.plot(none, [0.0] * len(none), "x", color="#d62728", ms=7, label="no sustainable rate")
        notes.append("no sustainable rate at N=" + ", ".join(str(n) for n in none))
    ax.set_xlabel("backends (N)")
    ax.set_ylabel("orders/s")
    ax.set_xlim(0.5, None)
    if fit is None:
        ax.set_ylim(bottom=0)
    ax.grid(True, lw=0.3, alpha=0.6)
    _legend(ax, outside=False)
    ax.set_title(title, loc="left")
    return Plot("usl", title, _svg(fig, title), tuple(notes))


def _blend(ax: Axes) -> Any:
    from matplotlib.transforms import blended_transform_factory

    return blended_transform_factory(ax.transData, ax.transAxes)


# -- a comparison against a baseline run -----------------------------------------------------------

_BASELINE_COLOR = "#1f77b4"
_CURRENT_COLOR = "#d62728"


def comparison_plot(m: MeasureComparison) -> Plot:
    """One compared measure's two distributions overlaid, baseline and current: per-second samples
    as histograms and ECDFs with both means marked (``distribution == "samples"``), or the two
    quantile curves on a nines scale (``"quantiles"``). The title carries the effect and its interval."""
    title = _comparison_title(m)
    base = _plain(m.baseline_values)
    cur = _plain(m.current_values)
    if m.distribution == "quantiles":
        return _quantile_overlay(m, title, base, cur)
    base, cur = _finite(base), _finite(cur)
    missing = [who for who, v in (("baseline", base), ("current", cur)) if not v]
    if missing:
        return Plot("compare", title, None, (f"nothing to plot: no {' and no '.join(missing)} samples",))
    fig = _figure(2.9, right=0.8, wspace=0.25)
    hist, ecdf = fig.subplots(1, 2)
    lo, hi = min(*base, *cur), max(*base, *cur)
    if hi <= lo:  # every sample the same: give the one bin a width
        lo, hi = lo - max(abs(lo) * 0.05, 0.5), hi + max(abs(hi) * 0.05, 0.5)
    bins = min(30, max(6, round(math.sqrt(max(len(base), len(cur))) * 2)))
    edges = [lo + (hi - lo) * k / bins for k in range(bins + 1)]
    for values, color, who in ((base, _BASELINE_COLOR, "baseline"), (cur, _CURRENT_COLOR, "current")):
        mean = sum(values) / len(values)
        hist.hist(values, bins=edges, histtype="stepfilled", alpha=0.3, color=color, gid=f"{who}-hist")
        hist.hist(values, bins=edges, histtype="step", lw=1.0, color=color, label=f"{who} (n={len(values)})")
        hist.axvline(mean, color=color, ls="--", lw=1.3, gid=f"{who}-mean", label=f"{who} mean {mean:,.4g}")
        xs = sorted(values)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ecdf.step([xs[0], *xs], [0.0, *ys], where="post", color=color, lw=1.3, gid=f"{who}-ecdf")
        ecdf.axvline(mean, color=color, ls="--", lw=1.0)
    unit = f" ({m.unit})" if m.unit else ""
    hist.set_xlabel(m.measure + unit)
    hist.set_ylabel("samples")
    ecdf.set_xlabel(m.measure + unit)
    ecdf.set_ylabel("share of samples at or below")
    ecdf.set_ylim(0.0, 1.02)
    for ax in (hist, ecdf):
        ax.grid(True, lw=0.3, alpha=0.6)
    # One legend beside the ECDF (the histograms' outlines and means), never over the data.
    handles, labels = hist.get_legend_handles_labels()
    ecdf.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=6.5, frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return Plot("compare", title, _svg(fig, title), ())


def _comparison_title(m: MeasureComparison) -> str:
    where = " / ".join(x for x in (m.test.split("::")[-1], m.load, m.measure) if x)
    if m.effect is None:
        return f"{where}: baseline vs current (no effect estimate)"
    ci = f" [{m.ci[0]:+.1%}, {m.ci[1]:+.1%}]" if m.ci is not None else ""
    return f"{where}: {m.effect:+.1%}{ci} vs baseline ({m.better} is better)"


def _plain(values: Sequence[float | None]) -> Values:
    """Floats, ``None`` (a non-finite number after JSON) as ``nan``."""
    return [math.nan if x is None else float(x) for x in values]


def _nines(level: float) -> float:
    """A quantile level (0-100) on the nines scale: 90 -> 1, 99 -> 2, 99.9 -> 3 (100 is capped)."""
    return -math.log10(max(1.0 - level / 100.0, 1e-6))


def _quantile_overlay(m: MeasureComparison, title: str, base: Values, cur: Values) -> Plot:
    n = min(len(m.grid), len(base), len(cur))
    notes: list[str] = []
    if len({len(m.grid), len(base), len(cur)}) > 1:
        notes.append(
            f"grid and values differ in length ({len(m.grid)} levels, {len(base)} baseline, "
            f"{len(cur)} current): the first {n} are drawn"
        )
    grid, base, cur = [float(q) for q in m.grid[:n]], base[:n], cur[:n]
    if not (_has_data(base) and _has_data(cur)):
        return Plot("compare", title, None, ("nothing to plot: no baseline or no current quantiles", *notes))
    x = [_nines(q) for q in grid]
    fig = _figure(2.9, right=0.97)
    ax = fig.add_subplot()
    for values, color, who in ((base, _BASELINE_COLOR, "baseline"), (cur, _CURRENT_COLOR, "current")):
        ax.plot(x, values, color=color, lw=1.4, marker="o", ms=3, label=who, gid=f"{who}-quantiles")
    levels = [q for q in (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0) if min(grid) <= q <= max(grid)]
    ax.set_xticks([_nines(q) for q in levels], ["max" if q >= 100 else f"p{q:g}" for q in levels])
    ax.set_xlabel("quantile level (nines scale: p90, p99, p99.9 equally spaced)")
    ax.set_ylabel(m.measure + (f" ({m.unit})" if m.unit else ""))
    positive = [v for v in (*base, *cur) if math.isfinite(v) and v > 0]
    if positive and len(positive) == len(_finite(base + cur)) and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # a tail many times the median would flatten the body of the curve
    ax.grid(True, lw=0.3, alpha=0.6)
    _legend(ax, outside=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return Plot("compare", title, _svg(fig, title), tuple(notes))
