"""The order vocabulary shared by the backend and the engine service: codes, ticks, acknowledgements.

Pure data and arithmetic: no I/O, no HTTP, no database, and no import of the compiled engine
(the backend image must not need it). ``tests/platform`` checks the mirrored engine codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

#: Prices on the API are decimals with two places; the engine works in integer ticks.
TICKS_PER_UNIT = 100
#: Largest price tick the engine accepts per symbol (``add_symbol(max_price=...)``): 10,000.00.
MAX_PRICE_TICKS = 1_000_000
MAX_QTY = 1_000_000
MAX_CLIENT_ORDER_ID = 64
MAX_SYMBOL = 12

#: Order ids are handed out in blocks of this many (one ``nextval('order_id_blocks')`` each).
ID_BLOCK = 1024

SIDES: dict[str, int] = {"buy": 0, "sell": 1}
KINDS: dict[str, int] = {"limit": 0, "market": 1, "ioc": 2}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
KIND_NAMES = {v: k for k, v in KINDS.items()}
KIND_CANCEL = 3


class EngineStatus(IntEnum):
    """Mirror of ``hft_engine.Status`` (values fixed by CONTRACTS.md), plus platform-level codes."""

    OK = 0
    INVALID_QTY = 1
    INVALID_PRICE = 2
    DUPLICATE_ID = 3
    UNKNOWN_ORDER = 4
    UNKNOWN_SYMBOL = 5
    INVALID_SIDE = 6
    INVALID_TYPE = 7
    CAPACITY = 8
    # Codes the engine service adds on top of the engine's own.
    NOT_OWNER = 100
    SHARD_UNAVAILABLE = 101


class OrderState(IntEnum):
    """Lifecycle of a stored order (``orders.state``)."""

    OPEN = 0  # resting on the book with remaining quantity
    FILLED = 1
    CANCELLED = 2  # cancelled by its owner
    REJECTED = 3  # refused by the engine; never touched the book
    EXPIRED = 4  # market / IOC remainder dropped without resting


STATE_NAMES = {s: s.name.lower() for s in OrderState}


class PriceError(ValueError):
    """A price that cannot be expressed in whole ticks within the engine's range."""


def price_to_ticks(price: float) -> int:
    """Exact tick count for ``price`` or :class:`PriceError` saying why not."""
    if not math.isfinite(price):
        raise PriceError(f"expected a finite price, saw {price!r}")
    scaled = price * TICKS_PER_UNIT
    ticks = round(scaled)
    if abs(scaled - ticks) > 1e-6:
        raise PriceError(f"expected a multiple of {1 / TICKS_PER_UNIT:.2f}, saw {price!r}")
    if not 1 <= ticks <= MAX_PRICE_TICKS:
        raise PriceError(
            f"expected a price in [{1 / TICKS_PER_UNIT:.2f}, {MAX_PRICE_TICKS / TICKS_PER_UNIT:.2f}], saw {price!r}"
        )
    return ticks


def ticks_to_price(ticks: int) -> float:
    return ticks / TICKS_PER_UNIT


def shard_block(first_id: int, *, shard: int, shards: int) -> int:
    """The first id of a shard's block, from the first id of a block its own database handed out.

    Database shard ``shard`` of ``shards`` turns its block ``b`` into block ``b * shards + shard``:
    the ids of all shards interleave without overlap, each shard's ids still only grow (also across
    a restart), and every id names the database that stored it (:func:`shard_of_order`). With one
    shard this is the identity.
    """
    block = (first_id - 1) // ID_BLOCK
    return (block * shards + shard) * ID_BLOCK + 1


def shard_of_order(order_id: int, *, shards: int) -> int:
    """Which of ``shards`` order databases stored ``order_id`` (see :func:`shard_block`)."""
    return ((order_id - 1) // ID_BLOCK) % shards


def state_after_submit(*, status: int, kind: int, qty: int, filled: int, resting: int) -> OrderState:
    """Stored state of an order right after the engine processed it."""
    if status != EngineStatus.OK:
        return OrderState.REJECTED
    if filled >= qty:
        return OrderState.FILLED
    if resting > 0:
        return OrderState.OPEN
    return OrderState.EXPIRED


@dataclass(frozen=True, slots=True)
class Ack:
    """The acknowledgement of one order: what the engine decided, fixed at its first commit.

    A retry with the same ``client_order_id`` gets this same record back.
    """

    order_id: int
    status: int  # EngineStatus
    state: int  # OrderState right after submit
    filled_qty: int
    resting_qty: int
    duplicate: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == EngineStatus.OK
