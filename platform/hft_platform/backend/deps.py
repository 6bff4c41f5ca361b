"""FastAPI dependencies: the request context, the authenticated user, and service-error translation.

With the routes, the only place that knows HTTP status codes and raises ``HTTPException``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from hft_platform.backend import metrics
from hft_platform.backend.context import BackendContext
from hft_platform.backend.services.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

_STATUS: dict[type[ServiceError], int] = {
    InvalidRequest: 422,
    Unauthenticated: 401,
    RateLimited: 429,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
}


def http_error(error: ServiceError) -> HTTPException:
    status = _STATUS.get(type(error), 500)
    headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
    if status in (429, 503):
        headers = {"Retry-After": "1"}
    return HTTPException(status_code=status, detail=str(error), headers=headers)


async def get_ctx(request: Request) -> BackendContext:
    return request.app.state.ctx


Ctx = Annotated[BackendContext, Depends(get_ctx)]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: who is calling, and the context to serve it with."""

    user_id: int
    ctx: BackendContext


async def current_caller(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="API key from POST /v1/users")] = None,
) -> Caller:
    ctx: BackendContext = request.app.state.ctx
    if x_api_key is not None:
        user_id = ctx.keys.cached(x_api_key)
        if user_id is not None:
            return Caller(user_id, ctx)
    try:
        return Caller(await ctx.keys.resolve(api_key=x_api_key), ctx)
    except ServiceError as e:
        if request.url.path == "/v1/orders" and request.method == "POST":
            metrics.ORDERS.labels("unauthorized" if isinstance(e, Unauthenticated) else "unavailable").inc()
        raise http_error(e) from e


#: One dependency for authenticated routes (each extra dependency costs per request).
Authenticated = Annotated[Caller, Depends(current_caller)]
