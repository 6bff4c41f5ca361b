"""The Compared-with section, the repeats table and the overlay figures of ``index.html``.

A run compared with a baseline (``--hft-compare``) opens with that comparison
(:func:`comparison_section`): both runs' identity, the overall verdict, a verdict table per measure,
and for each regression its two distributions overlaid (:func:`comparison_plot`, anchored by
:func:`compare_anchor`). A run with repeats (``--hft-repeat``) shows how far they spread
(:func:`repeats_table`), the noise a later comparison against it will allow for.

Pure rendering from typed records: it reads :mod:`pytest_hftk8s.results` only and judges nothing
(the verdicts arrive made, from ``slo/compare.py``). The page around it is
:mod:`~pytest_hftk8s.report.html`'s.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from collections.abc import Sequence

from pytest_hftk8s.report.canvas import Plot, Values, figure, finite, has_data, legend, to_svg
from pytest_hftk8s.report.markup import anchors, embed, esc, num, unique
from pytest_hftk8s.results import Comparison, MeasureComparison, RunIdentity, SessionReport, TestRecord

__all__ = ["CSS", "compare_anchor", "comparison_plot", "comparison_section", "identity", "repeats_table"]

# The verdicts' styles, appended to the page's stylesheet.
CSS = """\
.warn{border:2px solid #e8a317;background:#fff4e0;border-radius:6px;padding:.4em 1em;margin:1em 0}
.v-regressed{color:#fff;background:#b3261e;font-weight:600}.v-known{color:#5c3b00;background:#fbd38d}
.v-improved{color:#fff;background:#137333;font-weight:600}.v-unchanged{color:#666;background:#eee}
.v-inconclusive{color:#333;background:#fff}.tag{border:1px solid currentColor;border-radius:3px;padding:0 3px;
font-size:11px;margin-left:4px}.verdict{font-size:1.2em}.v-regressed a{color:#fff}.nw{white-space:nowrap}
"""


# -- the Compared-with section ---------------------------------------------------------------------


def identity(run: RunIdentity) -> str:
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


def comparison_section(c: Comparison, tests: Sequence[TestRecord]) -> list[str]:
    """The run against its baseline: identities, the verdict line, the table, the regressions' figures."""
    where = f" <span class='note mono'>{esc(c.baseline.path)}</span>" if c.baseline.path else ""
    fail = (
        "on: a new regression fails the session"
        if c.fail_on_regression
        else "off: regressions are reported, the session does not fail on them"
    )
    out = [
        f"<div id='compare'><h2>Compared with {esc(identity(c.baseline))}</h2>",
        f"<p>baseline read from{where or ' -'}<br>this run: {esc(identity(c.current))}</p>",
        f"<p class='verdict'><b class='v-{esc(c.verdict)}'>&nbsp;{esc(c.verdict.upper())}&nbsp;</b> "
        f"{esc(_counts(c.measures))}</p>",
        f"<p class='note'>--hft-fail-on-regression {fail}. A change counts when its whole "
        f"{c.confidence:.0%} confidence interval lies beyond the minimum effect (±{c.min_effect:.1%}, or the "
        f"baseline's repeat-to-repeat noise where wider)"
        + (f"; {c.resamples} bootstrap resamples" if c.resamples else "")
        + ".</p>",
    ]
    if c.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in c.warnings)
        out.append(f"<div class='warn'><b>Read this comparison with care:</b><ul>{items}</ul></div>")
    if not c.measures:
        out.append("<p class='note'>no measure was compared</p></div>")
        return out
    sections = _case_anchors(tests)
    ranked = sorted(c.measures, key=lambda m: _VERDICT_ORDER.get(_verdict(m), 5))
    idents = unique([compare_anchor(m) for m in ranked])
    out.append(
        "<table><tr><th>test</th><th>load run</th><th>measure</th><th>baseline</th><th>current</th>"
        "<th>effect [CI]</th><th>min effect</th><th>p</th><th>samples (repeats)</th><th>verdict</th>"
        "<th>why</th></tr>"
    )
    figures: list[str] = []
    for m, ident in zip(ranked, idents, strict=True):
        verdict = _verdict(m)
        test = esc(m.test.split("::")[-1])
        if m.test in sections:
            test = f"<a href='#{sections[m.test]}'>{test}</a>"
        label = {"regressed": "REGRESSED", "known": "regressed<span class='tag'>known</span>"}.get(
            verdict, esc(verdict)
        )
        if m.verdict == "regressed":
            label += f" <a href='#{ident}-compare'>plot</a>"
            figures.append(embed(_overlay(m), ident))
        repeats = (
            f" ({m.repeats_baseline} / {m.repeats_current})"
            if m.repeats_baseline or m.repeats_current
            else ""
        )
        method = f"<br><span class='note'>{esc(m.method)}</span>" if m.method else ""
        out.append(
            f"<tr id='{ident}'{_BAD if verdict == 'regressed' else ''}><td title='{esc(m.test)}'>{test}</td>"
            f"<td>{esc(m.load or '-')}</td><td>{esc(m.measure)} <span class='note'>({esc(m.better)} is better)"
            f"</span></td><td>{esc(num(m.baseline))} {esc(m.unit)}</td><td>{esc(num(m.current))} {esc(m.unit)}</td>"
            f"<td class='nw'>{esc(_effect(m))}</td><td>{_min_effect(m, c.min_effect)}</td>"
            f"<td>{'-' if m.p_value is None else f'{m.p_value:.2g}'}</td>"
            f"<td>{m.n_baseline} / {m.n_current}{repeats}</td><td class='v-{esc(verdict)}'>{label}</td>"
            f"<td>{esc(m.reason)}{method}</td></tr>"
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
    for t, ident in zip(tests, anchors(tests), strict=True):
        out.setdefault(t.case_id, ident)
    return out


def _overlay(m: MeasureComparison) -> Plot:
    try:
        return comparison_plot(m)
    except Exception as exc:  # one odd measure costs its figure, never the report
        return Plot("compare", m.key, None, (f"the overlay failed: {type(exc).__name__}: {exc}",))


# -- the repeats table -----------------------------------------------------------------------------


def _spread(values: Sequence[float | None]) -> float | None:
    """(max - min) / mean of the repeats' values; ``None`` with fewer than two or a zero mean."""
    seen = [v for v in values if v is not None and v == v]  # v == v: not nan
    mean = sum(seen) / len(seen) if seen else 0.0
    return (max(seen) - min(seen)) / mean if len(seen) > 1 and mean else None


def repeats_table(report: SessionReport) -> list[str]:
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
                cells = "".join(f"<td>{'-' if v is None else esc(num(float(v)))}</td>" for v in values)
                wide = spread is not None and spread > limit
                out.append(
                    f"<tr><td title='{esc(case)}'><a href='#{first[case]}'>{esc(case.split('::')[-1])}</a></td>"
                    f"<td>{esc(name)}</td><td>{measure}</td>{cells}"
                    f"<td{_BAD if wide else ''}>{'-' if spread is None else f'{spread:.1%}'}</td></tr>"
                )
                rows += 1
    out.append("</table>")
    if not rows:
        return [out[0], "<p class='note'>no load runs were repeated</p>"]
    return out


# -- the overlay figures ---------------------------------------------------------------------------

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
    base, cur = finite(base), finite(cur)
    missing = [who for who, v in (("baseline", base), ("current", cur)) if not v]
    if missing:
        return Plot("compare", title, None, (f"nothing to plot: no {' and no '.join(missing)} samples",))
    fig = figure(2.9, right=0.8, wspace=0.25)
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
    return Plot("compare", title, to_svg(fig, title), ())


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
    if not (has_data(base) and has_data(cur)):
        return Plot("compare", title, None, ("nothing to plot: no baseline or no current quantiles", *notes))
    x = [_nines(q) for q in grid]
    fig = figure(2.9, right=0.97)
    ax = fig.add_subplot()
    for values, color, who in ((base, _BASELINE_COLOR, "baseline"), (cur, _CURRENT_COLOR, "current")):
        ax.plot(x, values, color=color, lw=1.4, marker="o", ms=3, label=who, gid=f"{who}-quantiles")
    levels = [q for q in (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0) if min(grid) <= q <= max(grid)]
    ax.set_xticks([_nines(q) for q in levels], ["max" if q >= 100 else f"p{q:g}" for q in levels])
    ax.set_xlabel("quantile level (nines scale: p90, p99, p99.9 equally spaced)")
    ax.set_ylabel(m.measure + (f" ({m.unit})" if m.unit else ""))
    positive = [v for v in (*base, *cur) if math.isfinite(v) and v > 0]
    if positive and len(positive) == len(finite(base + cur)) and max(positive) / min(positive) > 20:
        ax.set_yscale("log")  # a tail many times the median would flatten the body of the curve
    ax.grid(True, lw=0.3, alpha=0.6)
    legend(ax, outside=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return Plot("compare", title, to_svg(fig, title), tuple(notes))
