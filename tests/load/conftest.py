"""Load-generator tests run against a real HTTP server process (target_app.py) on loopback."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def target() -> Iterator[tuple[str, int]]:
    # The server binds port 0 and prints what it got: a port picked here and bound there could be
    # taken in between as the source port of one of the load tests' many outgoing connections.
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "target_app.py"), "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(proc.stdout.readline() if proc.stdout else ""), daemon=True
        )
        reader.start()
        reader.join(timeout=15)
        if not ready or not ready[0].strip().isdigit():
            raise RuntimeError(
                f"target_app.py did not report a listening port within 15 s (exit {proc.poll()})"
            )
        port = int(ready[0])
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
