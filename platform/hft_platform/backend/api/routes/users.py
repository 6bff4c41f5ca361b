"""POST /v1/users: register and receive an API key."""

from __future__ import annotations

from fastapi import APIRouter

from hft_platform.backend import metrics
from hft_platform.backend.deps import Ctx, http_error
from hft_platform.backend.jsonroute import OrjsonRoute
from hft_platform.backend.models import Problem, UserIn, UserOut
from hft_platform.backend.services import users
from hft_platform.backend.services.errors import ServiceError

router = APIRouter(prefix="/v1/users", route_class=OrjsonRoute, tags=["users"])


@router.post("", status_code=201, response_model=UserOut, responses={503: {"model": Problem}})
async def register(body: UserIn, ctx: Ctx) -> UserOut:
    try:
        user_id, api_key = await users.register(ctx.pool, ctx.redis, name=body.name)
    except ServiceError as e:
        metrics.REGISTRATIONS.labels("error").inc()
        raise http_error(e) from e
    metrics.REGISTRATIONS.labels("ok").inc()
    return UserOut(user_id=user_id, api_key=api_key)
