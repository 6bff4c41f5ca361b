"""Render a :class:`~pytest_hftk8s.results.SessionReport` as one self-contained ``index.html`` (inline
CSS, no scripts, no external assets), readable from the file system without a server. Every value
is escaped. Pure rendering from typed records; the only I/O is writing the file.

The figures come from :mod:`~pytest_hftk8s.report.plots` as SVG and are embedded as data URIs
(``<img src="data:image/svg+xml;base64,...">``): each is its own document, so the ids matplotlib
writes cannot clash across figures, and the page reads offline or as a CI artifact. Every test has
a stable anchor made from its node id (:func:`anchor`) and every figure one below it
(``<anchor>-<key>``); a missed SLO's row links to the figure that shows it, and :func:`slo_link`
gives the same link to whoever writes the failure message.

A run compared with a baseline (``--hft-compare``) opens with that comparison, and a run with
repeats shows how far they spread: both are :mod:`~pytest_hftk8s.report.compared`'s (its
:func:`compare_anchor` is importable from here too). The pieces every part shares (escaping,
numbers, anchors, an embedded figure) are :mod:`~pytest_hftk8s.report.markup`'s.
"""

from __future__ import annotations

import datetime
import os
import pathlib
from collections.abc import Sequence
from typing import Any

from pytest_hftk8s.report import compared, plots
from pytest_hftk8s.report.compared import compare_anchor
from pytest_hftk8s.report.markup import anchor, anchors, embed, esc, num
from pytest_hftk8s.results import (
    Bottleneck,
    ChaosRecord,
    DigestRow,
    LoadSummary,
    OomSequence,
    Recovery,
    ResilienceScore,
    SessionReport,
    SloResult,
    SweepResult,
    TestRecord,
    UslFit,
)

__all__ = ["CSS", "anchor", "compare_anchor", "render", "slo_link", "write"]

CSS = (
    """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.passed{color:#137333}.failed,.error{color:#b3261e}.skipped{color:#777}
.bad{background:#fdecea}.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
figure{margin:1em 0}figure img{width:100%;max-width:960px;height:auto;display:block}
figcaption,.note{color:#555;font-size:12px}.score{font-size:2em;font-weight:600}
h3{font-size:1em;margin:1.2em 0 .3em}section{border-top:2px solid #eee;margin-top:2em}
"""
    + compared.CSS
)


def _time(epoch: Any) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return ""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def render(report: SessionReport, *, report_dir: pathlib.Path | None = None) -> str:
    totals = report.totals
    platform = report.platform
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>pytest-hftk8s report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>pytest-hftk8s report</h1>",
        "<div class='card'><table>",
        f"<tr><th>cluster</th><td>{esc(report.cluster)}</td></tr>",
        f"<tr><th>profile</th><td>{esc(report.profile)}</td></tr>",
        f"<tr><th>platform ready after</th><td>{num(platform.ready_seconds if platform else None)} s</td></tr>",
        f"<tr><th>gates</th><td>{esc(num(platform.gates if platform else {}))}</td></tr>",
        f"<tr><th>offered rate</th><td>{esc(_capacity(report))}</td></tr>",
        f"<tr><th>tests</th><td>{esc(totals.tests)} {esc(totals.outcomes)}</td></tr>",
        f"<tr><th>SLOs</th><td>{esc(totals.slos)} evaluated, {esc(totals.slos_failed)} missed</td></tr>",
    ]
    if report.identity is not None:
        out.append(f"<tr><th>run</th><td>{esc(compared.identity(report.identity))}</td></tr>")
    if report.repeat > 1:
        out.append(f"<tr><th>repeats</th><td><a href='#repeats'>{report.repeat} per test</a></td></tr>")
    out.append("</table></div>")
    if report.comparison is not None:
        out.extend(compared.comparison_section(report.comparison, report.tests))
    out.extend(_contents(report.tests))
    out.extend(_score(report.score))
    out.extend(_resilience(report.resilience))
    out.extend(compared.repeats_table(report))
    for test, ident in zip(report.tests, anchors(report.tests), strict=True):
        out.extend(_test(test, ident, report_dir))
    out.append("</body></html>")
    return "\n".join(out)


def _capacity(report: SessionReport) -> str:
    c = report.capacity
    if c is None:
        return "-"
    if c.closed_loop_rate is None:
        return f"{c.offered_rate:g} requests/s ({c.source})"
    return (
        f"{c.offered_rate:g} requests/s = {c.utilization:.0%} of the measured capacity, "
        f"{c.closed_loop_rate:,.0f} requests/s closed loop ({c.connections} connections)"
    )


