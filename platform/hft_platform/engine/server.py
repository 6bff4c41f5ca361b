"""Network edges of the engine service: the backend-facing wire-protocol server and the HTTP probe
endpoint (/metrics, /healthz, /readyz).

Parses bytes into requests for the sequencer and writes replies back; holds no order state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hft_platform import wire
from hft_platform.engine.sequencer import Sequencer

log = logging.getLogger(__name__)


class BackendConnection(asyncio.Protocol):
    """One persistent, pipelined connection from a backend process."""

    def __init__(self, sequencer: Sequencer) -> None:
        self._sequencer = sequencer
        self._reader = wire.FrameReader()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def send(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        started = time.perf_counter()
        seq = self._sequencer
        try:
            for frame in self._reader.feed(data):
                if frame.kind == wire.T_ORDERS:
                    seq.add_orders(self, list(wire.records(wire.ORDER_REC, frame.body)), started)
                elif frame.kind == wire.T_CANCELS:
                    seq.add_cancels(self, list(wire.records(wire.CANCEL_REC, frame.body)), started)
                elif frame.kind == wire.T_CONTROL:
                    seq.add_control(self, orjson.loads(frame.body), started)
                else:
                    raise wire.FrameError(f"expected a request frame type 1, 2 or 4, saw {frame.kind}")
        except (wire.FrameError, orjson.JSONDecodeError) as e:
            log.warning("closing backend connection after a bad frame: %s", e)
            if self._transport is not None:
                self._transport.close()


async def serve_probes(*, host: str, port: int, is_ready: Callable[[], bool]) -> asyncio.Server:
    """Minimal HTTP/1.1 responder for Prometheus and the kubelet; one request per connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = head.split(b" ", 2)[1].split(b"?", 1)[0] if head.count(b" ") >= 2 else b""
            if path == b"/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            elif path == b"/healthz":
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            elif path == b"/readyz":
                ready = is_ready()
                status = "200 OK" if ready else "503 Service Unavailable"
                ctype, body = "text/plain", b"ready\n" if ready else b"not ready\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host=host, port=port)
