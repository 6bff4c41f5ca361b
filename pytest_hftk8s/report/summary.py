"""Build the session's :class:`~pytest_hftk8s.results.SessionReport` from typed test records, and
write it as ``summary.json`` (atomically: temp file + rename; non-finite numbers as ``null``).

Reads :mod:`pytest_hftk8s.results` only: no pytest objects, no network.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Sequence

from pytest_hftk8s.report.digest import digest
from pytest_hftk8s.results import (
    Baseline,
    Capacity,
    PlatformInfo,
    ResilienceScore,
    SessionReport,
    TestRecord,
    Totals,
    to_dict,
)

SCHEMA_VERSION = 2


def build(
    records: Sequence[TestRecord],
    *,
    platform: PlatformInfo | None,
    cluster: str | None,
    profile: str,
    started: float,
    baseline: Baseline | None = None,
    capacity: Capacity | None = None,
    score: ResilienceScore | None = None,
) -> SessionReport:
    counts: dict[str, int] = {}
    for t in records:
        counts[t.outcome] = counts.get(t.outcome, 0) + 1
    slos = [s for t in records for s in t.slos]
    return SessionReport(
        schema=SCHEMA_VERSION,
        cluster=cluster,
        profile=profile,
        started=started,
        finished=time.time(),
        platform=platform,
        capacity=capacity,
        baseline=baseline,
        totals=Totals(
            tests=len(records),
            outcomes=counts,
            slos=len(slos),
            slos_failed=sum(1 for s in slos if not s.passed),
        ),
        tests=list(records),
        resilience=digest(records),
        score=score,
    )


def write(report: SessionReport, directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_dict(report), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
