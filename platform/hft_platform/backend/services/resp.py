"""A minimal pipelined Redis connection for the order hot path (RESP over asyncio, hiredis parsing).

redis-py costs tens of microseconds of Python per call (pool, retry wrapper, packing); the order path
makes one call per event-loop tick, so it talks RESP directly: commands are packed by hiredis, written
without waiting, and replies are matched to futures in FIFO order. On connection loss every waiting
future fails and the client reconnects in the background. Knows nothing about orders.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import urllib.parse
from collections.abc import Callable

import hiredis

from hft_platform.backend.services.reconnecting import ReconnectingClient

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 5.0


class RespUnavailable(ConnectionError):
    """Redis did not answer (not connected, connection lost, or timed out)."""


class RespClient(ReconnectingClient):
    def __init__(self, url: str, *, on_connect: Callable[[], list[tuple]] | None = None) -> None:
        parsed = urllib.parse.urlparse(url)
        super().__init__(host=parsed.hostname or "localhost", port=parsed.port or 6379)
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self._on_connect = on_connect
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[tuple[asyncio.Future | None, float]] = collections.deque()
        self._out: list[bytes] = []  # commands of this tick, written together at its end

    def peer(self) -> str:
        return f"Redis {self.host}:{self.port}"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            deadline = time.monotonic() - REPLY_TIMEOUT_S
            for fut, sent in self._waiting:
                if sent >= deadline:
                    break
                if fut is not None and not fut.done():
                    fut.set_exception(RespUnavailable(f"no reply from Redis in {REPLY_TIMEOUT_S:.0f}s"))

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._reader = hiredis.Reader()
        if self.db:
            self.send_and_forget("SELECT", self.db)
        for command in self._on_connect() if self._on_connect else ():
            self.send_and_forget(*command)

    def connection_lost(self, exc: Exception | None) -> None:
        self._out.clear()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            reply = reader.gets()
            if reply is False:
                return
            fut, _ = waiting.popleft()
            if fut is None:
                if isinstance(reply, hiredis.ReplyError):
                    log.warning("Redis error on a fire-and-forget command: %s", reply)
            elif not fut.done():
                fut.set_result(reply)  # a hiredis.ReplyError value is the caller's to inspect

    # -- commands ------------------------------------------------------------------------------
    def command(self, *args: object) -> asyncio.Future:
        """Send now (pipelined); the future gets the reply, or RespUnavailable."""
        assert self._loop is not None
        fut = self._loop.create_future()
        transport = self._transport
        if transport is None or transport.is_closing():
            fut.set_exception(RespUnavailable(f"not connected to Redis at {self.host}:{self.port}"))
            return fut
        self._queue(hiredis.pack_command(args))
        self._waiting.append((fut, time.monotonic()))
        return fut

    def send_and_forget(self, *args: object) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._queue(hiredis.pack_command(args))
        self._waiting.append((None, time.monotonic()))

    def _queue(self, packed: bytes) -> None:
        # One write (one syscall) per tick for everything the tick sent, in order.
        if not self._out:
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        self._out.append(packed)

    def _flush(self) -> None:
        out, self._out = self._out, []
        transport = self._transport
        if transport is not None and out:
            transport.write(b"".join(out))

    def _fail_all(self, why: str) -> None:
        waiting, self._waiting = self._waiting, collections.deque()
        for fut, _ in waiting:
            if fut is not None and not fut.done():
                fut.set_exception(RespUnavailable(f"Redis {self.host}:{self.port}: {why}"))
