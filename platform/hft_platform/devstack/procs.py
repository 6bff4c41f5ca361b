"""Child processes with bounded waits: start, wait for a port or an HTTP 200, kill -9, stop.

Each child gets its own session (process group), so a kill reaches it and only it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A server of the loopback stack did not start, answer or stop in time."""


#: Below Linux's default ephemeral range (32768-60999), above most well-known services.
_PICK_FROM = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(*, attempts: int = 200) -> int:
    """A free loopback port *outside* the ephemeral range.

    ``bind(0)`` hands out an ephemeral port, and between closing it and the server binding it an
    outgoing connection (a load generator's thousands of them) may take it as its source port:
    the server then fails with EADDRINUSE. Ports below the ephemeral range are never handed out
    that way, so only another picker could race us, and picks are random.
    """
    high = _ephemeral_low()
    low = min(_PICK_FROM, max(1024, high - 2000))
    rng = random.SystemRandom()
    for _ in range(attempts):
        port = rng.randrange(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError(f"expected a free loopback port in {low}-{high - 1}, found none in {attempts} tries")


def http_status(port: int, path: str, *, timeout: float = 1.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Child:
    """One supervised child process writing its output to ``log_path``."""

    name: str
    argv: Sequence[str]
    log_path: str
    env: Mapping[str, str] | None = None
    user: str | None = None
    cwd: str | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None,
                user=self.user,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_until(self, check, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(
                    f"expected {self.name} to stay up while waiting for {what}, it exited with "
                    f"{self.proc.returncode if self.proc else '?'}; log tail:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.05)
        raise StackError(
            f"expected {what} within {timeout:.0f}s, did not happen; {self.name} log:\n{self.log_tail()}"
        )

    def kill9(self) -> None:
        """SIGKILL the whole process group, like ``kill -9`` of a pod's processes."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
