"""/v1/orders: place (durable acknowledgement), look up and cancel orders."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Response

from hft_platform.backend import metrics
from hft_platform.backend.deps import Authenticated, http_error
from hft_platform.backend.jsonroute import OrjsonRoute
from hft_platform.backend.models import MAX_ORDER_ID, AckOut, CancelOut, OrderIn, OrderOut, Problem
from hft_platform.backend.services import orders
from hft_platform.backend.services.errors import InvalidRequest, RateLimited, ServiceError

router = APIRouter(prefix="/v1/orders", route_class=OrjsonRoute, tags=["orders"])

OrderIdPath = Annotated[int, Path(ge=1, le=MAX_ORDER_ID, description="order id from the acknowledgement")]
_ERRORS = {code: {"model": Problem} for code in (401, 404, 409, 413, 422, 429, 503)}
_accepted = metrics.ORDERS.labels("accepted")
_duplicate = metrics.ORDERS.labels("duplicate")
_rejected = metrics.ORDERS.labels("rejected")
_observe = metrics.ORDER_LATENCY.observe


@router.post("", response_model=AckOut, responses=_ERRORS)
async def place_order(order: OrderIn, caller: Authenticated) -> Response:
    """Submit an order. The reply is sent only after the order is committed to PostgreSQL.

    Retrying with the same ``client_order_id`` returns the same acknowledgement (header
    ``Idempotent-Replay: true``) and never creates a second order.
    """
    started = time.perf_counter()
    try:
        placed = await orders.place(caller.ctx, user_id=caller.user_id, order=order)
    except ServiceError as e:
        outcome = {InvalidRequest: "invalid", RateLimited: "rate_limited"}.get(type(e), "unavailable")
        metrics.ORDERS.labels(outcome).inc()
        raise http_error(e) from e
    _observe(time.perf_counter() - started)
    if placed.replay:
        _duplicate.inc()
        return Response(placed.body, media_type="application/json", headers={"Idempotent-Replay": "true"})
    (_accepted if placed.accepted else _rejected).inc()
    return Response(placed.body, media_type="application/json")


@router.get("/{order_id}", response_model=OrderOut, responses=_ERRORS)
async def get_order(order_id: OrderIdPath, caller: Authenticated) -> OrderOut:
    try:
        return OrderOut(**await orders.get_order(caller.ctx, user_id=caller.user_id, order_id=order_id))
    except ServiceError as e:
        raise http_error(e) from e


@router.delete("/{order_id}", response_model=CancelOut, responses=_ERRORS)
async def cancel_order(order_id: OrderIdPath, caller: Authenticated) -> CancelOut:
    """Cancel an open order; 409 if it is already filled, cancelled or expired."""
    try:
        return CancelOut(**await orders.cancel(caller.ctx, user_id=caller.user_id, order_id=order_id))
    except ServiceError as e:
        raise http_error(e) from e
