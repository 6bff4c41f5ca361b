"""The scaling sweep on this machine: ``pytest --hft-cluster=local -m sweep`` as a user runs it.

Runs the bundled sweep (N backends in ``--hft-sweep-backends``, 1,2,4,8 by default) in a fresh
directory and keeps what it wrote to ``hft-report/sweep.json`` - the points with every probe, the USL
fit with its intervals, the knee and its bottleneck - with the machine and the wall time. Writes
bench/results/sweep.json. Extra arguments go to pytest (e.g. ``--hft-sweep-backends=1,2,3,4,6,8``).
Run as ``flock /tmp/hftk8s-heavy.lock python bench/sweep_bench.py`` (3-4 minutes here).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import time

from machine import describe

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "sweep.json"


def main(argv: list[str]) -> int:
    machine = describe()
    argv_pytest = [sys.executable, "-m", "pytest", "--hft-cluster=local", "-m", "sweep", "--pyargs",
                   "pytest_hftk8s.suites", "-p", "no:cacheprovider", "-q", *argv]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hft-bench-sweep-") as directory:
        started = time.monotonic()
        done = subprocess.run(
            argv_pytest, cwd=directory, capture_output=True, text=True, timeout=3600, check=False
        )
        wall = time.monotonic() - started
        found = pathlib.Path(directory) / "hft-report" / "sweep.json"
        if done.returncode != 0 or not found.exists():
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-2000:])
            print(f"sweep_bench: the sweep failed (exit {done.returncode}); nothing written", file=sys.stderr)
            return 1
        sweep = json.loads(found.read_text())
    result = {
        "command": "flock /tmp/hftk8s-heavy.lock python bench/sweep_bench.py " + " ".join(argv),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "wall_s": round(wall, 1),
        "sweep": sweep,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    fit = sweep.get("fit") or {}
    print(f"wrote {OUT}: {sweep.get('sentence', '')}")
    print("points: " + ", ".join(f"N={p['backends']}: {p['throughput']}" for p in sweep["points"]))
    print(f"fit: lambda {fit.get('lam')}, sigma {fit.get('sigma')}, kappa {fit.get('kappa')}, "
          f"N* {fit.get('n_star')}, X_max {fit.get('x_max')}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
