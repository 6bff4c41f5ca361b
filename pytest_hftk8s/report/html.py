"""Render ``summary.json``'s content as one self-contained ``index.html`` (inline CSS, no scripts,
no external assets), readable from the file system without a server. Every value is escaped.
Pure rendering from a plain dict; the only I/O is writing the file.
"""

from __future__ import annotations

import datetime
import html
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

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


def render(summary: Mapping[str, Any], *, report_dir: pathlib.Path | None = None) -> str:
    totals = summary.get("totals", {})
    platform = summary.get("platform") or {}
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>pytest-hftk8s report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>pytest-hftk8s report</h1>",
        "<div class='card'><table>",
        f"<tr><th>cluster</th><td>{_e(summary.get('cluster'))}</td></tr>",
        f"<tr><th>profile</th><td>{_e(summary.get('profile'))}</td></tr>",
        f"<tr><th>platform ready after</th><td>{_num(platform.get('ready_seconds'))} s</td></tr>",
        f"<tr><th>gates</th><td>{_e(_num(platform.get('gates') or {}))}</td></tr>",
        f"<tr><th>tests</th><td>{_e(totals.get('tests'))} {_e(totals.get('outcomes'))}</td></tr>",
        f"<tr><th>SLOs</th><td>{_e(totals.get('slos'))} evaluated, {_e(totals.get('slos_failed'))} missed</td></tr>",
        "</table></div>",
    ]
    out.extend(_resilience(summary.get("resilience") or []))
    for test in summary.get("tests", []):
        out.extend(_test(test, report_dir))
    out.append("</body></html>")
    return "\n".join(out)


