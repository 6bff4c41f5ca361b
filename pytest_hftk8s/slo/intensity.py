"""Did a stress experiment reach its intensity? Judged from Prometheus, the same on every backend.

Chaos Mesh's chaos-daemon attaches stress-ng to the target container's cgroup, and the local driver
does the same, so cAdvisor's per-container series see the stress on both backends:

- CPU: the container's ``rate(container_cpu_usage_seconds_total)`` over the experiment's window
  (after a short warm-up) against what was asked - ``workers x load`` cores - capped by the
  container's CPU limit (``kube_pod_container_resource_limits``): a container at its limit is as
  stressed as it can be;
- memory: the peak ``container_memory_working_set_bytes`` in the window above the working set just
  before the request, against the size asked, capped by what the limit leaves; an OOM kill in the
  window (``container_oom_events_total``) means the pressure went beyond the limit, which is reached.

Reached means observed >= ``tolerance`` x expected. The local driver's own cgroup reading stays on
the record as a cross-check. Queries from the catalogue; nothing is injected or asserted here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pytest_hftk8s.results import ChaosRecord, Intensity, Window
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.prom import PromClient, PromError

TOLERANCE = 0.8
#: stress-ng forks its workers and the CFS quota settles: not part of the average.
WARMUP_S = 0.5


def target(container_id: str) -> tuple[str, str]:
    """(pod, container) of a container record id: ``pod/container`` (local) or ``ns/pod/container`` (Chaos Mesh)."""
    parts = container_id.split("/")
    if len(parts) < 2:
        raise ValueError(f"expected a container record id like 'pod/container', got {container_id!r}")
    return parts[-2], parts[-1]


def judge(
    record: ChaosRecord,
    client: PromClient,
    *,
    namespace: str,
    tolerance: float = TOLERANCE,
    settle_timeout_s: float = 3.0,
) -> list[Intensity]:
    """One :class:`Intensity` per stressed container of ``record`` (empty for anything but a stress)."""
    kind = "cpu" if "cpu_cores" in record.requested else "memory" if "memory" in record.requested else None
    if kind is None or record.window is None or not record.injected:
        return []
    with_timeout = _scalar(client)
    client.wait_scraped_past(record.window.end, timeout_s=settle_timeout_s)
    out = []
    for container_id in record.containers:
        pod, container = target(container_id)
        values = {"namespace": namespace, "pod": pod, "container": container}
        if kind == "cpu":
            out.append(_cpu(record, container_id, values, with_timeout, tolerance))
        else:
            out.append(_memory(record, container_id, values, with_timeout, tolerance))
    return out


def _scalar(client: PromClient) -> Callable[[str, float], float | None]:
    def value(query: str, at: float) -> float | None:
        try:
            v = client.scalar(query, at=at)
        except PromError:
            return None
        return None if v is None or math.isnan(v) else v

    return value


def _cpu(
    record: ChaosRecord,
    container_id: str,
    values: dict[str, str],
    value: Callable[[str, float], float | None],
    tolerance: float,
) -> Intensity:
    assert record.window is not None
    requested = float(record.requested["cpu_cores"])
    window = Window(min(record.window.end, record.window.start + WARMUP_S), record.window.end)
    limit = value(queries.CONTAINER_CPU_LIMIT.render(**values), window.end)
    expected = min(requested, limit) if limit else requested
    query = queries.CONTAINER_CPU_CORES.render(**values, window=window.promql_range)
    observed = value(query, window.end)
    return Intensity(
        container=container_id, kind="cpu", unit="cores", requested=requested, expected=expected,
        observed=observed, reached=observed is not None and observed >= tolerance * expected,
        source="prometheus", limit=limit, query=query,
    )  # fmt: skip


def _memory(
    record: ChaosRecord,
    container_id: str,
    values: dict[str, str],
    value: Callable[[str, float], float | None],
    tolerance: float,
) -> Intensity:
    assert record.window is not None
    window = record.window.with_lookback(record.window.start - record.requested_at)
    limit = value(queries.CONTAINER_MEMORY_LIMIT.render(**values), window.end)
    before = value(queries.CONTAINER_MEMORY_NOW.render(**values), record.requested_at) or 0.0
    asked = record.requested.get("memory_bytes")
    room = max(0.0, limit - before) if limit else None
    requested = float(asked) if asked is not None else (room or 0.0)
    expected = min(requested, room) if room is not None else requested
    # From the request on: the stress may have taken memory (or been OOM-killed) while it was verified.
    wide = window.promql_range_wide
    query = queries.CONTAINER_MEMORY_PEAK.render(**values, window=wide)
    peak = value(query, window.end)
    ooms = value(queries.CONTAINER_OOM_EVENTS.render(**values, window_wide=wide), window.end) or 0.0
    observed = None if peak is None else max(0.0, peak - before)
    reached = ooms > 0 or (observed is not None and observed >= tolerance * expected)
    return Intensity(
        container=container_id, kind="memory", unit="bytes", requested=requested, expected=expected,
        observed=observed, reached=reached, source="prometheus", limit=limit, baseline=before,
        oom_kills=round(ooms), query=query,
    )  # fmt: skip
