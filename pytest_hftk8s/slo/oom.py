"""The OOMKilled -> CrashLoopBackOff sequence of one container, from kube-state-metrics series.

:func:`oom_sequence` finds, in ``[start, end]``, the first sample at which the container's last
termination reason was ``OOMKilled`` and the first at which it waited in ``CrashLoopBackOff``;
:class:`OomThenCrashLoop` requires both, in that order. PromQL from the catalogue; asserts nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_hftk8s.results import OomSequence, SloResult
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.model import result
from pytest_hftk8s.slo.prom import PromClient, PromError

if TYPE_CHECKING:
    from pytest_hftk8s.slo.evaluate import Context


def oom_sequence(
    client: PromClient, *, namespace: str, container: str, start: float, end: float
) -> OomSequence:
    """First sample times of OOMKilled (last terminated) and CrashLoopBackOff (waiting) in ``[start, end]``."""
    seq = OomSequence(container=container)
    values = {"namespace": namespace, "container": container, "start": f"{start - 1:.3f}",
              "seconds": f"{max(1, int(end - start) + 1)}s"}  # fmt: skip
    for attr, selector in (
        ("oom_killed_at", queries.OOMKILLED_SELECTOR),
        ("crashloop_at", queries.CRASHLOOP_SELECTOR),
    ):
        query = queries.first_seen(selector).render(**values)
        seq.queries[attr] = query
        value = client.scalar(query, at=end)
        if value is not None and not math.isnan(value) and start - 1 <= value <= end + 1:
            setattr(seq, attr, value)
    return seq


@dataclass(frozen=True)
class OomThenCrashLoop:
    """``container`` was OOMKilled and then waited in CrashLoopBackOff during the window."""

    container: str
    name: str = "oomkilled_then_crashloopbackoff"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        out = result(
            self, window=ctx.window, observed=None, passed=False, comparator="==", threshold="in order"
        )
        if ctx.client is None:
            out.message = "no data: no Prometheus is known to this evaluation"
            return out
        try:
            seq = oom_sequence(
                ctx.client, namespace=str(ctx.variables.get("namespace", "")), container=self.container,
                start=ctx.window.start, end=ctx.window.end,
            )  # fmt: skip
        except PromError as e:
            out.message = f"no data: {e}"
            return out
        out.query = seq.queries.get("oom_killed_at", "")
        out.detail = seq
        out.observed = "in order" if seq.in_order else ("reversed" if seq.detected else "not seen")
        out.passed = seq.in_order
        if not seq.detected:
            out.message = (
                f"expected OOMKilled then CrashLoopBackOff for container {self.container}; saw OOMKilled at "
                f"{seq.oom_killed_at}, CrashLoopBackOff at {seq.crashloop_at}"
            )
        elif not seq.in_order:
            out.message = (
                f"CrashLoopBackOff ({seq.crashloop_at:.1f}) came before OOMKilled ({seq.oom_killed_at:.1f})"
            )
        return out
