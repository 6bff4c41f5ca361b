"""Render a :class:`~pytest_hftk8s.results.SessionReport` as one self-contained ``index.html`` (inline
CSS, no scripts, no external assets), readable from the file system without a server. Every value
is escaped. Pure rendering from typed records; the only I/O is writing the file.

The figures come from :mod:`~pytest_hftk8s.report.plots` as SVG and are embedded as data URIs
(``<img src="data:image/svg+xml;base64,...">``): each is its own document, so the ids matplotlib
writes cannot clash across figures, and the page reads offline or as a CI artifact. Every test has
a stable anchor made from its node id (:func:`anchor`) and every figure one below it
(``<anchor>-<key>``); a missed SLO's row links to the figure that shows it, and :func:`slo_link`
gives the same link to whoever writes the failure message.

A run compared with a baseline (``--hft-compare``) opens with that comparison: both runs' identity,
the overall verdict, a verdict table per measure, and for each regression its two distributions
overlaid (anchored by :func:`compare_anchor`). A run with repeats shows how far they spread.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import os
import pathlib
from collections.abc import Sequence
from typing import Any

from pytest_hftk8s.report import plots
from pytest_hftk8s.results import (
    Bottleneck,
    ChaosRecord,
    Comparison,
    DigestRow,
    LoadSummary,
    MeasureComparison,
    OomSequence,
    Recovery,
    ResilienceScore,
    RunIdentity,
    SessionReport,
    SloResult,
    SweepResult,
    TestRecord,
    UslFit,
)

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.passed{color:#137333}.failed,.error{color:#b3261e}.skipped{color:#777}
.bad{background:#fdecea}.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
figure{margin:1em 0}figure img{width:100%;max-width:960px;height:auto;display:block}
figcaption,.note{color:#555;font-size:12px}.score{font-size:2em;font-weight:600}
h3{font-size:1em;margin:1.2em 0 .3em}section{border-top:2px solid #eee;margin-top:2em}
.warn{border:2px solid #e8a317;background:#fff4e0;border-radius:6px;padding:.4em 1em;margin:1em 0}
.v-regressed{color:#fff;background:#b3261e;font-weight:600}.v-known{color:#5c3b00;background:#fbd38d}
.v-improved{color:#fff;background:#137333;font-weight:600}.v-unchanged{color:#666;background:#eee}
.v-inconclusive{color:#333;background:#fff}.tag{border:1px solid currentColor;border-radius:3px;padding:0 3px;
font-size:11px;margin-left:4px}.verdict{font-size:1.2em}.v-regressed a{color:#fff}.nw{white-space:nowrap}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_num(v, digits)}" for k, v in value.items())
    return "no data" if value is None else str(value)


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
        f"<tr><th>cluster</th><td>{_e(report.cluster)}</td></tr>",
        f"<tr><th>profile</th><td>{_e(report.profile)}</td></tr>",
        f"<tr><th>platform ready after</th><td>{_num(platform.ready_seconds if platform else None)} s</td></tr>",
        f"<tr><th>gates</th><td>{_e(_num(platform.gates if platform else {}))}</td></tr>",
        f"<tr><th>offered rate</th><td>{_e(_capacity(report))}</td></tr>",
        f"<tr><th>tests</th><td>{_e(totals.tests)} {_e(totals.outcomes)}</td></tr>",
        f"<tr><th>SLOs</th><td>{_e(totals.slos)} evaluated, {_e(totals.slos_failed)} missed</td></tr>",
    ]
    if report.identity is not None:
        out.append(f"<tr><th>run</th><td>{_e(_identity(report.identity))}</td></tr>")
    if report.repeat > 1:
        out.append(f"<tr><th>repeats</th><td><a href='#repeats'>{report.repeat} per test</a></td></tr>")
    out.append("</table></div>")
    if report.comparison is not None:
        out.extend(_comparison(report.comparison, report.tests))
    out.extend(_contents(report.tests))
    out.extend(_score(report.score))
    out.extend(_resilience(report.resilience))
    out.extend(_repeats(report))
    for test, ident in zip(report.tests, _anchors(report.tests), strict=True):
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
        notes = ", ".join(f"{k}={_num(v)}" for k, v in r.figures.items())
        if r.oom_then_crashloop:
            notes = f"OOMKilled then CrashLoopBackOff; {notes}".rstrip("; ")
        bad = "" if r.outcome == "passed" else " class='bad'"
        out.append(
            f"<tr{bad}><td>{_e(r.experiment)}</td><td>{_e(r.outcome)}</td>"
            f"<td>{_reached(r.intensity_reached)}</td><td>{_num(r.recovery_s) if r.recovery_s is not None else '-'}</td>"
            f"<td>{_e(counts)}</td><td>{_e(fills)}</td><td>{_e(throughput)}</td><td>{_e(notes)}</td></tr>"
        )
    out.append("</table>")
    return out


def anchor(nodeid: str) -> str:
    """The id of a test's section in ``index.html``: readable, stable across runs, unique per node id."""
    readable = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in nodeid.split("/")[-1]
    )
    return f"t-{readable[:60].strip('-')}-{hashlib.sha1(nodeid.encode()).hexdigest()[:6]}"


