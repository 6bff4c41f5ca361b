"""Render a :class:`~pytest_hftk8s.results.SessionReport` as one self-contained ``index.html`` (inline
CSS, no scripts, no external assets), readable from the file system without a server. Every value
is escaped. Pure rendering from typed records; the only I/O is writing the file.
"""

from __future__ import annotations

import datetime
import html
import os
import pathlib
from collections.abc import Sequence
from typing import Any

from pytest_hftk8s.results import ChaosRecord, DigestRow, LoadSummary, SessionReport, SloResult, TestRecord

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.passed{color:#137333}.failed,.error{color:#b3261e}.skipped{color:#777}
.bad{background:#fdecea}.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
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
        "</table></div>",
    ]
    out.extend(_resilience(report.resilience))
    for test in report.tests:
        out.extend(_test(test, report_dir))
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


def _slos(slos: Sequence[SloResult]) -> list[str]:
    out = ["<table><tr><th>SLO</th><th>observed</th><th>expected</th><th>held</th><th>query</th></tr>"]
    for s in slos:
        bad = "" if s.passed else " class='bad'"
        expected = f"{s.comparator} {_num(s.threshold)} {s.unit}"
        message = "<br>" + _e(s.message) if s.message else ""
        out.append(
            f"<tr{bad}><td>{_e(s.name)}</td><td>{_e(_num(s.observed))}</td><td>{_e(expected)}</td>"
            f"<td>{'yes' if s.passed else 'NO'}</td><td class='mono'>{_e(s.query)}{message}</td></tr>"
        )
    out.append("</table>")
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


def _test(test: TestRecord, report_dir: pathlib.Path | None) -> list[str]:
    window = test.window
    out = [
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
        out.extend(_slos(test.slos))
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
