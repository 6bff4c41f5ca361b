"""Which component was saturated over a window: bottleneck attribution from saturation signals.

Two layers, so the judgement can be tested on recorded data:

1. gathering: :func:`record` evaluates the catalogue's ``SATURATION`` queries (instant queries at the
   window's end over the window) into a :class:`Recording`; :func:`signals` turns a recording (live or
   replayed from JSON) and the generator's :class:`~pytest_hftk8s.results.LoadSummary` into typed
   :class:`~pytest_hftk8s.results.SaturationSignal` rows. A series that is missing becomes a row with
   ``observed=None``; nothing here raises on missing data.
2. judging: :func:`judge` is pure. A signal is saturated at or beyond its threshold. A saturated signal
   that another component's saturated signal explains (the node's CPU explains every pod's latency; a
   pod's CPU explains the latency measured through it; a slow commit explains the engine's queue; a
   saturated generator bounds everything it offered) is a symptom, not a cause. One component left as
   the cause is the verdict; several, or a cause that a missing signal could explain, or nothing
   saturated while signals are missing, is ``"ambiguous"`` with the reason; nothing saturated with
   every signal present is ``"none"``.

:func:`attribute` is both in a row. This module reads Prometheus through ``slo.prom`` and PromQL only
from ``slo.queries``; it touches no cluster, no load generator and no pytest.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_hftk8s.results import Bottleneck, LoadSummary, SaturationSignal, Window
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.prom import PromClient, PromError

# -- thresholds (at or beyond: saturated) ----------------------------------------------------------
#: CFS enforces the quota per 100 ms period, so a container averaging 90% of its limit over a window
#: spends much of it at the quota; the last 10% is the averaging of bursts and idle gaps.
CPU_LIMIT_UTILIZATION = 0.9
#: A quarter of the periods throttled: the container's work waits for the next period (up to 100 ms)
#: regularly, not on a rare burst.
THROTTLED_SHARE = 0.25
#: Every pod shares the node; at 90% of its cores runnable work queues for a CPU.
NODE_UTILIZATION = 0.9
#: Orders reach Redis and PostgreSQL in batches, one call in flight at a time (the order path's gate
#: script, the engine's group commit): an order waits for the call in flight, then for its own. At a
#: p99 of half the built-in server-side p99 SLO (50 ms), the dependency alone can use all of it.
DEPENDENCY_P99_MS = 25.0
#: Little's law: the engine queue holds depth / rate seconds of work. Half the server-side p99 SLO
#: of waiting in the queue is a queue that grows faster than it drains.
QUEUE_WAIT_S = 0.025
#: Below this many requests the queue is a group-commit batch or two in flight, whatever the rate.
QUEUE_FLOOR = 100.0
#: The built-in SLOs leave 50 ms between the client-side (100 ms) and server-side (50 ms) p99; half
#: of it spent between the client and the handler (nginx, the network, accept queues) is saturation.
PROXY_MS = 25.0
#: The generator's own validity bound (``load.run.SATURATION``; a test keeps the two equal): at 90%
#: of its one core it sends late and its latencies include its own queueing.
GENERATOR_CORES = 0.9
#: A generator that fell behind its schedule while busy for most of its core was limited by its own
#: work (its loop could not send on time), not starved by a full node: a generator starved by others
#: falls behind at a fraction of a core (0.43 in the recording starved_generator_busy_node).
GENERATOR_BEHIND_CORES = 0.75

# -- signal names (the table's second column) -------------------------------------------------------
CPU_LIMIT = "CPU vs limit"
THROTTLED = "throttled periods"
NODE_CPU = "CPU vs cores"
COMMIT = "commit p99"
BATCH = "group commit batch"
QUEUE = "queue depth"
REDIS_RTT = "round trip p99"
PROXY = "client p99 − server p99"
GENERATOR_CPU = "CPU of its one core"

NAMES = {"postgres": "PostgreSQL", "redis": "Redis", "generator": "load generator"}
_POD_CPU = (CPU_LIMIT, THROTTLED)
#: Whose CPU explains a latency measured through it: signal -> components.
_CPU_EXPLAINS = {
    (REDIS_RTT, "redis"): {"redis", "backend"},  # measured in the backend's event loop
    (PROXY, "proxy and network"): {"nginx", "backend"},  # accept and parse happen before the handler
    (COMMIT, "postgres"): {"postgres", "engine"},  # timed in the engine's event loop
    (QUEUE, "engine"): {"postgres", "engine"},
}

Sample = tuple[dict[str, str], float]


@dataclass
class Recording:
    """The Prometheus results one attribution used: query name -> instant vector ``(labels, value)``,
    with the rendered PromQL and, for a query that failed, why. Replayable: ``to_dict``/``from_dict``."""

    results: dict[str, list[Sample]] = field(default_factory=dict)
    exprs: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    window: Window | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": None if self.window is None else {"start": self.window.start, "end": self.window.end},
            "results": {k: [{"labels": lb, "value": _json_float(v)} for lb, v in rows] for k, rows in self.results.items()},
            "exprs": dict(self.exprs),
            "errors": dict(self.errors),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recording:
        w = data.get("window")
        return cls(
            results={
                k: [(dict(r["labels"]), math.nan if r["value"] is None else float(r["value"])) for r in rows]
                for k, rows in (data.get("results") or {}).items()
            },
            exprs=dict(data.get("exprs") or {}),
            errors=dict(data.get("errors") or {}),
            window=None if not w else Window(float(w["start"]), float(w["end"])),
        )


def _json_float(v: float) -> float | None:
    return v if math.isfinite(v) else None


# -- gathering ----------------------------------------------------------------------------------------


def record(client: PromClient, window: Window, *, namespace: str, settle_timeout_s: float = 3.0) -> Recording:
    """Evaluate every ``queries.SATURATION`` query at ``window.end`` over the window; never raises."""
    out = Recording(window=window)
    with contextlib.suppress(PromError):  # each query below says for itself what it could not read
        client.wait_scraped_past(window.end, timeout_s=settle_timeout_s)
    for query in queries.SATURATION:
        expr = query.render(namespace=namespace, window=window.promql_range)
        out.exprs[query.name] = expr
        try:
            out.results[query.name] = client.query(expr, at=window.end)
        except PromError as e:
            out.errors[query.name] = str(e)
    return out


def workload_of(pod: str) -> str:
    """A pod's workload: ``<name>-<template hash>-<suffix>`` (Deployment) or ``<name>-<ordinal>``."""
    for pattern in (r"^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$", r"^(.+)-\d+$"):
        if m := re.match(pattern, pod):
            return m[1]
    return pod


