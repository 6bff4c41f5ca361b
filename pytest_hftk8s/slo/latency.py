"""Client-side order latency: what a trader sees, judged from the load generator's own histograms.

The generator times every request from its *intended* send time (no coordinated omission), a request
that times out counts at the moment it timed out, and a request never sent - or sent on a
connection that was lost before its answer - counts as a failure, i.e. slower than any bound: with
more than 1% of those, the p99 is infinite. The backend's handler histogram (server side) starts
after parsing and auth and skips failed requests, so it is quoted next to the client figure, never
instead of it. Reads typed load summaries and one PromQL query; asserts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_hftk8s.results import LoadSummary, SloResult
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.model import result
from pytest_hftk8s.slo.prom import PromError

if TYPE_CHECKING:
    from pytest_hftk8s.slo.evaluate import Context

HIST_MAX_US = 120_000_000


def quantile_ms(summaries: Sequence[LoadSummary], quantile: float) -> tuple[float | None, int, int]:
    """(the quantile in ms counting unanswered requests as failures, answered+timed-out count, failures).

    ``None`` when the runs recorded nothing at all.
    """
    from hdrh.histogram import HdrHistogram

    merged = HdrHistogram(1, HIST_MAX_US, 3)
    for s in summaries:
        if s.histogram:
            merged.decode_and_add(s.histogram)
    counted = merged.get_total_count()
    failed = sum(s.unanswered for s in summaries)
    total = counted + failed
    if total == 0:
        return None, 0, 0
    rank = math.ceil(quantile * total)
    if rank > counted:
        return math.inf, counted, failed
    percentile = min(100.0, 100.0 * rank / counted)
    return merged.get_value_at_percentile(percentile) / 1000.0, counted, failed


@dataclass(frozen=True)
class ClientLatency:
    """The generator's latency quantile over the runs of the window (or one named run) <= ``max_ms``."""

    max_ms: float
    quantile: float = 0.99
    load: str | None = None
    name: str = "client_p99_latency_ms"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        runs = [s for s in ctx.loads if self.load in (None, s.name)]
        observed, counted, failed = quantile_ms(runs, self.quantile)
        server = self._server_side(ctx)
        q = f"p{self.quantile * 100:g}"
        out = result(
            self, window=ctx.window, observed=observed, passed=False, comparator="<=", threshold=self.max_ms,
            unit="ms", query=f"load generator histogram{'' if self.load is None else ' of ' + self.load}",
            extra={"server_side_ms": server, "requests": counted + failed, "unanswered": failed,
                   "timed_out": sum(s.timed_out for s in runs)},
        )  # fmt: skip
        if observed is None:
            out.message = "no data: no load run of this test recorded a request" + (
                "" if self.load is None else f" (none named {self.load!r})"
            )
            return out
        out.passed = observed <= self.max_ms
        server_text = "no data" if server is None else f"{server:.1f} ms"
        out.message = (
            f"client-side {q} {observed:.1f} ms over {counted + failed} requests (from each intended send time; "
            f"{out.extra['timed_out']} timed out, counted at their timeout; {failed} unanswered, counted as "
            f"failures); server-side {q} {server_text} (the backend's handler histogram)"
        )
        return out

    def _server_side(self, ctx: Context) -> float | None:
        if ctx.client is None:
            return None
        query = queries.order_latency_ms(self.quantile).render(
            window=ctx.window.promql_range, window_wide=ctx.window.promql_range_wide
        )
        try:
            value = ctx.client.scalar(query, at=ctx.window.end)
        except PromError:
            return None
        return None if value is None or math.isnan(value) else value
