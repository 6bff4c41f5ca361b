"""Benchmark of the matching engine: native C++ (pt_engine) and the Python binding.

Builds engine_cpp's pt_engine with CMake/Ninja in build/bench, runs it (it generates one mixed
order stream up front, times it natively and dumps it), then replays the identical stream
through the installed ``hft_engine`` binding one order per call and in numpy batches. Every timed
region also counts its minor and major page faults (getrusage), and one engine per path records
its resident set growth, reported per million orders of capacity. Writes
bench/results/engine.json. Run it under the machine-wide lock, so no local-cluster job runs
meanwhile: ``flock /tmp/hftk8s-heavy.lock python bench/engine_bench.py``.

This script only measures: it does not assert targets (the JSON records met/missed) and it is
not a test. It must not send any network traffic.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from hft_engine import ORDER_DTYPE, Engine, OrderType
from machine import describe

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench"
RESULT = ROOT / "bench" / "results" / "engine.json"
MAX_PRICE = 1_000_000
CAPACITY = 1 << 20
BATCH_ROWS = 8192

TARGETS = {
    "native_mixed_ops_per_s": {"min": 5_000_000},
    "native_p99_ns": {"max": 1000},
    "native_p999_ns": {"max": 1000},
    "native_timed_minor_faults": {"max": 0},
    "pybind_single_orders_per_s": {"min": 1_000_000},
    "pybind_batch_orders_per_s": {"min": 3_000_000},
    "batch_to_native_ratio": {"min": 0.60},
}


def build_native() -> pathlib.Path:
    """Configures (once) and builds pt_engine; returns the binary path."""
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            sys.exit(f"engine_bench: {tool} not found on PATH; install cmake and ninja-build (.ci/install)")
    cfg = [
        "cmake",
        "-S",
        str(ROOT / "engine_cpp"),
        "-B",
        str(BUILD),
        "-G",
        "Ninja",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DHFT_ENGINE_BUILD_TESTS=ON",
        "-DHFT_ENGINE_BUILD_PYTHON=OFF",
    ]
    subprocess.run(cfg, check=True, capture_output=True, text=True, timeout=120)
    subprocess.run(["ninja", "-C", str(BUILD), "pt_engine"], check=True, capture_output=True, timeout=600)
    return BUILD / "pt_engine"


def run_native(binary: pathlib.Path, *, ops: int, repeats: int, dump: pathlib.Path) -> dict[str, Any]:
    cmd = [str(binary), "--ops", str(ops), "--repeats", str(repeats), "--dump-ops", str(dump)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout)


@dataclasses.dataclass
class Faults:
    """Page faults taken inside one timed region (the worst run of a best-of-N figure)."""

    minor: int = 0
    major: int = 0

    def worst(self, other: Faults) -> Faults:
        return Faults(max(self.minor, other.minor), max(self.major, other.major))


@dataclasses.dataclass
class Timed:
    """A best-of-N rate, the page faults of its worst run, and the first run's memory growth.

    For batches, `later_faults` counts only the batches after the first of each run: the first
    one maps the binding's recycled output buffers.
    """

    rate: float
    faults: Faults
    resident_growth: dict[str, int]
    later_faults: Faults | None = None
    engine_memory_bytes: int = 0


def page_faults() -> Faults:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Faults(usage.ru_minflt, usage.ru_majflt)


def faults_since(start: Faults) -> Faults:
    now = page_faults()
    return Faults(now.minor - start.minor, now.major - start.major)


def resident_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (pages)."""
    return int(pathlib.Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGESIZE")


def warmed_engine(orders: np.ndarray, warmup: int, growth: dict[str, int] | None = None) -> Engine:
    """A fresh engine holding the stream's initial book (built untimed, via one batch).

    When `growth` is given it receives the resident set growth after construction and after
    add_symbol, and the absolute starting point under "before" (popped by the caller).
    """
    before = resident_bytes()
    engine = Engine(max_orders=CAPACITY)
    after_construction = resident_bytes() - before
    engine.add_symbol("BENCH", max_price=MAX_PRICE)
    if growth is not None:
        growth.update(
            before=before,
            after_construction=after_construction,
            after_add_symbol=resident_bytes() - before,
        )
    results, _ = engine.submit_batch(orders[:warmup])
    if (results["status"] != 0).any():
        raise RuntimeError("warm-up rows were rejected: the dumped stream does not fit this engine")
    return engine


def finish_growth(growth: dict[str, int]) -> dict[str, int]:
    before = growth.pop("before")
    return {**growth, "after_run": resident_bytes() - before}


def single_orders_per_s(orders: np.ndarray, warmup: int, *, repeats: int) -> Timed:
    """Best-of-N rate of one binding call per order, from a plain Python loop."""
    timed = orders[warmup:]
    rows = list(
        zip(
            timed["symbol"].tolist(),
            timed["order_id"].tolist(),
            timed["side"].tolist(),
            timed["kind"].tolist(),
            timed["price"].tolist(),
            timed["qty"].tolist(),
            strict=True,
        )
    )
    cancel_kind = int(OrderType.CANCEL)
    best, faults, first = 0.0, Faults(), {}
    for r in range(repeats):
        growth: dict[str, int] = {}
        engine = warmed_engine(orders, warmup, growth)
        submit, cancel = engine.submit, engine.cancel
        f0 = page_faults()
        t0 = time.perf_counter()
        for sym, oid, side, kind, price, qty in rows:
            if kind == cancel_kind:
                cancel(sym, oid)
            else:
                submit(sym, oid, side, kind, price, qty)
        best = max(best, len(rows) / (time.perf_counter() - t0))
        faults = faults.worst(faults_since(f0))
        if r == 0:
            first = finish_growth(growth)
        del engine, submit, cancel
    return Timed(best, faults, first)


def chunks(a: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(a), size):
        yield a[start : start + size]


def batch_orders_per_s(orders: np.ndarray, warmup: int, *, repeats: int, rows: int) -> Timed:
    """Best-of-N rate of submit_batch over contiguous chunks of `rows` orders."""
    timed = orders[warmup:]
    parts = [np.ascontiguousarray(c) for c in chunks(timed, rows)]
    best, faults, later, first, mapped = 0.0, Faults(), Faults(), {}, 0
    for r in range(repeats):
        growth: dict[str, int] = {}
        engine = warmed_engine(orders, warmup, growth)
        f0 = page_faults()
        t0 = time.perf_counter()
        engine.submit_batch(parts[0])
        f1 = page_faults()
        for part in parts[1:]:
            engine.submit_batch(part)
        best = max(best, len(timed) / (time.perf_counter() - t0))
        faults = faults.worst(faults_since(f0))
        later = later.worst(faults_since(f1))
        if r == 0:
            first, mapped = finish_growth(growth), engine.memory_bytes
        del engine
    return Timed(best, faults, first, later, mapped)


def memory_figures(growth: dict[str, int], capacity: int) -> dict[str, Any]:
    """Resident set growth in bytes, and in MiB per million orders of capacity."""
    per_million = 1e6 / capacity / 2**20
    return {
        "resident_growth_bytes": growth,
        "mib_per_million_orders_before_first_order": round(growth["after_add_symbol"] * per_million, 1),
        "mib_per_million_orders_after_run": round(growth["after_run"] * per_million, 1),
    }


def compiler() -> str:
    cache = BUILD / "CMakeCache.txt"
    path = "c++"
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.startswith("CMAKE_CXX_COMPILER:"):
                path = line.split("=", 1)[1]
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else path


def machine() -> dict[str, object]:
    return describe(compiler=compiler())


def verdicts(figures: dict[str, float]) -> dict[str, bool]:
    met = {}
    for key, bound in TARGETS.items():
        value = figures[key]
        met[key] = value >= bound["min"] if "min" in bound else value <= bound["max"]
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2_000_000, help="timed operations in the stream")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is kept")
    parser.add_argument("--out", type=pathlib.Path, default=RESULT)
    args = parser.parse_args()

    load = machine()
    binary = build_native()
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        dump = pathlib.Path(tmp) / "ops.bin"
        native = run_native(binary, ops=args.ops, repeats=max(args.repeats, 5), dump=dump)
        orders = np.fromfile(dump, dtype=ORDER_DTYPE)
    warmup = native["warmup_ops"]
    single = single_orders_per_s(orders, warmup, repeats=args.repeats)
    batch = batch_orders_per_s(orders, warmup, repeats=args.repeats, rows=BATCH_ROWS)
    whole = batch_orders_per_s(orders, warmup, repeats=args.repeats, rows=len(orders))

    native_faults = {k: Faults(**v) for k, v in native["faults"].items()}
    timed_faults = native_faults["mixed"].worst(native_faults["latency"])
    figures = {
        "native_mixed_ops_per_s": native["native_mixed_ops_per_s"],
        "native_p50_ns": native["native_p50_ns"],
        "native_p99_ns": native["native_p99_ns"],
        "native_p999_ns": native["native_p999_ns"],
        "native_timed_minor_faults": timed_faults.minor,
        "pybind_single_orders_per_s": round(single.rate),
        "pybind_batch_orders_per_s": round(batch.rate),
        "batch_to_native_ratio": round(batch.rate / native["native_mixed_ops_per_s"], 3),
    }
    mix = native["mix"]
    total = mix["resting_adds"] + mix["cancels"] + mix["crossing"]
    result = {
        **figures,
        "native_p90_ns": native["native_p90_ns"],
        "native_max_ns": native["native_max_ns"],
        "native_batch_ops_per_s": native["native_batch_ops_per_s"],
        "pybind_batch_whole_stream_orders_per_s": round(whole.rate),
        "batch_rows": BATCH_ROWS,
        "page_faults_in_timed_region": {
            "native_mixed": dataclasses.asdict(native_faults["mixed"]),
            "native_latency": dataclasses.asdict(native_faults["latency"]),
            "native_batch": dataclasses.asdict(native_faults["batch"]),
            "pybind_single": dataclasses.asdict(single.faults),
            "pybind_batch": dataclasses.asdict(batch.faults),
            "pybind_batch_after_first_batch": dataclasses.asdict(batch.later_faults or Faults()),
            "pybind_batch_whole_stream": dataclasses.asdict(whole.faults),
        },
        "native_reserve_comparison": native["reserve"],
        "memory": {
            "capacity_orders": native["capacity_orders"],
            "max_price": native["max_price"],
            "native": {
                **memory_figures(native["resident_growth_bytes"], native["capacity_orders"]),
                "engine_memory_bytes": native["engine_memory_bytes"],
                "anon_huge_pages_growth_bytes": native["anon_huge_pages_growth_bytes"],
            },
            "pybind_batch": {
                **memory_figures(batch.resident_growth, CAPACITY),
                "engine_memory_bytes": batch.engine_memory_bytes,
            },
            "native_reserve": memory_figures(
                native["reserve"]["resident_growth_bytes"], native["capacity_orders"]
            ),
        },
        "mix": {
            "stated": "60% resting limit adds, 25% cancels, 15% crossing (5% market, 5% IOC, "
            "5% GTC limit through the touch); ~1,000 live orders; a few hundred price levels",
            "measured": {
                "ops": total,
                "resting_adds_pct": round(100 * mix["resting_adds"] / total, 2),
                "cancels_pct": round(100 * mix["cancels"] / total, 2),
                "crossing_pct": round(100 * mix["crossing"] / total, 2),
                "mean_live_orders": mix["mean_live_orders"],
                "max_price_levels": mix["max_price_levels"],
                "warmup_ops_untimed": warmup,
            },
        },
        "method": {
            "stream": "pt_engine generates the stream before timing (scratch engine keeps cancels "
            "on live ids), dumps it as ORDER_DTYPE rows; every figure replays that same stream on "
            "a fresh Engine(max_orders=2**20) with one symbol, max_price=1e6",
            "throughput": f"best of {max(args.repeats, 5)} native / {args.repeats} Python runs, "
            "wall time of the whole timed stream, single thread",
            "latency": "separate native replay timing every operation with lfence;rdtsc;lfence "
            "pairs; the median cost of an empty timed region "
            f"({native['timer_overhead_ticks']} ticks) is subtracted from each sample; ticks -> ns "
            f"by comparing rdtsc with steady_clock over the run ({native['ns_per_tick']} ns/tick)",
            "pybind_single": "Python for-loop calling Engine.submit / Engine.cancel per row with "
            "pre-converted int tuples (includes interpreter loop overhead)",
            "pybind_batch": f"Engine.submit_batch over contiguous chunks of {BATCH_ROWS} rows "
            "(includes result/fill array creation); batch_to_native_ratio = pybind_batch / native_mixed",
            "page_faults": "getrusage(RUSAGE_SELF) ru_minflt / ru_majflt read just before and just "
            "after each timed region (after construction, add_symbol and the untimed warm-up); the "
            "worst run of each best-of-N figure; native_timed_minor_faults is the worst of the "
            "native mixed throughput runs and the latency replay; pybind_batch_after_first_batch "
            "leaves out each run's first batch, which maps the binding's recycled output buffers",
            "engines": "every engine uses the default MemoryMode.PREFAULT; "
            "native_reserve_comparison is one more latency replay on a MemoryMode.RESERVE engine "
            "(lazily committed 4 KiB pages, the behaviour before issue 13)",
            "memory": "resident set growth (/proc/self/statm) from just before Engine() to after "
            "construction, after add_symbol, and after the timed run; per million orders of "
            "capacity = bytes * 1e6 / capacity_orders (it includes the one 1e6-tick symbol)",
        },
        "targets": TARGETS,
        "targets_met": verdicts(figures),
        "command": "flock /tmp/hftk8s-heavy.lock python bench/engine_bench.py",
        "machine": {**load, "loadavg_at_end": list(os.getloadavg())},
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**figures, "targets_met": result["targets_met"]}, indent=2))


if __name__ == "__main__":
    main()
