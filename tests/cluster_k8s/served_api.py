"""A kmock API and its HTTP server on a private event-loop thread, for tests that use sync clients.

The code under test uses the synchronous ``kubernetes`` client, so each API stand-in of this folder
(the emulator of ``conftest``, the preflight's, the whole-session one) serves from its own loop on a
daemon thread. This is that thread, written once: start, an optional background task (controllers),
hand over the API object and its URL, and stop (bounded).
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

import kmock
import yaml


class ServedApi:
    """Serves ``make_api()`` (a kmock handler with ``setup()``); ``background(api)`` runs beside it."""

    def __init__(
        self,
        make_api: Callable[[], Any],
        *,
        background: Callable[[Any], Awaitable[Any]] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self._make_api = make_api
        self._background = background
        self.loop = asyncio.new_event_loop()
        self._ready: Future[tuple[Any, str]] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self._main(),), daemon=True
        )
        self._thread.start()
        self.api, self.url = self._ready.result(timeout=start_timeout)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        task: asyncio.Task[Any] | None = None
        try:
            async with self._make_api() as api, kmock.Server(api) as server:
                api.setup()
                if self._background is not None:
                    task = asyncio.ensure_future(self._background(api))
                self._ready.set_result((api, str(server.url).rstrip("/")))
                await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise
        finally:
            if task is not None:
                task.cancel()

    def on_loop(self, fn: Callable[[], Awaitable[Any]], *, timeout: float = 10.0) -> Any:
        """Await ``fn()`` on the server's loop, where the API's state may be touched safely."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout=timeout)

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.loop.close()


def write_kubeconfig(path: pathlib.Path, *, server: str, context: str = "emulated") -> str:
    """A kubeconfig with one context pointing at ``server`` (bearer token auth)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "tester"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)
