"""Builds the FastAPI application: lifespan (open/close the context), router, error handlers, body limit.

No request logic here; see ``api.routes`` and ``services``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hft_platform.backend import metrics
from hft_platform.backend.api.main import build_router
from hft_platform.backend.bodylimit import BodyLimit
from hft_platform.backend.context import open_context
from hft_platform.settings import Settings, load_settings


def _validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    path = request.url.path
    if request.method == "POST" and path == "/v1/orders":
        metrics.ORDERS.labels("invalid").inc()
    elif request.method == "POST" and path == "/v1/users":
        metrics.REGISTRATIONS.labels("invalid").inc()
    # Echoing inputs back could carry NaN or huge values; say where and what instead.
    detail = [
        {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", ""))
            + (f": {err['ctx']['error']}" if "error" in err.get("ctx", {}) else ""),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ctx = await open_context(settings)
        try:
            yield
        finally:
            await app.state.ctx.close()

    app = FastAPI(
        title="hft-platform backend",
        version="0.1.0",
        description="Reference trading platform: durable (group-committed) order entry over a C++ matching engine.",
        lifespan=lifespan,
    )
    app.include_router(build_router(with_echo=settings.echo))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(request, exc)

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
