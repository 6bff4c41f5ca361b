"""Benchmark: our load generator beside wrk, same nginx, same run.

Starts a real nginx (one worker, pinned to CPU 0) on a free loopback port serving a static body,
then pins each generator to CPU 1 (one core) in turn:
  1. wrk, closed loop, 1 thread, 32 connections: the baseline;
  2. our engine, closed loop, 32 connections: ``own_req_per_s`` (a subprocess pinned to CPU 1);
  3. our engine, open loop at 10,000 req/s: must stay valid (not saturated, on schedule).
Writes bench/results/loadgen.json. Run as ``flock /tmp/hft-bench.lock python bench/loadgen_bench.py``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from machine import describe

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "loadgen.json"
DURATION = float(os.environ.get("HFT_BENCH_SECONDS", "8"))
CONNS = 32

NGINX_CONF = """
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{{"status":"accepted"}}'; }}
  }}
}}
"""

OWN = """
import asyncio, json, os, sys, uvloop
from pytest_hftk8s.load.engine import EngineSpec, run_engine
from pytest_hftk8s.load.run import judge, latency_summary
os.sched_setaffinity(0, {1})
port, mode, rate, dur = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
req = f"GET / HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n\\r\\n".encode()
async def main():
    spec = EngineSpec(host="127.0.0.1", port=port, make_request=lambda i: req, mode=mode, rate=rate,
                      duration_s=dur, connections={conns})
    return await run_engine(spec, asyncio.Event())
r = uvloop.run(main())
span = r.ended - r.started
print(json.dumps({"ok": r.ok, "req_per_s": r.ok / span, "errors": r.errors, "cpu_util": r.cpu_s / r.wall_s,
                  "latency_ms": latency_summary(r), "invalid_reasons": judge(r, mode=mode)}))
""".replace("{conns}", str(CONNS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> dict[str, object]:
    return describe()


def run_wrk(port: int) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNS}", f"-d{DURATION:.0f}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=DURATION + 30,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"expected 'Requests/sec:' in wrk output, saw:\n{out}")
    return float(match.group(1))


def run_own(port: int, mode: str, rate: float) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run(
        [sys.executable, "-c", OWN, str(port), mode, str(rate), str(DURATION)],
        capture_output=True,
        text=True,
        timeout=DURATION + 60,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"our generator failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        sys.exit("expected wrk and nginx on PATH (Debian packages wrk, nginx-light)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hft-loadgen-bench-") as d:
        conf = pathlib.Path(d) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(d=d, port=port))
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", d], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            wrk = run_wrk(port)
            own = run_own(port, "closed", 0)
            own_open = run_own(port, "open", 10_000)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    result = {
        "own_req_per_s": round(float(own["req_per_s"]), 1),
        "wrk_req_per_s": wrk,
        "ratio_to_wrk": round(float(own["req_per_s"]) / wrk, 3),
        "own_closed_loop": own,
        "own_open_loop_10k": own_open,
        "connections": CONNS,
        "duration_s": DURATION,
        "target_req_per_s": 10_000,
        "machine": machine(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
