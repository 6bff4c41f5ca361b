"""One persistent client connection that keeps itself up: the lifecycle both hot-path clients share.

:class:`ReconnectingClient` is an ``asyncio.Protocol`` that connects in the background, reconnects
with capped exponential backoff (50 ms doubling to 1 s) after a loss, fails every waiting request
when the connection drops or the client closes, and runs a sweeper that fails requests waiting
longer than their bound. Subclasses own the wire format and the waiting requests; this module
knows nothing about orders or Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

_FIRST_RETRY_S = 0.05
_MAX_RETRY_S = 1.0


class ReconnectingClient(asyncio.Protocol):
    """Base of the engine-shard and Redis clients: connect, reconnect, fail waiters, sweep."""

    #: The reason waiting requests fail with when :meth:`close` is called.
    closing_reason = "client closed"

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._lost = asyncio.Event()
        self._closed = False

    # -- what subclasses provide ------------------------------------------------------------------
    def peer(self) -> str:
        """Who is on the other end, for log lines."""
        return f"{self.host}:{self.port}"

    def _fail_all(self, why: str) -> None:
        """Fail every waiting request with ``why``."""
        raise NotImplementedError

    async def _sweep(self) -> None:
        """Forever: fail requests that waited longer than their bound (runs once a second or so)."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._keep_connected()), asyncio.create_task(self._sweep())]

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._transport is not None:
            self._transport.close()
        self._fail_all(self.closing_reason)

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def _keep_connected(self) -> None:
        assert self._loop is not None
        delay = _FIRST_RETRY_S
        while not self._closed:
            if not self.connected:
                try:
                    await self._loop.create_connection(lambda: self, self.host, self.port)
                    delay = _FIRST_RETRY_S
                except OSError as e:
                    log.info("%s not reachable (%s); retrying in %.2fs", self.peer(), e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_RETRY_S)
                    continue
            self._lost.clear()
            await self._lost.wait()  # set by connection_lost

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail_all("connection lost")
        self._lost.set()
