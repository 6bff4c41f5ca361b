"""POST /v1/echo: the framework ceiling. Validates the same order body as POST /v1/orders with the
same pydantic model and returns it; it touches nothing else (no auth, Redis, engine or database).
Mounted only when HFT_ECHO=1, for benchmarks.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from hft_platform.backend.jsonroute import OrjsonRoute
from hft_platform.backend.models import EchoOut, OrderIn

router = APIRouter(prefix="/v1/echo", route_class=OrjsonRoute, tags=["benchmark"])


@router.post("", response_model=EchoOut)
async def echo(order: OrderIn) -> Response:
    return Response(orjson.dumps(order.model_dump()), media_type="application/json")
