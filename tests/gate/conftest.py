"""Gate tests: a scripted in-memory cluster plus a real HTTP server for warm-up registrations."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest


class Registrations(http.server.BaseHTTPRequestHandler):
    """POST /v1/users answers from ``server.script`` (status codes, then 201 forever)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        script = self.server.script  # type: ignore[attr-defined]
        status = script.pop(0) if script else 201
        payload = json.dumps({"user_id": 1, "api_key": "k"} if status < 300 else {"detail": "down"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registrations() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registrations)
    server.script = []  # type: ignore[attr-defined]
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
