"""The failure bundle: what an engineer needs to see why a test failed, collected from the cluster.

Pod states (with last probe errors), events, each pod's log tail, the test's SLO results and PromQL
diagnostics of its window (``promql.json``: ``{"slos": [...], "diagnostics": [...]}``) go
to ``<report>/bundles/<test>/`` as files, and a short text for the pytest report section is returned.
It reads the :class:`~pytest_hftk8s.cluster.base.Cluster` contract and the catalogue's diagnostics
only, and never raises: a part that cannot be collected is written down as such.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pytest_hftk8s.cluster.base import Cluster
from pytest_hftk8s.results import SloResult, Window, to_dict
from pytest_hftk8s.slo.diagnostics import snapshot
from pytest_hftk8s.slo.prom import PromClient, PromError

LOG_TAIL = 100


def safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "test"


def collect(
    cluster: Cluster | None,
    *,
    nodeid: str,
    directory: pathlib.Path,
    slos: Sequence[SloResult] = (),
    diagnostics: Sequence[Mapping[str, Any]] = (),
    error: str = "",
) -> tuple[pathlib.Path, str]:
    """Write the bundle for ``nodeid`` under ``directory``; return (its path, report-section text)."""
    out = directory / "bundles" / safe_name(nodeid)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"failure bundle: {out}"]
    if error:
        (out / "error.txt").write_text(error)
    promql = {"slos": [to_dict(s) for s in slos], "diagnostics": list(diagnostics)}
    (out / "promql.json").write_text(json.dumps(promql, indent=2, default=str))
    for s in slos:
        mark = "ok " if s.passed else "MISS"
        lines.append(f"  [{mark}] {s.name}: {s.observed} {s.comparator} {s.threshold}")
        if s.query:
            lines.append(f"         {s.query}")
    lines.extend(_diagnostic_lines(diagnostics))
    if cluster is None:
        lines.append("  (no cluster handle in this process: pod states, events and logs not collected)")
        return out, "\n".join(lines)
    pods = _try(lambda: [asdict(p) for p in cluster.pods()], lines, "pods")
    if pods is not None:
        (out / "pods.json").write_text(json.dumps(pods, indent=2))
        for p in pods:
            lines.append(f"  pod {p['name']}: {p['phase']} ready={p['ready']}")
            for c in p.get("containers", ()):
                extra = f" ({c['reason']})" if c.get("reason") else ""
                lines.append(f"    {c['name']}: {c['state']}{extra} restarts={c['restart_count']}")
                if c.get("last_probe_error"):
                    lines.append(f"      last probe error: {c['last_probe_error']}")
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        for p in pods:
            text = _try(lambda p=p: cluster.pod_logs(p["name"], tail=LOG_TAIL), lines, f"logs of {p['name']}")
            if text is not None:
                (logs / f"{safe_name(p['name'])}.log").write_text(text)
    events = _try(lambda: [asdict(e) for e in cluster.events()], lines, "events")
    if events is not None:
        (out / "events.json").write_text(json.dumps(events, indent=2))
        warnings = [e for e in events if e.get("type") != "Normal"][-10:]
        for e in warnings:
            lines.append(f"  event {e['kind']}/{e['name']} {e['reason']}: {e['message']}")
    return out, "\n".join(lines)


def _diagnostic_lines(diagnostics: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for d in diagnostics:
        if d.get("error"):
            lines.append(f"  {d['name']}: ({d['error']})")
            continue
        cells = []
        for row in d.get("rows", []):
            label = ",".join(str(v) for v in row["labels"].values()) or "all"
            cells.append(f"{label}={row['value']:.4g}")
        lines.append(f"  {d['name']}: {', '.join(cells) or 'no data'}")
    return lines


def _try(call: Any, lines: list[str], what: str) -> Any:
    try:
        return call()
    except Exception as e:  # the bundle must never hide the real failure behind its own
        lines.append(f"  ({what} unavailable: {type(e).__name__}: {e})")
        return None


def diagnostics(prometheus_url: str, window: Window, *, namespace: str) -> list[dict[str, Any]]:
    """The catalogue's diagnostics over ``window``; an unreachable Prometheus is written down, not raised."""
    try:
        client = PromClient(prometheus_url, timeout_s=2.0)
    except Exception as e:  # the bundle must never hide the real failure behind its own
        return [{"name": "prometheus", "error": f"{type(e).__name__}: {e}"}]
    try:
        lookback = 1.5 * client.scrape_interval()
        return snapshot(client, window.with_lookback(lookback), namespace=namespace)
    except PromError as e:
        return [{"name": "prometheus", "error": str(e)}]
    finally:
        client.close()
