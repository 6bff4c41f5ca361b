"""Benchmark: the bundled suites through the kubernetes backend (emulated) beside the local backend.

Runs ``pytest --hft-cluster=local --pyargs pytest_hftk8s.suites`` and then the same with
``--hft-cluster=emulated``, each in a fresh directory, ``rounds`` times alternating (the machine is
noisy: the ratio of the medians is the figure). Records wall time, pytest's outcome counts, each
run's SLO verdicts and whether they match. Writes bench/results/emulated.json.
Run as ``flock /tmp/hft-bench.lock python bench/emulated_bench.py`` (about 6 minutes a round).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

from machine import describe

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "emulated.json"
ROUNDS = int(os.environ.get("HFT_BENCH_ROUNDS", "1"))


def _run(cluster: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"hft-bench-{cluster}-") as directory:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", f"--hft-cluster={cluster}", "--pyargs", "pytest_hftk8s.suites",
             "-p", "no:cacheprovider", "-q"],
            cwd=directory, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        summary_path = pathlib.Path(directory) / "hft-report" / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"tests": []}
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    verdicts = {t["nodeid"]: {s["name"]: s["passed"] for s in t["slos"]} for t in summary["tests"]}
    return {"cluster": cluster, "wall_s": round(wall, 1), "exit_code": done.returncode, "outcome": counts,
            "ready_s": (summary.get("platform") or {}).get("ready_seconds"), "verdicts": verdicts}  # fmt: skip


def main() -> None:
    runs: list[dict] = []
    for _ in range(ROUNDS):
        for cluster in ("local", "emulated"):
            print(f"running the suites on {cluster}...", flush=True)
            runs.append(_run(cluster))
            print(f"  {runs[-1]['wall_s']} s, {runs[-1]['outcome']}", flush=True)
    local = [r for r in runs if r["cluster"] == "local"]
    emulated = [r for r in runs if r["cluster"] == "emulated"]
    result = {
        "benchmark": "the bundled suites, local vs emulated (the kubernetes backend), same machine, same run",
        "command": "python bench/emulated_bench.py",
        "machine": describe(rounds=ROUNDS),
        "timestamp": datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds"),
        "local_wall_s": statistics.median(r["wall_s"] for r in local),
        "emulated_wall_s": statistics.median(r["wall_s"] for r in emulated),
        "ratio_emulated_to_local": round(
            statistics.median(r["wall_s"] for r in emulated) / statistics.median(r["wall_s"] for r in local),
            3,
        ),
        "all_passed": all(r["exit_code"] == 0 and not r["outcome"].get("skipped") for r in runs),
        "verdicts_match": all(r["verdicts"] == local[0]["verdicts"] for r in runs),
        "runs": [{k: v for k, v in r.items() if k != "verdicts"} for r in runs],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if not (result["all_passed"] and result["verdicts_match"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