def slo_link(test: TestRecord, slo: SloResult) -> str:
    """``#<anchor>`` of the figure that shows ``slo``'s measurement (or of the test's section), to
    append to the report's path in a failure message."""
    key = _plot_for(slo, plots.plot_keys(test) + (["usl"] if test.sweep is not None else []))
    return f"#{anchor(test.nodeid)}" + (f"-{key}" if key else "")


def _anchors(tests: Sequence[TestRecord]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for t in tests:
        ident = anchor(t.nodeid)
        seen[ident] = seen.get(ident, 0) + 1
        out.append(ident if seen[ident] == 1 else f"{ident}-{seen[ident]}")  # the same node id twice
    return out


def _contents(tests: Sequence[TestRecord]) -> list[str]:
    if not tests:
        return []
    items = "".join(
        f"<li><a href='#{ident}'>{_e(t.nodeid)}</a> <span class='{_e(t.outcome)}'>{_e(t.outcome)}</span></li>"
        for t, ident in zip(tests, _anchors(tests), strict=True)
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
    out.append(f"<p>{_e(method)}</p>")
    if total:
        out.append(
            f"<p class='mono'>= {_num(got)} / {_num(total)} x 100 = {100 * got / total:.1f} "
            f"({sum(i.passed for i in score.items)} of {len(score.items)} checks held)</p>"
        )
    if score.weights:
        out.append("<table><tr><th>severity</th><th>weight</th><th>checks</th><th>held</th></tr>")
        for severity, weight in score.weights.items():
            mine = [i for i in score.items if i.severity == severity]
            out.append(
                f"<tr><td>{_e(severity)}</td><td>{_num(weight)}</td><td>{len(mine)}</td>"
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
                f"<tr{bad}><td title='{_e(i.test)}'>{_e(i.test.split('::')[-1])}</td>"
                f"<td>{_e(i.experiment)}</td><td>{_e(i.slo)}</td>"
                f"<td>{_e(i.severity)}</td><td>{_num(i.weight)}</td><td>{'yes' if i.passed else 'NO'}</td>"
                f"<td>{_num(i.weight if i.passed else 0.0)} / {_num(i.weight)}</td></tr>"
            )
        out.append("</table>")
    out.append("</div>")
    return out


def _identity(run: RunIdentity) -> str:
    """``<commit> (dirty), <date> UTC, on <host> (<CPU model>, <cores> cores)``: what tells two runs apart."""
    parts = [(run.commit[:10] + (" (dirty)" if run.dirty else "")) if run.commit else "no git commit"]
    if run.started:
        parts.append(
            datetime.datetime.fromtimestamp(run.started, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
    machine = ", ".join(x for x in (run.cpu_model, f"{run.cores} cores" if run.cores else "") if x)
    if run.machine or machine:
        parts.append(f"on {run.machine or 'an unnamed machine'}" + (f" ({machine})" if machine else ""))
    return ", ".join(parts)


def compare_anchor(m: MeasureComparison) -> str:
    """The id of a compared measure's row in ``index.html``; its overlay figure is ``<id>-compare``."""
    readable = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in m.key.split("/")[-1])
    return f"c-{readable[:60].strip('-')}-{hashlib.sha1(m.key.encode()).hexdigest()[:6]}"


_BAD = " class='bad'"
# The verdict table's order: what needs a look first.
_VERDICT_ORDER = {"regressed": 0, "known": 1, "inconclusive": 2, "improved": 3, "unchanged": 4}


def _verdict(m: MeasureComparison) -> str:
    return "known" if m.verdict == "regressed" and m.known else m.verdict


def _counts(measures: Sequence[MeasureComparison]) -> str:
    """``1 new regression, 1 known regression, 3 improved, 10 unchanged, 4 inconclusive``."""
    n = {v: sum(_verdict(m) == v for m in measures) for v in _VERDICT_ORDER}
    other = len(measures) - sum(n.values())
    parts = [
        f"{n['regressed']} new regression{'s' * (n['regressed'] != 1)}",
        f"{n['known']} known regression{'s' * (n['known'] != 1)}",
        f"{n['improved']} improved",
        f"{n['unchanged']} unchanged",
        f"{n['inconclusive']} inconclusive",
    ]
    return ", ".join(parts + ([f"{other} other"] if other else []))


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def _effect(m: MeasureComparison) -> str:
    if m.effect is None:
        return "-"
    return _pct(m.effect) + (f" [{_pct(m.ci[0])}, {_pct(m.ci[1])}]" if m.ci is not None else "")


def _min_effect(m: MeasureComparison, default: float) -> str:
    """The smallest change that counted: the minimum effect, or the baseline's noise where it was wider."""
    used = max(m.min_effect, m.noise or 0.0)
    if m.noise is not None and m.noise > default and m.noise >= used:
        return f"±{used:.1%} <span class='note'>(the baseline's noise; default ±{default:.1%})</span>"
    noise = f" <span class='note'>(noise {m.noise:.1%})</span>" if m.noise is not None else ""
    return f"±{used:.1%}{noise}"


def _comparison(c: Comparison, tests: Sequence[TestRecord]) -> list[str]:
    """The run against its baseline: identities, the verdict line, the table, the regressions' figures."""
    where = f" <span class='note mono'>{_e(c.baseline.path)}</span>" if c.baseline.path else ""
    fail = (
        "on: a new regression fails the session"
        if c.fail_on_regression
        else "off: regressions are reported, the session does not fail on them"
    )
    out = [
        f"<div id='compare'><h2>Compared with {_e(_identity(c.baseline))}</h2>",
        f"<p>baseline read from{where or ' -'}<br>this run: {_e(_identity(c.current))}</p>",
        f"<p class='verdict'><b class='v-{_e(c.verdict)}'>&nbsp;{_e(c.verdict.upper())}&nbsp;</b> "
        f"{_e(_counts(c.measures))}</p>",
        f"<p class='note'>--hft-fail-on-regression {fail}. A change counts when its whole "
        f"{c.confidence:.0%} confidence interval lies beyond the minimum effect (±{c.min_effect:.1%}, or the "
        f"baseline's repeat-to-repeat noise where wider)"
        + (f"; {c.resamples} bootstrap resamples" if c.resamples else "")
        + ".</p>",
    ]
    if c.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in c.warnings)
        out.append(f"<div class='warn'><b>Read this comparison with care:</b><ul>{items}</ul></div>")
    if not c.measures:
        out.append("<p class='note'>no measure was compared</p></div>")
        return out
    sections = _case_anchors(tests)
    ranked = sorted(c.measures, key=lambda m: _VERDICT_ORDER.get(_verdict(m), 5))
    idents = _unique([compare_anchor(m) for m in ranked])
    out.append(
        "<table><tr><th>test</th><th>load run</th><th>measure</th><th>baseline</th><th>current</th>"
        "<th>effect [CI]</th><th>min effect</th><th>p</th><th>samples (repeats)</th><th>verdict</th>"
        "<th>why</th></tr>"
    )
    figures: list[str] = []
    for m, ident in zip(ranked, idents, strict=True):
        verdict = _verdict(m)
        test = _e(m.test.split("::")[-1])
        if m.test in sections:
            test = f"<a href='#{sections[m.test]}'>{test}</a>"
        label = {"regressed": "REGRESSED", "known": "regressed<span class='tag'>known</span>"}.get(
            verdict, _e(verdict)
        )
        if m.verdict == "regressed":
            label += f" <a href='#{ident}-compare'>plot</a>"
            figures.append(_figure(_overlay(m), ident))
        repeats = (
            f" ({m.repeats_baseline} / {m.repeats_current})"
            if m.repeats_baseline or m.repeats_current
            else ""
        )
        method = f"<br><span class='note'>{_e(m.method)}</span>" if m.method else ""
        out.append(
            f"<tr id='{ident}'{_BAD if verdict == 'regressed' else ''}><td title='{_e(m.test)}'>{test}</td>"
            f"<td>{_e(m.load or '-')}</td><td>{_e(m.measure)} <span class='note'>({_e(m.better)} is better)"
            f"</span></td><td>{_e(_num(m.baseline))} {_e(m.unit)}</td><td>{_e(_num(m.current))} {_e(m.unit)}</td>"
            f"<td class='nw'>{_e(_effect(m))}</td><td>{_min_effect(m, c.min_effect)}</td>"
            f"<td>{'-' if m.p_value is None else f'{m.p_value:.2g}'}</td>"
            f"<td>{m.n_baseline} / {m.n_current}{repeats}</td><td class='v-{_e(verdict)}'>{label}</td>"
            f"<td>{_e(m.reason)}{method}</td></tr>"
        )
    out.append("</table>")
    if figures:
        out.append("<h3>Regressions: baseline and current distributions</h3>")
        out.extend(figures)
    out.append("</div>")
    return out


def _case_anchors(tests: Sequence[TestRecord]) -> dict[str, str]:
    """Each case's first section (its repeats share the case id)."""
    out: dict[str, str] = {}
    for t, ident in zip(tests, _anchors(tests), strict=True):
        out.setdefault(t.case_id, ident)
    return out


def _unique(idents: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for ident in idents:
        seen[ident] = seen.get(ident, 0) + 1
        out.append(ident if seen[ident] == 1 else f"{ident}-{seen[ident]}")
    return out


def _overlay(m: MeasureComparison) -> plots.Plot:
    try:
        return plots.comparison_plot(m)
    except Exception as exc:  # one odd measure costs its figure, never the report
        return plots.Plot("compare", m.key, None, (f"the overlay failed: {type(exc).__name__}: {exc}",))


def _spread(values: Sequence[float | None]) -> float | None:
    """(max - min) / mean of the repeats' values; ``None`` with fewer than two or a zero mean."""
    seen = [v for v in values if v is not None and v == v]  # v == v: not nan
    mean = sum(seen) / len(seen) if seen else 0.0
    return (max(seen) - min(seen)) / mean if len(seen) > 1 and mean else None


def _repeats(report: SessionReport) -> list[str]:
    """Each case's load runs across its repeats: achieved rate and client p99 per repeat, and their
    relative range, the noise a later comparison against this run will allow for."""
    if report.repeat <= 1:
        return []
    cases: dict[str, dict[int, TestRecord]] = {}
    for t in report.tests:
        cases.setdefault(t.case_id, {})[t.repeat] = t
    first = _case_anchors(report.tests)
    n = max([report.repeat, *(r for by in cases.values() for r in by)])
    limit = report.comparison.min_effect if report.comparison is not None else 0.05
    heads = "".join(f"<th>#{i}</th>" for i in range(1, n + 1))
    out = [
        f"<h2 id='repeats'>Repeats</h2><p class='note'>{report.repeat} repeats of each test. A spread "
        f"(max - min) / mean above {limit:.0%} (highlighted) widens that measure's minimum effect when a "
        "later run is compared with this one.</p>",
        f"<table><tr><th>test</th><th>load run</th><th>measure</th>{heads}<th>spread</th></tr>",
    ]
    rows = 0
    for case, by_repeat in cases.items():
        names = list(dict.fromkeys(run.name for t in by_repeat.values() for run in t.loads))
        for name in names:
            runs = [by_repeat[i].load(name) if i in by_repeat else None for i in range(1, n + 1)]
            for measure, get in (
                ("achieved /s", lambda s: s.achieved_rate),
                ("client p99 ms", lambda s: s.latency_ms.get("p99")),
            ):
                values = [get(run) if run is not None else None for run in runs]
                spread = _spread(values)
                cells = "".join(f"<td>{'-' if v is None else _e(_num(float(v)))}</td>" for v in values)
                wide = spread is not None and spread > limit
                out.append(
                    f"<tr><td title='{_e(case)}'><a href='#{first[case]}'>{_e(case.split('::')[-1])}</a></td>"
                    f"<td>{_e(name)}</td><td>{measure}</td>{cells}"
                    f"<td{_BAD if wide else ''}>{'-' if spread is None else f'{spread:.1%}'}</td></tr>"
                )
                rows += 1
    out.append("</table>")
    if not rows:
        return [out[0], "<p class='note'>no load runs were repeated</p>"]
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
        expected = f"{s.comparator} {_num(s.threshold)} {s.unit}"
        message = "<br>" + _e(s.message) if s.message else ""
        name = _e(s.name)
        if not s.passed:
            key = _plot_for(s, keys)
            target = f"{section}-{key}" if key else section
            name += f" <a href='#{_e(target)}'>{'plot' if key else 'test'}</a>"
        out.append(
            f"<tr{bad}><td>{name}</td><td>{_e(_num(s.observed))}</td><td>{_e(expected)}</td>"
            f"<td>{'yes' if s.passed else 'NO'}</td><td class='mono'>{_e(s.query)}{message}</td></tr>"
        )
    out.append("</table>")
    return out


def _figure(plot: plots.Plot, section: str) -> str:
    ident = f"{section}-{plot.key}"
    notes = "; ".join(plot.notes)
    if plot.svg is None:
        return f"<figure id='{_e(ident)}' class='empty'><p class='note'><b>{_e(plot.title)}</b>: {_e(notes)}</p></figure>"
    data = base64.b64encode(plot.svg.encode()).decode("ascii")
    caption = _e(plot.title) + (f" <span class='note'>({_e(notes)})</span>" if notes else "")
    return (
        f"<figure id='{_e(ident)}'><img src='data:image/svg+xml;base64,{data}' alt='{_e(plot.title)}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _bottleneck(b: Bottleneck, title: str) -> list[str]:
    """The verdict as a sentence with its numbers, and the ranked saturation signals behind it."""
    out = [
        f"<h3>{_e(title)}: {_e(b.verdict)}</h3><p>{_e(b.sentence)}</p>",
        "<table><tr><th>#</th><th>component</th><th>signal</th><th>observed</th><th>capacity</th>"
        "<th>utilization</th><th>saturated at</th><th>saturated</th><th>detail</th><th>query</th></tr>",
    ]
    for rank, sig in enumerate(b.signals, 1):
        bad = " class='bad'" if sig.saturated else ""
        observed = "no data" if sig.observed is None else f"{_num(sig.observed)} {sig.unit}"
        capacity = "-" if sig.capacity is None else f"{_num(sig.capacity)} {sig.unit}"
        utilization = "-" if sig.utilization is None else f"{sig.utilization:.0%}"
        threshold = "-" if sig.threshold is None else _num(sig.threshold)
        out.append(
            f"<tr{bad}><td>{rank}</td><td>{_e(sig.component)}</td><td>{_e(sig.signal)}</td><td>{_e(observed)}</td>"
            f"<td>{_e(capacity)}</td><td>{_e(utilization)}</td><td>{_e(threshold)}</td>"
            f"<td>{'YES' if sig.saturated else 'no'}</td><td>{_e(sig.detail)}</td>"
            f"<td class='mono'>{_e(sig.query)}</td></tr>"
        )
    out.append("</table>")
    return out


def _ci(value: float | None, ci: tuple[float, float] | None, digits: int = 4) -> tuple[str, str]:
    shown = "-" if value is None else _num(float(value), digits)
    return shown, "-" if ci is None else f"{_num(float(ci[0]), digits)} - {_num(float(ci[1]), digits)}"


def _fit_table(fit: UslFit) -> list[str]:
    lam = _ci(fit.lam, fit.lam_ci)
    rows = [
        ("λ (orders/s at N=1)", lam[0] + (" (fixed to X(1))" if fit.lam_fixed else ""), lam[1]),
        ("σ (contention)", *_ci(fit.sigma, fit.sigma_ci, 3)),
        ("κ (coherency)", *_ci(fit.kappa, fit.kappa_ci, 3)),
        ("N* = √((1-σ)/κ)", *_ci(fit.n_star, fit.n_star_ci, 3)),
        ("X_max = X(N*)", *_ci(fit.x_max, fit.x_max_ci)),
        ("R²", _num(fit.r_squared, 3) if fit.r_squared is not None else "-", ""),
    ]
    out = ["<table><tr><th>parameter</th><th>value</th><th>95% confidence interval</th></tr>"]
    out += [f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(c)}</td></tr>" for a, b, c in rows]
    out.append("</table>")
    return out


def _sweep(sweep: SweepResult, figure: str) -> list[str]:
    """The scaling sweep: its sentence, the USL figure and fit, the points, and the knee's bottleneck."""
    out = ["<h3>Scaling sweep</h3>"]
    if sweep.sentence:
        out.append(f"<p><b>{_e(sweep.sentence)}</b></p>")
    criteria = ", ".join(f"{k}={_num(v)}" for k, v in sweep.criteria.items())
    out.append(
        f"<p class='note'>took {_num(sweep.took_s)} s of a {_num(sweep.budget_s)} s budget"
        + (f"; sustainable means {_e(criteria)}" if criteria else "")
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
            f"<td>{_num(p.deploy_s)}</td></tr>"
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
                    f"<td>{_num(q.throughput_ratio, 3)}</td><td>{_num(q.client_p99_ms)}</td>"
                    f"<td>{'yes' if q.valid else 'NO'}</td><td>{'yes' if q.sustainable else 'no'}</td>"
                    f"<td>{_e('; '.join(q.reasons))}</td></tr>"
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
            f"<tr{'' if run.valid else ' class=bad'}><td>{_e(run.name)}</td><td>{_e(run.mode)}</td>"
            f"<td>{_num(run.offered_rate)}</td><td>{_num(run.achieved_rate)}</td><td>{_e(run.ok)}</td>"
            f"<td>{_e(run.errors)}</td><td>{_num(lat.get('p50'))}</td><td>{_num(lat.get('p99'))}</td>"
            f"<td>{_e(run.unanswered)}</td><td>{_e(mix)}</td><td>{_num(run.cpu.get('utilization'), 2)}</td>"
            f"<td>{_e(validity)}</td></tr>"
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
        judged = "; ".join(f"{_num(i.observed, 3)} / {_num(i.expected, 3)} {i.unit}" for i in c.intensity)
        cross = "; ".join(
            f"{_num(i.observed, 3)} / {_num(i.expected, 3)} {i.unit}" for i in c.intensity_cross_check
        )
        bad = " class='bad'" if c.intensity_reached is False else ""
        out.append(
            f"<tr{bad}><td>{_e(c.experiment)}</td><td>{_e(c.kind)}</td>"
            f"<td>{_e(c.action)}{' (dry run)' if c.dry_run else ''}</td>"
            f"<td>{_e(_time(window.start if window else None))} - {_e(_time(window.end if window else None))}</td>"
            f"<td class='mono'>{_e(', '.join(c.containers))}</td><td>{_e(judged)}</td><td>{_e(cross)}</td>"
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
        f"<h2 class='{_e(test.outcome)}'>{_e(test.outcome.upper())} {_e(test.nodeid)}</h2>",
        f"<p>window {_e(_time(window.start if window else None))} - {_e(_time(window.end if window else None))} "
        f"({_num(window.seconds if window else None)} s), test took {_num(test.duration)} s"
        + (
            f"; accepted {_num(test.rates.get('orders_per_s'))} orders/s, {_num(test.rates.get('fills_per_s'))} "
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
        out.extend(_sweep(test.sweep, _figure(usl, ident)))
    out.extend(_figure(p, ident) for p in figures)
    if failure:
        out.append(f"<p class='note bad'>{_e(failure)}</p>")
    elif not figures and test.sweep is None:
        out.append("<p class='note'>no plots: this test drove no load and recorded no series</p>")
    if test.loads:
        out.extend(_loads(test.loads))
    if test.chaos:
        out.extend(_chaos(test.chaos))
    if test.bundle:
        out.append(
            f"<p>failure bundle: <a href='{_e(_rel(test.bundle, report_dir))}'>{_e(test.bundle)}</a></p>"
        )
    if test.longrepr:
        out.append(f"<pre class='mono'>{_e(test.longrepr[-4000:])}</pre>")
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