def signals(recording: Recording, *, load: LoadSummary | None = None) -> list[SaturationSignal]:
    """Every saturation signal of a recording (unranked); ``load`` adds the generator's and the
    proxy-and-network rows (without it there was no generator to judge)."""
    rec = _Reader(recording)
    out = _pod_signals(rec)
    out.append(_node_signal(rec))
    out += _platform_signals(rec)
    if load is not None:
        out += _load_signals(rec, load)
    return out


@dataclass
class _Reader:
    recording: Recording

    def rows(self, query: queries.Query) -> list[Sample] | None:
        """Finite samples of a query; None when it failed or returned nothing."""
        rows = [(lb, v) for lb, v in self.recording.results.get(query.name, []) if math.isfinite(v)]
        return rows or None

    def by(self, query: queries.Query, label: str) -> dict[str, float]:
        return {lb.get(label, ""): v for lb, v in self.rows(query) or []}

    def scalar(self, query: queries.Query) -> float | None:
        rows = self.rows(query)
        return None if rows is None else max(v for _, v in rows)

    def why_missing(self, query: queries.Query) -> str:
        if query.name in self.recording.errors:
            return f"query failed: {self.recording.errors[query.name]}"
        if self.recording.results.get(query.name):
            return "no finite value in the window (no events to take a quantile or ratio of)"
        return "no series in the window"

    def expr(self, query: queries.Query) -> str:
        return self.recording.exprs.get(query.name, query.expr)


