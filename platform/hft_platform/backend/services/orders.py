"""Order operations: place (rate limit, idempotency, route to the shard), cancel, look up, book depth.

Keyword-only functions over a :class:`~hft_platform.backend.context.BackendContext`. They return
plain values (the acknowledgement as JSON bytes, dicts) and raise ``services.errors`` types; they
never build HTTP responses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import orjson

from hft_platform.backend.context import BackendContext
from hft_platform.backend.models import OrderIn
from hft_platform.backend.services.engine_client import ack_from_record
from hft_platform.backend.services.errors import Conflict, InvalidRequest, NotFound, Unavailable
from hft_platform.domain import (
    KIND_NAMES,
    KINDS,
    SIDE_NAMES,
    SIDES,
    STATE_NAMES,
    Ack,
    EngineStatus,
    OrderState,
    PriceError,
    price_to_ticks,
    ticks_to_price,
)

_MARKET = KINDS["market"]
_STATUS_NAMES = {s.value: s.name.lower() for s in EngineStatus}
_STATE_BY_CODE = {s.value: name for s, name in STATE_NAMES.items()}  # plain ints: no enum construction
CONTROL_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Placed:
    body: bytes  # the acknowledgement JSON
    replay: bool  # a retry answered with the stored acknowledgement
    accepted: bool  # the engine accepted the order (it may still have expired unfilled)


def ack_body(ack: Ack, *, client_order_id: str) -> bytes:
    """The acknowledgement JSON; a function of the stored ack only, so retries get identical bytes."""
    return orjson.dumps(
        {
            "order_id": ack.order_id,
            "client_order_id": client_order_id,
            "status": _STATE_BY_CODE[ack.state],
            "filled_qty": ack.filled_qty,
            "resting_qty": ack.resting_qty,
            "reject_reason": None if ack.status == 0 else _STATUS_NAMES.get(ack.status, "unknown"),
        }
    )


def _ticks(order: OrderIn) -> int:
    if order.type == "market":
        return 0
    if order.price is None:
        raise InvalidRequest(
            f'expected a price for a {order.type} order, saw none; send e.g. "price": 100.25'
        )
    try:
        return price_to_ticks(order.price)
    except PriceError as e:
        raise InvalidRequest(str(e)) from e


async def place(ctx: BackendContext, *, user_id: int, order: OrderIn) -> Placed:
    """Place ``order`` and wait until it is durable."""
    if ctx.engine.for_symbol(order.symbol) is None:
        raise InvalidRequest(f"unknown symbol {order.symbol!r}; expected one of {', '.join(ctx.symbols)}")
    outcome = await ctx.order_path.submit(
        user_id=user_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDES[order.side],
        kind=KINDS[order.type],
        price=_ticks(order),
        qty=order.qty,
    )
    if isinstance(outcome, bytes):  # answered from the Redis ack cache
        return Placed(outcome, replay=True, accepted=b'"reject_reason":null' in outcome)
    ack = ack_from_record(outcome)
    body = ack_body(ack, client_order_id=order.client_order_id)
    ctx.order_path.remember(user_id=user_id, client_order_id=order.client_order_id, ack=body)
    return Placed(body, replay=ack.duplicate, accepted=ack.status == EngineStatus.OK)


async def _fetchrow(pool: asyncpg.Pool, query: str, *args: object) -> asyncpg.Record | None:
    try:
        return await pool.fetchrow(query, *args)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise Unavailable(f"PostgreSQL unavailable ({e!r}); retry") from e


async def get_order(ctx: BackendContext, *, user_id: int, order_id: int) -> dict:
    row = await _fetchrow(
        ctx.pool_for_order(order_id),
        "SELECT order_id, client_order_id, symbol, side, kind, price, qty, filled, remaining, state "
        "FROM orders WHERE order_id = $1 AND user_id = $2",
        order_id,
        user_id,
    )
    if row is None:
        raise NotFound(f"no order {order_id} for this API key")
    return {
        "order_id": row["order_id"],
        "client_order_id": row["client_order_id"],
        "symbol": row["symbol"],
        "side": SIDE_NAMES[row["side"]],
        "type": KIND_NAMES[row["kind"]],
        "price": None if row["kind"] == _MARKET else ticks_to_price(row["price"]),
        "qty": row["qty"],
        "filled_qty": row["filled"],
        "remaining_qty": row["remaining"],
        "status": STATE_NAMES[OrderState(row["state"])],
    }


async def cancel(ctx: BackendContext, *, user_id: int, order_id: int) -> dict:
    row = await _fetchrow(
        ctx.pool_for_order(order_id),
        "SELECT symbol, state FROM orders WHERE order_id = $1 AND user_id = $2",
        order_id,
        user_id,
    )
    if row is None:
        raise NotFound(f"no order {order_id} for this API key")
    if row["state"] != OrderState.OPEN:
        state = STATE_NAMES[OrderState(row["state"])]
        raise Conflict(f"expected an open order, order {order_id} is {state}; nothing to cancel")
    client = ctx.engine.for_symbol(row["symbol"])
    if client is None:
        raise Unavailable(f"no engine shard routes symbol {row['symbol']!r}; check HFT_ENGINE_SHARDS")
    ack = await client.cancel(user_id=user_id, order_id=order_id, symbol=row["symbol"])
    if ack.status == EngineStatus.OK:
        return {"order_id": order_id, "status": "cancelled", "cancelled_qty": ack.filled_qty}
    if ack.status == EngineStatus.NOT_OWNER:
        raise NotFound(f"no order {order_id} for this API key")
    raise Conflict(f"expected an open order, order {order_id} was filled or cancelled meanwhile")


async def book(ctx: BackendContext, *, symbol: str, levels: int) -> dict:
    client = ctx.engine.for_symbol(symbol)
    if client is None:
        raise NotFound(f"unknown symbol {symbol!r}; expected one of {', '.join(ctx.symbols)}")
    try:
        reply = await asyncio.wait_for(
            client.control("depth", symbol=symbol, levels=levels), CONTROL_TIMEOUT_S
        )
    except TimeoutError as e:
        raise Unavailable(
            f"engine shard {client.shard.address} did not answer in {CONTROL_TIMEOUT_S}s"
        ) from e
    if "error" in reply:
        raise NotFound(f"engine shard {client.shard.address} does not own {symbol!r}")

    def side(levels_: list) -> list[dict]:
        return [{"price": ticks_to_price(p), "qty": q, "orders": n} for p, q, n in levels_]

    return {"symbol": symbol, "bids": side(reply["bids"]), "asks": side(reply["asks"])}
