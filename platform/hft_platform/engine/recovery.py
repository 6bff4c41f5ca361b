"""Rebuilding a shard's books from PostgreSQL after a (re)start.

Replays every stored order with remaining quantity, in original id order, as a resting limit order
of that remaining quantity. A resting book never crosses, so the replay must produce no fills; if it
does, the stored state is inconsistent and the service refuses to start. No writes to the database.
"""

from __future__ import annotations

import asyncpg

from hft_platform.domain import KINDS, EngineStatus
from hft_platform.engine import store
from hft_platform.engine.book import ShardBook
from hft_platform.engine.sequencer import LiveOrder

CHUNK = 4096


class RecoveryError(RuntimeError):
    """The stored open orders cannot be replayed into a consistent book."""


async def rebuild(conn: asyncpg.Connection, *, book: ShardBook, live: dict[int, LiveOrder]) -> int:
    """Load open orders into ``book`` and ``live``; returns how many were restored."""
    orders = await store.open_orders(conn, symbols=list(book.symbol_ids))
    limit = KINDS["limit"]
    for start in range(0, len(orders), CHUNK):
        chunk = orders[start : start + CHUNK]
        rows = [(o.order_id, o.price, o.remaining, book.symbol_ids[o.symbol], o.side, limit) for o in chunk]
        results, fills = book.run(rows)
        if fills:
            raise RecoveryError(
                f"expected replaying open orders to produce no fills, saw {len(fills)} "
                f"(first {fills[0]}); the stored book is crossed - inspect orders with remaining > 0"
            )
        for o, (filled, resting, status) in zip(chunk, results, strict=True):
            if status != EngineStatus.OK or resting != o.remaining or filled:
                raise RecoveryError(
                    f"expected order {o.order_id} to rest {o.remaining}, saw status {status}, "
                    f"resting {resting}, filled {filled}; the stored order is invalid for the engine"
                )
            live[o.order_id] = LiveOrder(o.user_id, o.symbol, o.remaining, o.filled)
    return len(orders)
