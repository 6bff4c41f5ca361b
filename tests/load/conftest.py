"""Load-generator tests run against a real HTTP server process (target_app.py) on loopback."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def target() -> Iterator[tuple[str, int]]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "target_app.py"), str(port)])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("target_app.py did not start listening within 15 s") from None
                time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