def _pod_signals(rec: _Reader) -> list[SaturationSignal]:
    cpu = rec.by(queries.SAT_CPU_BY_POD, "pod")
    if not cpu:
        return [
            SaturationSignal("pods", s, None, threshold=t, query=rec.expr(q), detail=rec.why_missing(queries.SAT_CPU_BY_POD))
            for s, t, q in ((CPU_LIMIT, CPU_LIMIT_UTILIZATION, queries.SAT_CPU_BY_POD),
                            (THROTTLED, THROTTLED_SHARE, queries.SAT_THROTTLED_SHARE_BY_POD))
        ]  # fmt: skip
    limits = rec.by(queries.SAT_CPU_LIMIT_BY_POD, "pod")
    throttled = rec.by(queries.SAT_THROTTLED_SHARE_BY_POD, "pod")
    out: list[SaturationSignal] = []
    if not limits and queries.SAT_CPU_LIMIT_BY_POD.name in rec.recording.errors:
        out.append(SaturationSignal("pods", CPU_LIMIT, None, threshold=CPU_LIMIT_UTILIZATION, query=rec.expr(queries.SAT_CPU_LIMIT_BY_POD),
                                    detail=rec.why_missing(queries.SAT_CPU_LIMIT_BY_POD)))  # fmt: skip
    if not throttled and any(limits.get(p) for p in cpu):
        # Limited pods have CFS periods; none read means the throttling is unknown, not absent.
        out.append(SaturationSignal("pods", THROTTLED, None, threshold=THROTTLED_SHARE, query=rec.expr(queries.SAT_THROTTLED_SHARE_BY_POD),
                                    detail=rec.why_missing(queries.SAT_THROTTLED_SHARE_BY_POD)))  # fmt: skip
    workloads: dict[str, list[str]] = {}
    for pod in sorted(cpu):
        workloads.setdefault(workload_of(pod), []).append(pod)
    for workload, pods in sorted(workloads.items()):
        limited = [p for p in pods if limits.get(p)]
        if limited:
            util = {p: cpu[p] / limits[p] for p in limited}
            worst = max(limited, key=lambda p: util[p])
            at = sum(u >= CPU_LIMIT_UTILIZATION for u in util.values())
            out.append(SaturationSignal(
                workload, CPU_LIMIT, cpu[worst], "cores", capacity=limits[worst], utilization=util[worst],
                threshold=CPU_LIMIT_UTILIZATION, saturated=util[worst] >= CPU_LIMIT_UTILIZATION,
                query=rec.expr(queries.SAT_CPU_BY_POD),
                detail=f"busiest pod {worst}; {at} of {len(limited)} limited pods at >= {CPU_LIMIT_UTILIZATION:.0%}",
            ))  # fmt: skip
        shares = {p: throttled[p] for p in pods if p in throttled}
        if shares:
            worst = max(shares, key=lambda p: shares[p])
            out.append(SaturationSignal(
                workload, THROTTLED, shares[worst], "share of periods", threshold=THROTTLED_SHARE,
                saturated=shares[worst] >= THROTTLED_SHARE, query=rec.expr(queries.SAT_THROTTLED_SHARE_BY_POD),
                detail=f"most throttled pod {worst} of {len(shares)}",
            ))  # fmt: skip
    return out


