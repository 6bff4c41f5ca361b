"""Build and write ``summary.json`` from plain per-test records.

A record is a dict with ``nodeid``, ``outcome``, ``duration``, ``window``, ``slos`` (each
``{name, query, observed, threshold, comparator, passed}``), ``load`` (load run summaries),
``chaos`` and ``bundle``. Writing is atomic (temp file + rename). No pytest objects, no network.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA_VERSION = 1


def build(
    records: Iterable[Mapping[str, Any]],
    *,
    platform: Mapping[str, Any] | None,
    cluster: str | None,
    profile: str,
    started: float,
) -> dict[str, Any]:
    tests = [dict(r) for r in records]
    counts: dict[str, int] = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    slos = [s for t in tests for s in t.get("slos", [])]
    return {
        "schema": SCHEMA_VERSION,
        "cluster": cluster,
        "profile": profile,
        "started": started,
        "finished": time.time(),
        "platform": dict(platform) if platform else {"ready_seconds": None},
        "totals": {
            "tests": len(tests),
            "outcomes": counts,
            "slos": len(slos),
            "slos_failed": sum(1 for s in slos if not s.get("passed")),
        },
        "tests": tests,
    }


def write(summary: Mapping[str, Any], directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(summary), indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null so every parser can read the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
