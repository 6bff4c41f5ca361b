"""A digest of the session's resilience figures for the top of the report.

One row per chaos experiment of every test: its window, whether its intensity was reached (judged
from Prometheus), the recovery time, acknowledged-vs-stored orders, fill integrity, the OOM sequence,
the throughput of the load run it ran under, and its named figures. Reads typed records only.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_hftk8s.results import DigestRow, TestRecord


def digest(records: Sequence[TestRecord]) -> list[DigestRow]:
    out: list[DigestRow] = []
    for rec in records:
        for c in rec.chaos:
            load = rec.load(c.load) if c.load else None
            out.append(
                DigestRow(
                    test=rec.nodeid,
                    outcome=rec.outcome,
                    experiment=c.experiment,
                    window=c.window,
                    intensity_reached=c.intensity_reached,
                    recovery_s=c.recovery.recovery_s if c.recovery else None,
                    acked_vs_stored=c.acked_vs_stored,
                    fills=c.fills,
                    oom_then_crashloop=c.oom_sequence.in_order if c.oom_sequence else None,
                    throughput=load.achieved_rate if load else None,
                    figures=dict(c.figures),
                )
            )
        for s in rec.scale:
            load = rec.load(s.load)
            out.append(
                DigestRow(
                    test=rec.nodeid,
                    outcome=rec.outcome,
                    experiment=f"{s.profile}: {s.backends_ready} backends ready, engine restarts {s.engine_restarts}",
                    window=s.window,
                    throughput=load.achieved_rate if load else None,
                    figures={
                        "engine_restarts": float(s.engine_restarts),
                        "backend_restarts": float(s.backend_restarts),
                    },
                )
            )
    return out