def _node_signal(rec: _Reader) -> SaturationSignal:
    used = rec.by(queries.SAT_NODE_CPU_BY_INSTANCE, "instance")
    cores = rec.by(queries.SAT_NODE_CORES_BY_INSTANCE, "instance")
    nodes = [n for n in used if cores.get(n)]
    query = rec.expr(queries.SAT_NODE_CPU_BY_INSTANCE)
    if not nodes:
        missing = queries.SAT_NODE_CPU_BY_INSTANCE if not used else queries.SAT_NODE_CORES_BY_INSTANCE
        return SaturationSignal(
            "node",
            NODE_CPU,
            None,
            "cores",
            threshold=NODE_UTILIZATION,
            query=query,
            detail=rec.why_missing(missing),
        )
    worst = max(nodes, key=lambda n: used[n] / cores[n])
    util = used[worst] / cores[worst]
    return SaturationSignal(
        "node", NODE_CPU, used[worst], "cores", capacity=cores[worst], utilization=util,
        threshold=NODE_UTILIZATION, saturated=util >= NODE_UTILIZATION, query=query,
        detail=f"busiest of {len(nodes)} node(s): {worst}" if len(nodes) > 1 else worst,
    )  # fmt: skip


def _latency(
    rec: _Reader, component: str, signal: str, query: queries.Query, bound: float
) -> SaturationSignal:
    value = rec.scalar(query)
    if value is None:
        return SaturationSignal(component, signal, None, "ms", threshold=bound, query=rec.expr(query),
                                detail=rec.why_missing(query))  # fmt: skip
    return SaturationSignal(component, signal, value, "ms", threshold=bound, saturated=value >= bound,
                            query=rec.expr(query))  # fmt: skip


def _platform_signals(rec: _Reader) -> list[SaturationSignal]:
    commit = _latency(rec, "postgres", COMMIT, queries.SAT_COMMIT_P99_MS, DEPENDENCY_P99_MS)
    batch = rec.scalar(queries.SAT_BATCH_SIZE_MEAN)
    group = SaturationSignal(
        "postgres", BATCH, batch, "orders/commit", query=rec.expr(queries.SAT_BATCH_SIZE_MEAN),
        detail="context, never saturated on its own: batches grow with load, that is how group commit keeps up"
        if batch is not None else rec.why_missing(queries.SAT_BATCH_SIZE_MEAN),
    )  # fmt: skip
    depth = rec.scalar(queries.SAT_ENGINE_QUEUE_MAX)
    rate = rec.scalar(queries.SAT_ACCEPTED_RATE) or 0.0
    bound = max(QUEUE_FLOOR, QUEUE_WAIT_S * rate)
    queue = SaturationSignal(
        "engine", QUEUE, depth, "requests", threshold=bound, saturated=depth is not None and depth >= bound,
        query=rec.expr(queries.SAT_ENGINE_QUEUE_MAX),
        detail=(f"about {1000 * depth / rate:.0f} ms of work at {rate:,.0f} accepted orders/s" if rate else
                "no accepted orders in the window") if depth is not None else rec.why_missing(queries.SAT_ENGINE_QUEUE_MAX),
    )  # fmt: skip
    by_op = rec.by(queries.SAT_REDIS_P99_MS_BY_OP, "op")
    redis = _latency(rec, "redis", REDIS_RTT, queries.SAT_REDIS_P99_MS_BY_OP, DEPENDENCY_P99_MS)
    if by_op:
        worst = max(by_op, key=lambda op: by_op[op])
        redis.detail = f"slowest op {worst}; " + ", ".join(
            f"{op} {v:.2f} ms" for op, v in sorted(by_op.items())
        )
    return [commit, group, queue, redis]