def _reached(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _resilience(digest: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per experiment of the resilience digest: what held, what broke, how long recovery took."""
    if not digest:
        return []
    out = [
        "<h2>Resilience</h2><table><tr><th>experiment</th><th>outcome</th><th>intensity reached</th>"
        "<th>recovery s</th><th>acked / stored / lost / duplicated</th><th>throughput</th><th>notes</th></tr>"
    ]
    for r in digest:
        acked = r.get("acked_vs_stored") or {}
        counts = (
            " / ".join(_e(acked.get(k)) for k in ("acked", "stored", "lost", "duplicated")) if acked else "-"
        )
        throughput = r.get("throughput")
        if isinstance(throughput, Mapping):
            throughput = f"{throughput.get('degradation_pct')}% of capacity lost under stress"
        elif isinstance(throughput, int | float):
            throughput = f"{throughput:,.0f} orders/s"
        oom = r.get("oom_sequence") or {}
        notes = "OOMKilled then CrashLoopBackOff detected" if oom.get("oom_then_crashloop") else ""
        if "engine_restarts" in r:
            notes = f"{notes} engine restarts: {r['engine_restarts']}".strip()
        bad = "" if r.get("outcome") == "passed" else " class='bad'"
        out.append(
            f"<tr{bad}><td>{_e(r.get('experiment'))}</td><td>{_e(r.get('outcome'))}</td>"
            f"<td>{_reached(r.get('intensity_reached'))}</td>"
            f"<td>{_e(r.get('recovery_s', '-'))}</td><td>{counts}</td>"
            f"<td>{_e(throughput or '-')}</td><td>{_e(notes)}</td></tr>"
        )
    out.append("</table>")
    return out


def _test(test: Mapping[str, Any], report_dir: pathlib.Path | None) -> list[str]:
    outcome = str(test.get("outcome", ""))
    window = test.get("window") or {}
    out = [
        f"<h2 class='{_e(outcome)}'>{_e(outcome.upper())} {_e(test.get('nodeid'))}</h2>",
        f"<p>window {_e(_time(window.get('start')))} - {_e(_time(window.get('end')))} "
        f"({_num(window.get('seconds'))} s), test took {_num(test.get('duration'))} s</p>",
    ]
    slos: Sequence[Mapping[str, Any]] = test.get("slos") or []
    if slos:
        out.append(
            "<table><tr><th>SLO</th><th>observed</th><th>expected</th><th>held</th><th>query</th></tr>"
        )
        for s in slos:
            bad = "" if s.get("passed") else " class='bad'"
            expected = f"{s.get('comparator')} {_num(s.get('threshold'))} {s.get('unit') or ''}"
            out.append(
                f"<tr{bad}><td>{_e(s.get('name'))}</td><td>{_e(_num(s.get('observed')))}</td>"
                f"<td>{_e(expected)}</td><td>{'yes' if s.get('passed') else 'NO'}</td>"
                f"<td class='mono'>{_e(s.get('query'))}{'<br>' + _e(s.get('message')) if s.get('message') else ''}"
                "</td></tr>"
            )
        out.append("</table>")
    for run in test.get("load") or []:
        lat = run.get("latency_ms") or {}
        validity = "valid" if run.get("valid") else "INVALID: " + "; ".join(run.get("invalid_reasons") or [])
        out.append(
            "<table><tr><th>load</th><th>mode</th><th>offered/s</th><th>achieved/s</th><th>ok</th>"
            "<th>errors</th><th>p50 ms</th><th>p99 ms</th><th>generator CPU</th><th>run</th></tr>"
            f"<tr{'' if run.get('valid') else ' class=bad'}><td>{_e(run.get('name'))}</td><td>{_e(run.get('mode'))}</td>"
            f"<td>{_num(run.get('offered_rate'))}</td><td>{_num(run.get('achieved_rate'))}</td>"
            f"<td>{_e(run.get('ok'))}</td><td>{_e(run.get('errors'))}</td><td>{_num(lat.get('p50'))}</td>"
            f"<td>{_num(lat.get('p99'))}</td><td>{_num((run.get('cpu') or {}).get('utilization'), 2)}</td>"
            f"<td>{_e(validity)}</td></tr></table>"
        )
    chaos: Sequence[Mapping[str, Any]] = test.get("chaos") or []
    if chaos:
        out.append(
            "<table><tr><th>chaos</th><th>kind</th><th>action</th><th>window</th><th>targets</th>"
            "<th>intensity (observed / expected)</th><th>reached</th></tr>"
        )
        for c in chaos:
            window = c.get("window") or {}
            intensity = "; ".join(
                f"{_num(i.get('observed'), 3)} / {_num(i.get('expected'), 3)} {i.get('unit', '')}"
                for i in c.get("intensity") or []
            )
            reached = _reached(c.get("intensity_reached"))
            bad = " class='bad'" if c.get("intensity_reached") is False else ""
            out.append(
                f"<tr{bad}><td>{_e(c.get('experiment') or c.get('name'))}</td><td>{_e(c.get('kind'))}</td>"
                f"<td>{_e(c.get('action'))}{' (dry run)' if c.get('dry_run') else ''}</td>"
                f"<td>{_e(_time(window.get('start')))} - {_e(_time(window.get('end')))}</td>"
                f"<td class='mono'>{_e(', '.join(c.get('containers') or []))}</td>"
                f"<td>{_e(intensity)}</td><td>{reached}</td></tr>"
            )
        out.append("</table>")
    if test.get("bundle"):
        out.append(
            f"<p>failure bundle: <a href='{_e(_rel(test['bundle'], report_dir))}'>{_e(test['bundle'])}</a></p>"
        )
    if test.get("longrepr"):
        out.append(f"<pre class='mono'>{_e(str(test['longrepr'])[-4000:])}</pre>")
    return out


def _rel(path: str, report_dir: pathlib.Path | None) -> str:
    if report_dir is None:
        return path
    try:
        return os.path.relpath(path, report_dir)
    except ValueError:
        return path


def write(summary: Mapping[str, Any], directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.html"
    path.write_text(render(summary, report_dir=directory))
    return path
