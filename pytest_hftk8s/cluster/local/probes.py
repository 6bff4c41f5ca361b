"""Probe handlers and Kubernetes probe-result semantics for the local backend.

Its job: run one httpGet / tcpSocket / exec check against a pod (bounded by the probe's timeout), and
keep each probe's result the way kubelet's prober worker does (initialDelaySeconds, periodSeconds,
successThreshold, failureThreshold; readiness starts failed, liveness starts passing). It must not
decide restarts itself: the pod supervisor acts on the results.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_hftk8s.cluster.local.model import ProbeSpec


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    message: str


def run_probe(
    spec: ProbeSpec, *, pod_ip: str, pid: int | None = None, env: Mapping[str, str] | None = None
) -> ProbeOutcome:
    """Run one check now. ``pid`` is the container's main process: exec probes run in its namespaces."""
    try:
        if spec.handler == "httpGet":
            return _http(spec, spec.host or pod_ip)
        if spec.handler == "tcpSocket":
            with socket.create_connection((spec.host or pod_ip, spec.port), timeout=spec.timeout):
                return ProbeOutcome(True, "")
        if spec.handler == "exec":
            return _exec(spec, pid=pid, env=env or {})
    except (OSError, http.client.HTTPException) as e:
        target = f"{spec.host or pod_ip}:{spec.port}"
        return ProbeOutcome(
            False, f"{spec.handler} {target}{spec.path if spec.handler == 'httpGet' else ''}: {e}"
        )
    return ProbeOutcome(False, f"unknown probe handler {spec.handler}")


def _http(spec: ProbeSpec, host: str) -> ProbeOutcome:
    cls = http.client.HTTPSConnection if spec.scheme.upper() == "HTTPS" else http.client.HTTPConnection
    conn = cls(host, spec.port, timeout=spec.timeout)
    try:
        headers = {"User-Agent": "kube-probe/1.37", "Accept": "*/*", **dict(spec.headers)}
        conn.request("GET", spec.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(1024).decode(errors="replace").strip()
    finally:
        conn.close()
    if 200 <= resp.status < 400:  # kubelet: any 2xx/3xx is success
        return ProbeOutcome(True, "")
    return ProbeOutcome(
        False, f"HTTP probe failed with statuscode: {resp.status} ({spec.path}): {body[:200]}"
    )


def _exec(spec: ProbeSpec, *, pid: int | None, env: Mapping[str, str]) -> ProbeOutcome:
    if pid is None:
        return ProbeOutcome(False, "exec probe: container is not running")
    argv = ["nsenter", "-m", "-u", "-t", str(pid), "--", *spec.command]
    try:
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=spec.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return ProbeOutcome(False, f"command {list(spec.command)} timed out after {spec.timeout:g}s")
    if done.returncode == 0:
        return ProbeOutcome(True, "")
    out = (done.stdout + done.stderr).strip()[-300:]
    return ProbeOutcome(False, f"command {list(spec.command)} exited {done.returncode}: {out}")


@dataclass
class ProbeState:
    """One probe of one container instance; reset by creating a new one on restart."""

    kind: str  # "startup" | "readiness" | "liveness"
    spec: ProbeSpec
    started_at: float
    result: bool = False
    last_error: str = ""
    in_flight: bool = False
    _successes: int = 0
    _failures: int = 0
    _next_due: float = 0.0

    def __post_init__(self) -> None:
        self.result = self.kind == "liveness"  # kubelet's initial values
        self._next_due = self.started_at + self.spec.initial_delay

    def due(self, now: float) -> bool:
        return not self.in_flight and now >= self._next_due

    def begin(self, now: float) -> None:
        self.in_flight = True
        self._next_due = now + self.spec.period

    def record(self, outcome: ProbeOutcome) -> bool:
        """Apply one outcome; return True when the probe's result flipped."""
        self.in_flight = False
        if outcome.ok:
            self._successes, self._failures = self._successes + 1, 0
        else:
            self._successes, self._failures = 0, self._failures + 1
            self.last_error = outcome.message
        before = self.result
        if outcome.ok and self._successes >= self.spec.success_threshold:
            self.result = True
        elif not outcome.ok and self._failures >= self.spec.failure_threshold:
            self.result = False
        return before != self.result

    @property
    def failed(self) -> bool:
        """Failure threshold reached (for liveness/startup: the container must be killed)."""
        return self._failures >= self.spec.failure_threshold
