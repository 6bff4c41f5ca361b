"""Calibrate the nightly regression gate on this machine: A/A and A/B on the local cluster.

Runs the bundled suites' load phases as a user would (``pytest --hft-cluster=local --pyargs
pytest_hftk8s.suites -k ... --hft-repeat=R``), each session in a fresh directory:

* **A** sessions of this commit as it is. The first is the baseline; the others run with
  ``--hft-compare=<A1>`` (the user's path: they offer the baseline's rate and print the verdicts).
* **B** sessions with ``--hft-cpu-limit-scale=backend=<factor>`` (0.7: the backend's CPU limit cut
  by 30%, a real slowdown) and ``--hft-compare=<A1>``.

Then every pair is judged with the gate's own code (``slo.compare.compare_reports``, the defaults):
A/A - every A against every earlier A - must give no new regression at all; A/B - every B against
every A - must be called regressed every time. The smallest effect detected reliably is the
smallest cut whose every comparison was called regressed, with the effect measured on the most
sensitive measure. Writes ``bench/results/regression_gate.json`` with the machine and the commands
(``"calibrations"``: one entry per run; ``--append`` adds to those already there).

Run as ``flock /tmp/hftk8s-heavy.lock python bench/regression_gate.py`` (about 30 minutes here:
8 sessions of 3 repeats). Not part of ``.ci/run``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from typing import Any

from machine import describe

from pytest_hftk8s.report.summary import read
from pytest_hftk8s.results import Comparison, SessionReport, to_dict
from pytest_hftk8s.slo.compare import DEFAULT_MIN_EFFECT, compare_reports

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "regression_gate.json"
#: The load phases of the bundled suites the gate compares: offered-rate throughput and latency,
#: closed-loop capacity (before and under CPU stress), and recovery from a backend pod kill.
SELECT = "baseline_throughput or cpu_pressure or (pod_kill_under_load and backend)"


def _session(directory: pathlib.Path, args: list[str], log: list[dict[str, Any]]) -> SessionReport:
    directory.mkdir(parents=True)
    argv = [sys.executable, "-m", "pytest", "--hft-cluster=local", "--pyargs", "pytest_hftk8s.suites",
            "-p", "no:cacheprovider", "-q", *args]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.monotonic() - began
    tail = done.stdout.splitlines()[-25:]
    entry = {"session": directory.name, "command": " ".join(argv[2:]), "exit": done.returncode,
             "wall_s": round(wall, 1), "tail": tail}  # fmt: skip
    log.append(entry)
    print(
        f"  {directory.name}: exit {done.returncode} in {wall:.0f} s; {tail[-1] if tail else ''}", flush=True
    )
    if done.returncode not in (0, 1):  # 1: some SLO failed (a B session may): still a measurement
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-2000:])
        raise SystemExit(f"regression_gate: session {directory.name} did not run (exit {done.returncode})")
    return read(directory / "hft-report")


def _run(
    root: pathlib.Path, common: list[str], n_a: int, n_b: int, cuts: list[float], log: list[dict[str, Any]]
) -> tuple[dict[str, SessionReport], dict[float, dict[str, SessionReport]]]:
    print(f"A1 (the baseline), then {n_a - 1} more A and {n_b} B per cut {cuts}")
    a = {"A1": _session(root / "A1", common, log)}
    first = root / "A1" / "hft-report"
    for i in range(2, n_a + 1):
        a[f"A{i}"] = _session(root / f"A{i}", [*common, f"--hft-compare={first}"], log)
    b: dict[float, dict[str, SessionReport]] = {}
    for cut in cuts:
        b[cut] = {}
        for i in range(1, n_b + 1):
            name = f"B{cut:g}-{i}"
            args = [*common, f"--hft-cpu-limit-scale=backend={cut:g}", f"--hft-compare={first}"]
            b[cut][name] = _session(root / name, args, log)
    return a, b


def _kept(
    root: pathlib.Path, cuts: list[float]
) -> tuple[dict[str, SessionReport], dict[float, dict[str, SessionReport]], list[dict[str, Any]]]:
    """The sessions an earlier ``--keep`` run left in ``root``, read back."""
    a = {p.name: read(p / "hft-report") for p in sorted(root.glob("A*")) if (p / "hft-report").is_dir()}
    b = {
        cut: {
            p.name: read(p / "hft-report")
            for p in sorted(root.glob(f"B{cut:g}-*"))
            if (p / "hft-report").is_dir()
        }
        for cut in cuts
    }
    log_file = root / "sessions.json"
    return a, b, json.loads(log_file.read_text()) if log_file.is_file() else []


def _judge(current: SessionReport, baseline: SessionReport) -> Comparison:
    # Each pair stands alone: the baseline's own comparison (if it ran with --hft-compare) is not
    # carried in, so no verdict is softened into a "known" regression.
    return compare_reports(current, replace(baseline, comparison=None))


def _measure(m: Any) -> dict[str, Any]:
    return {"key": m.key, "verdict": m.verdict, "effect": m.effect, "ci": m.ci, "min_effect": m.min_effect,
            "noise": m.noise, "p_value": m.p_value, "repeats": [m.repeats_baseline, m.repeats_current],
            "baseline": m.baseline, "current": m.current}  # fmt: skip


def _row(kind: str, current: str, baseline: str, c: Comparison) -> dict[str, Any]:
    return {
        "kind": kind,
        "current": current,
        "baseline": baseline,
        "verdict": c.verdict,
        "new_regressions": c.regressions,
        "measures": [_measure(m) for m in c.measures],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="--hft-repeat of every session (default 3)")
    parser.add_argument(
        "--a-sessions", type=int, default=4, help="sessions of the commit as it is (default 4)"
    )
    parser.add_argument("--b-sessions", type=int, default=2, help="sessions per CPU cut (default 2)")
    parser.add_argument("--cuts", default="0.7,0.85", help="backend CPU limit factors of the B sessions")
    parser.add_argument("-k", dest="select", default=SELECT, help="the tests to run (pytest -k)")
    parser.add_argument("--keep", type=pathlib.Path, help="keep every session's directory here")
    parser.add_argument(
        "--from", dest="source", type=pathlib.Path,
        help="judge the sessions kept by an earlier --keep run again (nothing is run)",
    )  # fmt: skip
    parser.add_argument(
        "--append", action="store_true",
        help=f"add this calibration to those already in {OUT.name} instead of replacing them",
    )  # fmt: skip
    opts = parser.parse_args(argv)
    cuts = [float(c) for c in opts.cuts.split(",") if c]
    machine = describe()
    common = ["-k", opts.select, f"--hft-repeat={opts.repeat}"]
    log: list[dict[str, Any]] = []
    started = time.monotonic()
    if opts.source is not None:
        a, b, log = _kept(opts.source, cuts)
    else:
        with contextlib.ExitStack() as stack:
            if opts.keep is not None:
                opts.keep.mkdir(parents=True, exist_ok=True)
                root = opts.keep
            else:
                root = pathlib.Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="hft-bench-gate-"))
                )
            a, b = _run(root, common, opts.a_sessions, opts.b_sessions, cuts, log)
            (root / "sessions.json").write_text(json.dumps(log, indent=2))
    wall = time.monotonic() - started if opts.source is None else sum(e["wall_s"] for e in log)
    aa = [_row("A/A", cur, base, _judge(a[cur], a[base])) for base, cur in itertools.combinations(a, 2)]
    ab: dict[str, list[dict[str, Any]]] = {
        f"{cut:g}": [
            _row("A/B", cur, base, _judge(rep, a[base])) for cur, rep in b[cut].items() for base in a
        ]
        for cut in cuts
    }
    false_regressions = sum(1 for r in aa if r["new_regressions"])
    detection = {
        cut: sum(1 for r in rows if r["verdict"] == "regressed") / len(rows) for cut, rows in ab.items()
    }
    reliable = [float(c) for c, rate in detection.items() if rate == 1.0]
    smallest = max(reliable) if reliable else None  # the factor nearest 1: the smallest cut
    effects = _effects(ab[f"{smallest:g}"]) if smallest is not None else {}
    result = {
        "command": "flock /tmp/hftk8s-heavy.lock python bench/regression_gate.py " + " ".join(argv),
        "judged_from": str(opts.source) if opts.source else None,
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "wall_s": round(wall, 1),
        "select": opts.select,
        "repeat": opts.repeat,
        "defaults": {"min_effect": DEFAULT_MIN_EFFECT},
        "sessions": log,
        "aa": {"comparisons": len(aa), "false_regressions": false_regressions,
               "false_regression_rate": false_regressions / len(aa) if aa else None, "rows": aa},
        "ab": {cut: {"comparisons": len(rows), "detection_rate": detection[cut],
                     "effects": _effects(rows), "rows": rows} for cut, rows in ab.items()},
        "smallest_reliable_cut": None if smallest is None else {
            "backend_cpu_limit_factor": smallest, "cut": round(1 - smallest, 3), "repeats": opts.repeat,
            "regressed_measures": effects,
        },
        "aa_noise": _noise(aa),
    }  # fmt: skip
    calibrations = [result]
    if opts.append and OUT.is_file():
        calibrations = [*json.loads(OUT.read_text()).get("calibrations", []), result]
    document = {key: result[key] for key in ("command", "timestamp", "machine")}
    OUT.write_text(json.dumps(to_dict({**document, "calibrations": calibrations}), indent=2) + "\n")
    print(f"wrote {OUT} in {wall / 60:.1f} min")
    print(f"A/A: {len(aa)} comparisons, {false_regressions} with a new regression")
    for cut, rate in detection.items():
        print(f"A/B backend={cut}: {len(ab[cut])} comparisons, called regressed in {rate:.0%}")
    print(f"smallest cut detected every time: {None if smallest is None else f'{1 - smallest:.0%}'}")
    return 0 if false_regressions == 0 and all(rate == 1.0 for rate in detection.values()) else 1


def _by_key(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every comparison's entry of each measure, by measure key, in key order."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for m in row["measures"]:
            by_key.setdefault(m["key"], []).append(m)
    return sorted(by_key.items())


def _effects(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per measure: in how many comparisons it regressed, and its effects (min, median, max)."""
    out: dict[str, dict[str, Any]] = {}
    for key, ms in _by_key(rows):
        effects = sorted(m["effect"] for m in ms if m["effect"] is not None)
        regressed = sum(1 for m in ms if m["verdict"] == "regressed")
        if not regressed:
            continue
        out[key] = {
            "regressed_in": f"{regressed}/{len(ms)}",
            "effect_min": effects[0] if effects else None,
            "effect_median": effects[len(effects) // 2] if effects else None,
            "effect_max": effects[-1] if effects else None,
        }
    return out


def _noise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per measure over the A/A pairs: verdicts, the widest |effect| and the widest interval half-width."""
    out: dict[str, dict[str, Any]] = {}
    for key, ms in _by_key(rows):
        verdicts: dict[str, int] = {}
        for m in ms:
            verdicts[m["verdict"]] = verdicts.get(m["verdict"], 0) + 1
        effects = [abs(m["effect"]) for m in ms if m["effect"] is not None]
        halves = [(m["ci"][1] - m["ci"][0]) / 2 for m in ms if m["ci"] is not None]
        out[key] = {
            "verdicts": verdicts,
            "max_abs_effect": max(effects) if effects else None,
            "max_ci_half_width": max(halves) if halves else None,
            "max_min_effect": max(m["min_effect"] for m in ms),
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
