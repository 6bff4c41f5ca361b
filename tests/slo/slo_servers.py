"""Real servers for SLO tests: Debian's Prometheus and the prometheus_client exporter app.

Both run on free loopback ports with temporary storage; ``stop()`` always terminates them.
Imported by tests/slo and tests/plugin conftests (by path: tests have no packages).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

HERE = pathlib.Path(__file__).resolve().parent
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE = "500ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {url} to answer 200 within {timeout}s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Exporter:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "exporter_app.py"), str(self.port)], stdout=subprocess.DEVNULL
        )
        _wait_http(f"{self.url}/metrics", self.proc, 20)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ctl(self, op: str, metric: str, *, value: float = 1, **labels: str) -> None:
        data = json.dumps({"op": op, "metric": metric, "labels": labels, "value": value}).encode()
        req = urllib.request.Request(f"{self.url}/ctl", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def stop(self) -> None:
        _stop(self.proc)


class Prometheus:
    def __init__(self, targets: list[str]) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hft-test-prom-"))
        self.port = free_port()
        config = (
            f"global:\n  scrape_interval: {SCRAPE}\n  evaluation_interval: {SCRAPE}\n"
            f"scrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )
        (self.dir / "prometheus.yml").write_text(config)
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_http(f"{self.url}/-/ready", self.proc, 30)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_target(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?query=up", timeout=2) as r:
                rows = json.load(r)["data"]["result"]
            if rows and all(row["value"][1] == "1" for row in rows):
                return
            time.sleep(0.1)
        raise TimeoutError(f"expected Prometheus to scrape its targets within {timeout}s")

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def exporter_and_prometheus() -> Iterator[tuple[Exporter, Prometheus]]:
    exporter = Exporter()
    try:
        prom = Prometheus([f"127.0.0.1:{exporter.port}"])
        try:
            prom.wait_for_target()
            yield exporter, prom
        finally:
            prom.stop()
    finally:
        exporter.stop()
