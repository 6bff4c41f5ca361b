"""The per-test figures, drawn with matplotlib from typed records into SVG text.

One test with load or recorded series gets: throughput (accepted orders/s and errors from
Prometheus, the generator's own 2xx/s overlaid), latency (client-side p50/p99 against server-side
p99), per-pod resources (CPU against the limit, throttled CFS periods, memory working set against the
limit, restarts), and a timeline per resilience experiment (a pod kill's dip and recovery; memory
pressure's OOMKilled then CrashLoopBackOff). Chaos windows, injections and recoveries are shaded and
marked on every time axis (:mod:`~pytest_hftk8s.report.timeaxis`).

The report's other figures live beside these and are importable from here too: a scaling sweep's
Universal Scalability Law figure (:func:`usl_plot`, in :mod:`~pytest_hftk8s.report.scaling`) and a
regressed measure's two distributions overlaid (:func:`comparison_plot`, in
:mod:`~pytest_hftk8s.report.compared`). All of them are drawn on
:mod:`~pytest_hftk8s.report.canvas`.

Reads :mod:`pytest_hftk8s.results` only. matplotlib is imported lazily and never through
``pyplot`` (see :mod:`~pytest_hftk8s.report.canvas`). A figure with nothing to draw is a
:class:`Plot` without ``svg`` and with a note that says what is missing.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_hftk8s.report.canvas import Plot, Values, figure, finite, has_data, legend, to_svg
from pytest_hftk8s.report.compared import comparison_plot
from pytest_hftk8s.report.scaling import usl_plot
from pytest_hftk8s.report.timeaxis import (
    MAX_POINTS,
    MIB,
    Marks,
    chaos_marks,
    find,
    finish_time_axes,
    moving_mean,
    per_second,
    pod_of,
    scaled,
    shift,
    thin,
    time_axis,
    utc,
    window_lines,
    xy,
)
from pytest_hftk8s.results import ChaosRecord, OomSequence, Recovery, Series, TestRecord, Window

__all__ = ["Plot", "comparison_plot", "plot_keys", "record_plots", "usl_plot"]


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
    axis = time_axis(test)
    marks = chaos_marks(test)
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


def _throughput(test: TestRecord, axis: tuple[float, float, float] | None, marks: Marks) -> Plot:
    title = "Throughput: accepted orders/s and errors (Prometheus), the generator's own rate"
    notes: list[str] = []
    accepted = find(test.series, "accepted_rate")
    others = [s for s in find(test.series, "order_rate_by_outcome") if s.labels.get("outcome") != "accepted"]
    # An outcome that stayed at 0 is not drawn (a session has a handful of them); a note says so.
    outcomes = [s for s in others if any(v is not None and math.isfinite(v) and v > 0 for v in s.values)]
    generated = per_second([r.timeline for r in test.loads if r.timeline is not None and r.timeline.values])
    gen_errors = per_second(
        [r.errors_timeline for r in test.loads if r.errors_timeline and r.errors_timeline.values]
    )
    if not accepted:
        notes.append("no accepted_rate series from Prometheus for this window")
    if generated is None:
        notes.append("no generator timeline (the load runs recorded none)")
    if axis is None or (not accepted and generated is None):
        return Plot("throughput", title, None, ("nothing to plot: " + "; ".join(notes),))
    t0, lo, hi = axis
    fig = figure(2.8)
    ax = fig.add_subplot()
    drawn = False
    for s in accepted:
        t, v = thin(*xy(s))
        if has_data(v):
            ax.plot(
                shift(t, t0),
                v,
                color="#1f77b4",
                lw=1.4,
                label="accepted/s (Prometheus)",
                gid="accepted-rate",
            )
            drawn = True
    if generated is not None:
        t, v = thin(*generated)
        runs = sum(1 for r in test.loads if r.timeline is not None and r.timeline.values)
        ax.plot(shift(t, t0), v, color="#ff7f0e", lw=1.0, ls="--", gid="generator-rate",
                label=f"generator 2xx/s ({runs} run{'s' if runs != 1 else ''})")  # fmt: skip
        drawn = True
    for k, s in enumerate(outcomes[:5]):
        t, v = thin(*xy(s))
        if has_data(v):
            ax.plot(shift(t, t0), v, lw=1.0, color=("#d62728", "#e377c2", "#8c564b", "#7f7f7f", "#bcbd22")[k],
                    label=f"{s.labels.get('outcome', 'error')}/s (Prometheus)", gid=f"errors-{k}")  # fmt: skip
    if gen_errors is not None and max(finite(gen_errors[1]), default=0.0) > 0:
        t, v = thin(*gen_errors)
        ax.plot(
            shift(t, t0),
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
    window_lines(ax, test, t0)
    finish_time_axes([ax], marks, t0, lo, hi)
    legend(ax)
    ax.set_title(title, loc="left")
    return Plot("throughput", title, to_svg(fig, title), tuple(notes))


def _latency(test: TestRecord, axis: tuple[float, float, float] | None, marks: Marks) -> Plot:
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
            t, v = thin(*xy(s))
            if has_data(v):
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
        for s in find(test.series, name):
            t, v = thin(*xy(s))
            if has_data(v):
                lines.append((t, v, {**style, "gid": name.replace("_", "-")}))
                found = True
        if not found and name == "server_p99_ms":
            notes.append("no server_p99_ms series from Prometheus for this window")
    if axis is None or not lines:
        return Plot("latency", title, None, ("nothing to plot: " + "; ".join(notes),))
    t0, lo, hi = axis
    fig = figure(2.8)
    ax = fig.add_subplot()
    positive = [float(x) for _, v, _ in lines for x in v if math.isfinite(x) and x > 0]
    for t, v, style in lines:
        ax.plot(shift(t, t0), v, **style)
    if positive and max(positive) / max(min(positive), 1e-3) > 50:
        ax.set_yscale("log")  # a pod kill's timeouts next to a quiet p50: both stay readable
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("ms")
    window_lines(ax, test, t0)
    finish_time_axes([ax], marks, t0, lo, hi)
    legend(ax)
    ax.set_title(title, loc="left")
    return Plot("latency", title, to_svg(fig, title), tuple(notes))


def _resources(test: TestRecord, axis: tuple[float, float, float] | None, marks: Marks) -> Plot:
    title = "Per-pod resources: CPU vs limit, throttled CFS periods, memory working set vs limit, restarts"
    panels = (
        ("cpu_cores_by_pod", "cpu_limit_by_pod", "CPU (cores)", 1.0),
        ("cpu_throttled_share_by_pod", None, "throttled periods (%)", 100.0),
        ("memory_by_pod", "memory_limit_by_pod", "memory working set (MiB)", 1.0 / MIB),
        ("restarts_by_pod", None, "restarts", 1.0),
    )
    pods = sorted(
        {s.labels.get("pod", "") for s in test.series if s.name in {p[0] for p in panels} and s.values}
    )
    notes = [f"no {name} series" for name, *_ in panels if not find(test.series, name)]
    if axis is None or not pods:
        return Plot(
            "resources", title, None, ("nothing to plot: no per-pod series from Prometheus for this window",)
        )
    t0, lo, hi = axis
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    color = {pod: cmap(i % 10) for i, pod in enumerate(pods)}
    fig = figure(5.2, right=0.84, hspace=0.12, wspace=0.28)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (name, limit, ylabel, scale) in zip(axes, panels, strict=True):
        for s in find(test.series, name):
            pod = s.labels.get("pod", "")
            t, v = thin(*xy(s))
            if not has_data(v):
                continue
            kw = {"drawstyle": "steps-post"} if name == "restarts_by_pod" else {}
            ax.plot(shift(t, t0), scaled(v, scale), color=color.get(pod, "#333333"), lw=1.0, label=pod, **kw)
        if limit is not None:
            for s in find(test.series, limit):
                t, v = thin(*xy(s))
                if has_data(v):
                    ax.plot(shift(t, t0), scaled(v, scale), color=color.get(s.labels.get("pod", ""), "#333333"), lw=0.9,
                            ls="--", gid=f"{limit.replace('_', '-')}")  # fmt: skip
            ylabel += " - dashed: limit"
        ax.set_ylabel(ylabel, fontsize=7)
        ax.set_ylim(bottom=0)
        if not ax.lines:
            ax.text(
                0.5, 0.5, f"no {name} data", transform=ax.transAxes, ha="center", va="center", color="#777777"
            )
    finish_time_axes(list(axes), marks, t0, lo, hi)
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
    return Plot("resources", title, to_svg(fig, title), tuple(notes))


def _recovery(test: TestRecord, c: ChaosRecord, r: Recovery, i: int, marks: Marks) -> Plot:
    """A pod kill's timeline: throughput at 100 ms resolution (and its 1 s mean) dipping after the
    fault and coming back, the floor it must regain, and the recovery time marked."""
    title = f"Recovery timeline: {c.experiment}"
    run = test.load(c.load) if c.load else None
    candidates = [run] if run is not None else list(test.loads)
    timeline = next((x.timeline for x in candidates if x.timeline is not None and x.timeline.values), None)
    source = "generator 2xx/s"
    if timeline is not None:
        t, counts = xy(timeline)
        v = scaled(counts, 1.0 / timeline.step)
    else:
        accepted = find(test.series, "accepted_rate")
        if not accepted:
            return Plot(
                f"recovery-{i}",
                title,
                None,
                ("nothing to plot: no generator timeline and no accepted_rate series",),
            )
        t, v = xy(accepted[0])
        source = "accepted orders/s (Prometheus)"
    end = max(x for x in (r.recovered_at, r.observed_until, r.fault_at) if x is not None)
    lo, hi = r.fault_at - 10.0, end + 10.0
    around = [(ti, vi) for ti, vi in zip(t, v, strict=True) if lo <= ti <= hi]
    t, v = [ti for ti, _ in around], [vi for _, vi in around]
    if not has_data(v):
        return Plot(f"recovery-{i}", title, None, ("nothing to plot: no samples around the fault",))
    t0 = r.fault_at
    fig = figure(2.8)
    ax = fig.add_subplot()
    tt, vv = thin(t, v, 2 * MAX_POINTS)
    ax.plot(shift(tt, t0), vv, color="#1f77b4", lw=0.6, alpha=0.45,
            label=f"per {timeline.step * 1000:.0f} ms" if timeline else "Prometheus")  # fmt: skip
    if timeline is not None and timeline.step < 1.0:
        width = max(1, round(1.0 / timeline.step))
        smooth = moving_mean(v, width)
        ax.plot(*thin(shift(t, t0), smooth), color="#1f77b4", lw=1.5, label="1 s mean", gid="recovery-rate")
    ax.axhline(
        r.floor_rate,
        color="#7f7f7f",
        ls="--",
        lw=0.9,
        label=f"floor {r.floor_rate:,.0f}/s",
        gid="recovery-floor",
    )
    notes: list[str] = []
    top = max(*finite(v), r.floor_rate, 1.0)
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
    finish_time_axes([ax], marks, t0, lo - t0, hi - t0)
    ax.set_xlabel(f"seconds since the fault at {utc(r.fault_at, ms=True)} (UTC)")
    legend(ax)
    ax.set_title(title, loc="left")
    return Plot(f"recovery-{i}", title, to_svg(fig, title), tuple(notes))


def _oom(
    test: TestRecord,
    c: ChaosRecord,
    o: OomSequence,
    i: int,
    axis: tuple[float, float, float] | None,
    marks: Marks,
) -> Plot:
    """Memory pressure's timeline: the target's working set against its limit, then a state lane:
    running, OOMKilled, CrashLoopBackOff (as Prometheus first saw them), and its restarts."""
    title = f"OOM timeline: {c.experiment} ({o.container})"
    pod = pod_of(o.container)
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
        found = [s for s in find(test.series, name) if s.labels.get("pod") == pod]
        return found or [s for s in find(test.series, name) if s.labels.get("pod", "").startswith(pod)]

    fig = figure(3.4, hspace=0.08)
    top, lane = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1.0))
    for s in of_pod("memory_by_pod"):
        t, v = thin(*xy(s))
        top.plot(
            shift(t, t0),
            scaled(v, 1 / MIB),
            color="#1f77b4",
            lw=1.2,
            label=f"{s.labels.get('pod', pod)} working set",
        )
    for s in of_pod("memory_limit_by_pod"):
        t, v = thin(*xy(s))
        top.plot(
            shift(t, t0),
            scaled(v, 1 / MIB),
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
    legend(top)
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
        at - t0 for s in of_pod("restarts_by_pod") for at in _increases(*xy(s)) if lo <= at - t0 <= hi
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
    finish_time_axes([top, lane], marks, t0, lo, hi)
    fig.suptitle(
        title + (": OOMKilled then CrashLoopBackOff" if o.in_order else ""), x=0.01, ha="left", fontsize=9
    )
    return Plot(f"oom-{i}", title, to_svg(fig, title), tuple(notes))


def _increases(t: Values, v: Values) -> Values:
    """When a counter (restarts) went up, skipping missing samples."""
    seen = [(ti, vi) for ti, vi in zip(t, v, strict=True) if math.isfinite(vi)]
    return [seen[k][0] for k in range(1, len(seen)) if seen[k][1] > seen[k - 1][1]]