def _load_signals(rec: _Reader, load: LoadSummary) -> list[SaturationSignal]:
    out = []
    busy = load.cpu.get("utilization")
    reasons = "" if load.valid else f"; the run {load.name!r} is invalid: " + "; ".join(load.invalid_reasons)
    behind = any("fell behind its schedule" in r for r in load.invalid_reasons)
    saturated = busy is not None and (busy >= GENERATOR_CORES or (behind and busy >= GENERATOR_BEHIND_CORES))
    out.append(SaturationSignal(
        "generator", GENERATOR_CPU, busy, "cores", capacity=1.0, utilization=busy, threshold=GENERATOR_CORES,
        saturated=saturated, query="LoadSummary.cpu['utilization']",
        detail=("one Python process on one core" if busy is not None else "the load summary has no CPU figure") + reasons,
    ))  # fmt: skip
    client = load.latency_ms.get("p99")
    server = rec.scalar(queries.SAT_SERVER_P99_MS)
    query = f"LoadSummary.latency_ms['p99'] - ({rec.expr(queries.SAT_SERVER_P99_MS)})"
    if client is None or server is None or not math.isfinite(client):
        why = (
            "the load summary has no client p99"
            if client is None
            else rec.why_missing(queries.SAT_SERVER_P99_MS)
        )
        out.append(
            SaturationSignal(
                "proxy and network", PROXY, None, "ms", threshold=PROXY_MS, query=query, detail=why
            )
        )
        return out
    gap = max(0.0, client - server)
    out.append(SaturationSignal(
        "proxy and network", PROXY, gap, "ms", threshold=PROXY_MS, saturated=gap >= PROXY_MS, query=query,
        detail=f"client p99 {client:.1f} ms, server p99 {server:.1f} ms: nginx, the network and the "
        "backend's accept queue (not nginx's $upstream_response_time)",
    ))  # fmt: skip
    return out


# -- judging (pure) -----------------------------------------------------------------------------------


def judgeable(s: SaturationSignal) -> bool:
    """A row with a threshold: it can be saturated (the batch size is context only)."""
    return s.threshold is not None


def pressure(s: SaturationSignal) -> float | None:
    """How far a signal is towards its threshold (1.0: at it)."""
    if s.observed is None or s.threshold is None or s.threshold <= 0:
        return None
    value = s.utilization if s.capacity is not None and s.utilization is not None else s.observed
    return value / s.threshold


def explains(cause: SaturationSignal, symptom: SaturationSignal) -> bool:
    """Would ``cause``, saturated, account for ``symptom`` (of another component) being saturated?"""
    if cause.component == symptom.component:
        return False
    if cause.component == "generator":  # it bounds what was offered, and shares the node with the rest
        return True
    if cause.component == "node":  # every pod's CPU and latency; never the generator (it may run elsewhere)
        return symptom.component != "generator"
    if cause.signal in _POD_CPU:
        whose = _CPU_EXPLAINS.get((symptom.signal, symptom.component), set())
        return cause.component == "pods" or cause.component in whose
    return cause.signal == COMMIT and symptom.signal == QUEUE


def judge(found: Sequence[SaturationSignal], *, window: Window | None = None) -> Bottleneck:
    """The verdict over a window's signals; see the module docstring for the rules."""
    rows = [s for s in found if judgeable(s)]
    saturated = [s for s in rows if s.saturated and s.observed is not None]
    missing = [s for s in rows if s.observed is None]
    causes = [s for s in saturated if not any(explains(o, s) for o in saturated)]
    by_component: dict[str, list[SaturationSignal]] = {}
    for s in sorted(causes, key=lambda s: -(pressure(s) or 0.0)):
        by_component.setdefault(s.component, []).append(s)
    cause_names = list(by_component)
    symptoms = [s for s in saturated if s not in causes]
    ranked = _rank(found, causes, symptoms)

    if not rows or len(missing) == len(rows):
        verdict, head = "ambiguous", "ambiguous: no saturation signal could be read"
    elif not saturated:
        if missing:
            verdict = "ambiguous"
            head = f"ambiguous: nothing observed saturated, but there is no data for {_list(missing)}"
        else:
            verdict, head = "none", "nothing saturated"
    elif len(cause_names) > 1:
        verdict = "ambiguous"
        head = (
            "ambiguous: "
            + " and ".join(f"{_name(c)} ({_figures(by_component[c])})" for c in cause_names)
            + " are saturated and nothing separates them"
        )
    else:
        (name,) = cause_names
        open_by = [m for m in missing if any(explains(m, c) for c in by_component[name])]
        figures = _figures(by_component[name])
        if open_by:
            verdict = "ambiguous"
            head = f"ambiguous: {_name(name)} saturated ({figures}), but no data for {_list(open_by)}, which could explain it"
        else:
            verdict, head = name, f"saturated: {_name(name)} ({figures})"
    parts = [head]
    if symptoms:
        parts.append("following from it: " if verdict not in ("ambiguous", "none") else "also saturated: ")
        parts[-1] += ", ".join(describe(s) for s in symptoms)
    calm = [s for s in ranked if judgeable(s) and not s.saturated and s.observed is not None][:3]
    if calm:
        parts.append("not saturated: " + ", ".join(describe(s) for s in calm))
    if missing and verdict != "ambiguous":
        parts.append(f"no data: {_list(missing)}")
    return Bottleneck(
        verdict=verdict, sentence="; ".join(parts), window=window,
        saturated=cause_names + [c for c in dict.fromkeys(s.component for s in symptoms) if c not in cause_names],
        signals=ranked,
    )  # fmt: skip


