"""JSON bodies parsed by orjson: strict (NaN, Infinity and out-of-range numbers are a parse error,
hence 422 before validation even starts) and several times faster than the stdlib parser.

An ``APIRoute`` subclass for the routers that take bodies (orders, users, echo alike, so the
benchmark's echo ceiling gets the same parser). Knows nothing about the routes themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # orjson.JSONDecodeError subclasses json.JSONDecodeError: FastAPI answers 422 for it.
            self._json = orjson.loads(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            request.__class__ = OrjsonRequest  # same layout, no copy: only json() differs
            return await handler(request)

        return orjson_handler
