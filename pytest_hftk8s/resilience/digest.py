"""A digest of the session's resilience figures for the top of ``summary.json``.

It reads the per-test chaos entries the ``hft_chaos`` fixture and the suite recorded (plain dicts)
and lists, per experiment: the test, its window, whether its intensity was reached, the recovery
time, acknowledged-vs-stored counts and any throughput figures. No I/O, no pytest objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

KEYS = ("throughput", "oom_sequence", "engine_restarts", "ready_again_s", "stopped_early")


def digest(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        for entry in record.get("chaos") or []:
            if not isinstance(entry, Mapping) or "experiment" not in entry:
                continue
            row: dict[str, Any] = {
                "test": record.get("nodeid"),
                "outcome": record.get("outcome"),
                "experiment": entry["experiment"],
                "window": entry.get("window"),
            }
            if "intensity_reached" in entry:
                row["intensity_reached"] = entry["intensity_reached"]
            if isinstance(entry.get("recovery"), Mapping):
                row["recovery_s"] = entry["recovery"].get("recovery_s")
            if isinstance(entry.get("acked_vs_stored"), Mapping):
                acks = entry["acked_vs_stored"]
                row["acked_vs_stored"] = {
                    k: acks.get(k) for k in ("acked", "acked_stored", "stored", "lost", "duplicated")
                }
            if isinstance(entry.get("load"), Mapping):
                row["throughput"] = entry["load"].get("achieved_rate")
            row.update({k: entry[k] for k in KEYS if k in entry})
            out.append(row)
    return out