def _reached(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _resilience(rows: Sequence[DigestRow]) -> list[str]:
    """One row per experiment of the resilience digest: what held, what broke, how long recovery took."""
    if not rows:
        return []
    out = [
        "<h2>Resilience</h2><table><tr><th>experiment</th><th>outcome</th><th>intensity reached</th>"
        "<th>recovery s</th><th>acked / stored / lost</th><th>fills (dup / over / book)</th>"
        "<th>throughput</th><th>notes</th></tr>"
    ]
    for r in rows:
        acks = r.acked_vs_stored
        counts = f"{acks.acked} / {acks.stored} / {acks.lost}" if acks else "-"
        f = r.fills
        fills = f"{f.fills}: {f.duplicated_fills} / {f.overfilled_orders} / {f.book_mismatches}" if f else "-"
        throughput = f"{r.throughput:,.0f} orders/s" if r.throughput is not None else "-"
        notes = ", ".join(f"{k}={num(v)}" for k, v in r.figures.items())
        if r.oom_then_crashloop:
            notes = f"OOMKilled then CrashLoopBackOff; {notes}".rstrip("; ")
        bad = "" if r.outcome == "passed" else " class='bad'"
        out.append(
            f"<tr{bad}><td>{esc(r.experiment)}</td><td>{esc(r.outcome)}</td>"
            f"<td>{_reached(r.intensity_reached)}</td><td>{num(r.recovery_s) if r.recovery_s is not None else '-'}</td>"
            f"<td>{esc(counts)}</td><td>{esc(fills)}</td><td>{esc(throughput)}</td><td>{esc(notes)}</td></tr>"
        )
    out.append("</table>")
    return out


def slo_link(test: TestRecord, slo: SloResult) -> str:
    """``#<anchor>`` of the figure that shows ``slo``'s measurement (or of the test's section), to
    append to the report's path in a failure message."""
    key = _plot_for(slo, plots.plot_keys(test) + (["usl"] if test.sweep is not None else []))
    return f"#{anchor(test.nodeid)}" + (f"-{key}" if key else "")


def _contents(tests: Sequence[TestRecord]) -> list[str]:
    if not tests:
        return []
    items = "".join(
        f"<li><a href='#{ident}'>{esc(t.nodeid)}</a> <span class='{esc(t.outcome)}'>{esc(t.outcome)}</span></li>"
        for t, ident in zip(tests, anchors(tests), strict=True)
    )
    return [f"<details open><summary>tests</summary><ul>{items}</ul></details>"]


def _score(score: ResilienceScore | None) -> list[str]:
    """The session's resilience score and how it was computed: weights per severity, one row per SLO."""
    if score is None:
        return []
    out = ["<h2 id='score'>Resilience score</h2><div class='card'>"]
    if score.score is None:
        out.append("<p class='score'>no score</p><p class='note'>no resilience SLO was evaluated</p>")
    else:
        out.append(f"<p class='score'>{score.score:.1f} / 100</p>")
    got = sum(i.weight for i in score.items if i.passed)
    total = sum(i.weight for i in score.items)
    method = score.method or "sum(weight x passed) / sum(weight) x 100"
    out.append(f"<p>{esc(method)}</p>")
    if total:
        out.append(
            f"<p class='mono'>= {num(got)} / {num(total)} x 100 = {100 * got / total:.1f} "
            f"({sum(i.passed for i in score.items)} of {len(score.items)} checks held)</p>"
        )
    if score.weights:
        out.append("<table><tr><th>severity</th><th>weight</th><th>checks</th><th>held</th></tr>")
        for severity, weight in score.weights.items():
            mine = [i for i in score.items if i.severity == severity]
            out.append(
                f"<tr><td>{esc(severity)}</td><td>{num(weight)}</td><td>{len(mine)}</td>"
                f"<td>{sum(i.passed for i in mine)}</td></tr>"
            )
        out.append("</table>")
    if score.items:
        out.append(
            "<table><tr><th>test</th><th>experiment</th><th>SLO</th><th>severity</th><th>weight</th>"
            "<th>held</th><th>counts</th></tr>"
        )
        for i in score.items:
            bad = "" if i.passed else " class='bad'"
            out.append(
                f"<tr{bad}><td title='{esc(i.test)}'>{esc(i.test.split('::')[-1])}</td>"
                f"<td>{esc(i.experiment)}</td><td>{esc(i.slo)}</td>"
                f"<td>{esc(i.severity)}</td><td>{num(i.weight)}</td><td>{'yes' if i.passed else 'NO'}</td>"
                f"<td>{num(i.weight if i.passed else 0.0)} / {num(i.weight)}</td></tr>"
            )
        out.append("</table>")
    out.append("</div>")
    return out


# Which figure shows an SLO, by what the SLO measures (the first matching word of its name wins).
_SLO_PLOTS = (
    (("recovery",), "recovery-"),
    (("oom", "crashloop"), "oom-"),
    (("latency", "p99", "p50", "_ms"), "latency"),
    (("restart", "crashloop", "oom", "cpu", "memory", "throttl"), "resources"),
    (("throughput", "registration", "orders", "accepted", "error", "rate", "traded"), "throughput"),
)


def _plot_for(slo: SloResult, keys: Sequence[str]) -> str | None:
    """The key of the figure that shows ``slo``'s measurement, among the test's figures; else the first."""
    wanted: list[str] = []
    if isinstance(slo.detail, Recovery):
        wanted.append("recovery-")
    elif isinstance(slo.detail, OomSequence):
        wanted.append("oom-")
    name = slo.name.lower()
    wanted += [key for words, key in _SLO_PLOTS if any(w in name for w in words)]
    for want in wanted:
        found = next((k for k in keys if k == want or (want.endswith("-") and k.startswith(want))), None)
        if found is not None:
            return found
    return keys[0] if keys else None


def _slos(slos: Sequence[SloResult], section: str, keys: Sequence[str]) -> list[str]:
    out = ["<table><tr><th>SLO</th><th>observed</th><th>expected</th><th>held</th><th>query</th></tr>"]
    for s in slos:
        bad = "" if s.passed else " class='bad'"
        expected = f"{s.comparator} {num(s.threshold)} {s.unit}"
        message = "<br>" + esc(s.message) if s.message else ""
        name = esc(s.name)
        if not s.passed:
            key = _plot_for(s, keys)
            target = f"{section}-{key}" if key else section
            name += f" <a href='#{esc(target)}'>{'plot' if key else 'test'}</a>"
        out.append(
            f"<tr{bad}><td>{name}</td><td>{esc(num(s.observed))}</td><td>{esc(expected)}</td>"
            f"<td>{'yes' if s.passed else 'NO'}</td><td class='mono'>{esc(s.query)}{message}</td></tr>"
        )
    out.append("</table>")
    return out


def _bottleneck(b: Bottleneck, title: str) -> list[str]:
    """The verdict as a sentence with its numbers, and the ranked saturation signals behind it."""
    out = [
        f"<h3>{esc(title)}: {esc(b.verdict)}</h3><p>{esc(b.sentence)}</p>",
        "<table><tr><th>#</th><th>component</th><th>signal</th><th>observed</th><th>capacity</th>"
        "<th>utilization</th><th>saturated at</th><th>saturated</th><th>detail</th><th>query</th></tr>",
    ]
    for rank, sig in enumerate(b.signals, 1):
        bad = " class='bad'" if sig.saturated else ""
        observed = "no data" if sig.observed is None else f"{num(sig.observed)} {sig.unit}"
        capacity = "-" if sig.capacity is None else f"{num(sig.capacity)} {sig.unit}"
        utilization = "-" if sig.utilization is None else f"{sig.utilization:.0%}"
        threshold = "-" if sig.threshold is None else num(sig.threshold)
        out.append(
            f"<tr{bad}><td>{rank}</td><td>{esc(sig.component)}</td><td>{esc(sig.signal)}</td><td>{esc(observed)}</td>"
            f"<td>{esc(capacity)}</td><td>{esc(utilization)}</td><td>{esc(threshold)}</td>"
            f"<td>{'YES' if sig.saturated else 'no'}</td><td>{esc(sig.detail)}</td>"
            f"<td class='mono'>{esc(sig.query)}</td></tr>"
        )
    out.append("</table>")
    return out


def _ci(value: float | None, ci: tuple[float, float] | None, digits: int = 4) -> tuple[str, str]:
    shown = "-" if value is None else num(float(value), digits)
    return shown, "-" if ci is None else f"{num(float(ci[0]), digits)} - {num(float(ci[1]), digits)}"


def _fit_table(fit: UslFit) -> list[str]:
    lam = _ci(fit.lam, fit.lam_ci)
    rows = [
        ("λ (orders/s at N=1)", lam[0] + (" (fixed to X(1))" if fit.lam_fixed else ""), lam[1]),
        ("σ (contention)", *_ci(fit.sigma, fit.sigma_ci, 3)),
        ("κ (coherency)", *_ci(fit.kappa, fit.kappa_ci, 3)),
        ("N* = √((1-σ)/κ)", *_ci(fit.n_star, fit.n_star_ci, 3)),
        ("X_max = X(N*)", *_ci(fit.x_max, fit.x_max_ci)),
        ("R²", num(fit.r_squared, 3) if fit.r_squared is not None else "-", ""),
    ]
    out = ["<table><tr><th>parameter</th><th>value</th><th>95% confidence interval</th></tr>"]
    out += [f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in rows]
    out.append("</table>")
    return out


def _sweep(sweep: SweepResult, figure: str) -> list[str]:
    """The scaling sweep: its sentence, the USL figure and fit, the points, and the knee's bottleneck."""
    out = ["<h3>Scaling sweep</h3>"]
    if sweep.sentence:
        out.append(f"<p><b>{esc(sweep.sentence)}</b></p>")
    criteria = ", ".join(f"{k}={num(v)}" for k, v in sweep.criteria.items())
    out.append(
        f"<p class='note'>took {num(sweep.took_s)} s of a {num(sweep.budget_s)} s budget"
        + (f"; sustainable means {esc(criteria)}" if criteria else "")
        + (f"; knee at N={sweep.knee}" if sweep.knee is not None else "")
        + "</p>"
    )
    out.append(figure)
    if sweep.fit is not None:
        out.extend(_fit_table(sweep.fit))
    else:
        out.append("<p class='note'>no USL fit</p>")
    out.append(
        "<table><tr><th>backends</th><th>highest sustainable rate /s</th><th>throughput /s</th>"
        "<th>probes (sustainable)</th><th>search</th><th>deploy s</th></tr>"
    )
    for p in sweep.points:
        rate = "none" if p.max_rate is None else f"{p.max_rate:,.0f}"
        throughput = "-" if p.throughput is None else f"{p.throughput:,.0f}"
        knee = " class='bad'" if sweep.knee == p.backends else ""
        out.append(
            f"<tr{knee}><td>{p.backends}</td><td>{rate}</td><td>{throughput}</td>"
            f"<td>{len(p.probes)} ({sum(q.sustainable for q in p.probes)})</td>"
            f"<td>{'stopped on the time budget' if p.budget_exhausted else 'converged'}</td>"
            f"<td>{num(p.deploy_s)}</td></tr>"
        )
    out.append("</table>")
    for p in sweep.points:
        if p.probes:
            out.append(f"<details><summary>probes at N={p.backends}</summary>")
            out.append(
                "<table><tr><th>offered /s</th><th>achieved /s</th><th>ratio</th><th>client p99 ms</th>"
                "<th>valid</th><th>sustainable</th><th>why not</th></tr>"
            )
            for q in p.probes:
                bad = "" if q.sustainable else " class='bad'"
                out.append(
                    f"<tr{bad}><td>{q.offered_rate:,.0f}</td><td>{q.achieved_rate:,.0f}</td>"
                    f"<td>{num(q.throughput_ratio, 3)}</td><td>{num(q.client_p99_ms)}</td>"
                    f"<td>{'yes' if q.valid else 'NO'}</td><td>{'yes' if q.sustainable else 'no'}</td>"
                    f"<td>{esc('; '.join(q.reasons))}</td></tr>"
                )
            out.append("</table>")
            if p.bottleneck is not None:
                out.extend(_bottleneck(p.bottleneck, f"Bottleneck at N={p.backends}"))
            out.append("</details>")
    if sweep.bottleneck is not None:
        out.extend(_bottleneck(sweep.bottleneck, "Bottleneck at the knee"))
    return out


def _loads(loads: Sequence[LoadSummary]) -> list[str]:
    out = [
        "<table><tr><th>load</th><th>mode</th><th>offered/s</th><th>achieved/s</th><th>ok</th><th>errors</th>"
        "<th>p50 ms</th><th>p99 ms</th><th>unanswered</th><th>mix</th><th>generator CPU</th><th>run</th></tr>"
    ]
    for run in loads:
        lat = run.latency_ms
        validity = "valid" if run.valid else "INVALID: " + "; ".join(run.invalid_reasons)
        mix = ", ".join(f"{a} {share:.0%}" for a, share in run.mix.items())
        out.append(
            f"<tr{'' if run.valid else ' class=bad'}><td>{esc(run.name)}</td><td>{esc(run.mode)}</td>"
            f"<td>{num(run.offered_rate)}</td><td>{num(run.achieved_rate)}</td><td>{esc(run.ok)}</td>"
            f"<td>{esc(run.errors)}</td><td>{num(lat.get('p50'))}</td><td>{num(lat.get('p99'))}</td>"
            f"<td>{esc(run.unanswered)}</td><td>{esc(mix)}</td><td>{num(run.cpu.get('utilization'), 2)}</td>"
            f"<td>{esc(validity)}</td></tr>"
        )
    out.append("</table>")
    return out


def _chaos(chaos: Sequence[ChaosRecord]) -> list[str]:
    out = [
        "<table><tr><th>chaos</th><th>kind</th><th>action</th><th>window</th><th>targets</th>"
        "<th>intensity, Prometheus (observed / expected)</th><th>driver's own reading</th><th>reached</th></tr>"
    ]
    for c in chaos:
        window = c.window
        judged = "; ".join(f"{num(i.observed, 3)} / {num(i.expected, 3)} {i.unit}" for i in c.intensity)
        cross = "; ".join(
            f"{num(i.observed, 3)} / {num(i.expected, 3)} {i.unit}" for i in c.intensity_cross_check
        )
        bad = " class='bad'" if c.intensity_reached is False else ""
        out.append(
            f"<tr{bad}><td>{esc(c.experiment)}</td><td>{esc(c.kind)}</td>"
            f"<td>{esc(c.action)}{' (dry run)' if c.dry_run else ''}</td>"
            f"<td>{esc(_time(window.start if window else None))} - {esc(_time(window.end if window else None))}</td>"
            f"<td class='mono'>{esc(', '.join(c.containers))}</td><td>{esc(judged)}</td><td>{esc(cross)}</td>"
            f"<td>{_reached(c.intensity_reached)}</td></tr>"
        )
    out.append("</table>")
    return out


def _plots(test: TestRecord) -> tuple[list[plots.Plot], str]:
    """The test's figures; a record the plots cannot draw costs its figures, never the report."""
    try:
        return plots.record_plots(test), ""
    except Exception as exc:  # the report must be written whatever one record holds
        return [], f"the plots of this test failed: {type(exc).__name__}: {exc}"


def _usl(sweep: SweepResult) -> plots.Plot:
    try:
        return plots.usl_plot(sweep)
    except Exception as exc:
        return plots.Plot("usl", "Scaling", None, (f"the USL plot failed: {type(exc).__name__}: {exc}",))


def _test(test: TestRecord, ident: str, report_dir: pathlib.Path | None) -> list[str]:
    window = test.window
    figures, failure = _plots(test)
    usl = _usl(test.sweep) if test.sweep is not None else None
    keys = [p.key for p in figures] + ([usl.key] if usl else [])
    out = [
        f"<section id='{ident}'>",
        f"<h2 class='{esc(test.outcome)}'>{esc(test.outcome.upper())} {esc(test.nodeid)}</h2>",
        f"<p>window {esc(_time(window.start if window else None))} - {esc(_time(window.end if window else None))} "
        f"({num(window.seconds if window else None)} s), test took {num(test.duration)} s"
        + (
            f"; accepted {num(test.rates.get('orders_per_s'))} orders/s, {num(test.rates.get('fills_per_s'))} "
            "fills/s (Prometheus)"
            if test.rates
            else ""
        )
        + "</p>",
    ]
    if test.slos:
        out.extend(_slos(test.slos, ident, keys))
    if test.bottleneck is not None:
        out.extend(_bottleneck(test.bottleneck, "Bottleneck"))
    if test.sweep is not None and usl is not None:
        out.extend(_sweep(test.sweep, embed(usl, ident)))
    out.extend(embed(p, ident) for p in figures)
    if failure:
        out.append(f"<p class='note bad'>{esc(failure)}</p>")
    elif not figures and test.sweep is None:
        out.append("<p class='note'>no plots: this test drove no load and recorded no series</p>")
    if test.loads:
        out.extend(_loads(test.loads))
    if test.chaos:
        out.extend(_chaos(test.chaos))
    if test.bundle:
        out.append(
            f"<p>failure bundle: <a href='{esc(_rel(test.bundle, report_dir))}'>{esc(test.bundle)}</a></p>"
        )
    if test.longrepr:
        out.append(f"<pre class='mono'>{esc(test.longrepr[-4000:])}</pre>")
    out.append("</section>")
    return out


def _rel(path: str, report_dir: pathlib.Path | None) -> str:
    if report_dir is None:
        return path
    try:
        return os.path.relpath(path, report_dir)
    except ValueError:
        return path


def write(report: SessionReport, directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.html"
    path.write_text(render(report, report_dir=directory))
    return path