def attribute(
    client: PromClient, window: Window, *, namespace: str, load: LoadSummary | None = None
) -> Bottleneck:
    """Name the saturated component over ``window`` from Prometheus (and the generator's ``load``)."""
    return judge(signals(record(client, window, namespace=namespace), load=load), window=window)


def _rank(
    found: Sequence[SaturationSignal], causes: list[SaturationSignal], symptoms: list[SaturationSignal]
) -> list[SaturationSignal]:
    def key(s: SaturationSignal) -> tuple[int, float]:
        tier = (
            0 if s in causes else 1 if s in symptoms else 2 if judgeable(s) and s.observed is not None else 3
        )
        return tier, -(pressure(s) or 0.0)

    return sorted(found, key=key)


def _name(component: str) -> str:
    return NAMES.get(component, component)


def _list(rows: Sequence[SaturationSignal]) -> str:
    return ", ".join(f"{_name(s.component)} {s.signal}" for s in rows)


def _figures(rows: Sequence[SaturationSignal]) -> str:
    return ", ".join(describe(s, with_component=False) for s in rows)


def figure(s: SaturationSignal) -> str:
    """A signal's numbers alone, e.g. "1.97 of 2 cores (99%)", "41% of periods", "1.8 ms"."""
    v = s.observed
    if v is None:
        return "no data"
    if s.capacity is not None:
        return f"{v:.2f} of {s.capacity:g} cores ({(s.utilization or 0):.0%})"
    if s.signal == THROTTLED:
        return f"{v:.0%} of periods"
    if s.unit == "ms":
        return f"{v:,.1f} ms"
    return f"{v:,.1f} {s.unit}"


def describe(s: SaturationSignal, *, with_component: bool = True) -> str:
    """One signal with its numbers, e.g. "node CPU 1.97 of 2 cores (99%)", "backend pods throttled 41%
    of periods", "PostgreSQL commit p99 1.8 ms"."""
    who = f"{_name(s.component)}{' pods' if s.signal in _POD_CPU else ''} " if with_component else ""
    if s.observed is None:
        return f"{who}{s.signal}: no data"
    label = {CPU_LIMIT: "CPU", NODE_CPU: "CPU", GENERATOR_CPU: "CPU", THROTTLED: "throttled"}.get(
        s.signal, s.signal
    )
    return f"{who}{label} {figure(s)}"


def table(b: Bottleneck) -> str:
    """The ranked signals as a plain-text table (most saturated first)."""
    head = ("rank", "component", "signal", "observed", "threshold", "saturated")
    lines = [head]
    for i, s in enumerate(b.signals, 1):
        observed = figure(s)
        if s.threshold is None:
            threshold = "-"
        elif s.capacity is not None:
            threshold = f">= {s.threshold:.0%} of {s.capacity:g}"
        elif s.signal == THROTTLED:
            threshold = f">= {s.threshold:.0%}"
        else:
            threshold = f">= {s.threshold:,.4g} {s.unit}"
        flag = "yes" if s.saturated else "?" if s.observed is None and judgeable(s) else "no"
        lines.append((str(i), _name(s.component), s.signal, observed, threshold, flag))
    widths = [max(len(row[c]) for row in lines) for c in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines
    )
