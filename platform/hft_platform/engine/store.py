"""PostgreSQL access of the engine service: id blocks, idempotency look-ups, book rebuild, batch write.

Every statement here is one round trip; the batch write is one statement (data-modifying CTEs), so
it is one implicit transaction that PostgreSQL commits (``synchronous_commit`` on) before returning.
No engine calls and no sockets to backends here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from hft_platform.domain import ID_BLOCK, shard_block  # ID_BLOCK: INCREMENT BY of order_id_blocks

WRITE_SQL = """
WITH new_orders AS (
    INSERT INTO orders (order_id, user_id, client_order_id, symbol, side, kind, price, qty,
                        ack_status, ack_state, ack_filled, ack_resting, filled, remaining, state)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int2[], $6::int2[],
                         $7::bigint[], $8::bigint[], $9::int2[], $10::int2[], $11::bigint[], $12::bigint[],
                         $13::bigint[], $14::bigint[], $15::int2[])
    RETURNING 1
), moved AS (
    UPDATE orders AS o SET filled = u.filled, remaining = u.remaining, state = u.state
    FROM unnest($16::bigint[], $17::bigint[], $18::bigint[], $19::int2[]) AS u(order_id, filled, remaining, state)
    WHERE o.order_id = u.order_id
    RETURNING 1
), new_fills AS (
    INSERT INTO fills (taker_id, seq, maker_id, symbol, price, qty)
    SELECT * FROM unnest($20::bigint[], $21::int4[], $22::bigint[], $23::text[], $24::bigint[], $25::bigint[])
    RETURNING 1
)
-- Every update must hit a stored order; if one does not, dividing by zero aborts (rolls back) the
-- whole statement, so a book that disagrees with the database is never half-committed.
SELECT (SELECT count(*) FROM new_orders), (SELECT count(*) FROM new_fills),
       1 / ((SELECT count(*) FROM moved) = $26)::int
"""

LOOKUP_SQL = """
SELECT o.user_id, o.client_order_id, o.order_id, o.ack_status, o.ack_state, o.ack_filled, o.ack_resting
FROM orders AS o
JOIN unnest($1::bigint[], $2::text[]) AS k(user_id, client_order_id)
  ON o.user_id = k.user_id AND o.client_order_id = k.client_order_id
"""

OPEN_ORDERS_SQL = """
SELECT order_id, user_id, symbol, side, price, qty, filled, remaining
FROM orders WHERE symbol = ANY($1::text[]) AND remaining > 0
ORDER BY order_id
"""


class CommitMismatch(RuntimeError):
    """The batch write touched a different number of rows than it carried: the book is suspect."""


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: int
    user_id: int
    symbol: str
    side: int
    price: int
    qty: int
    filled: int
    remaining: int


async def allocate_ids(
    conn: asyncpg.Connection, *, blocks: int, shard: int = 0, shards: int = 1
) -> list[int]:
    """Reserve ``blocks`` blocks of ids for database shard ``shard`` of ``shards``; returns the first
    id of each block (the sequence's INCREMENT BY is ``ID_BLOCK``)."""
    rows = await conn.fetch("SELECT nextval('order_id_blocks') FROM generate_series(1, $1)", blocks)
    return [shard_block(r[0] - ID_BLOCK + 1, shard=shard, shards=shards) for r in rows]


async def lookup_acks(
    conn: asyncpg.Connection, *, keys: Sequence[tuple[int, str]]
) -> list[tuple[int, str, int, int, int, int, int]]:
    """Stored acknowledgements for (user_id, client_order_id) keys that already have an order."""
    users = [k[0] for k in keys]
    coids = [k[1] for k in keys]
    return [tuple(r) for r in await conn.fetch(LOOKUP_SQL, users, coids)]


async def open_orders(conn: asyncpg.Connection, *, symbols: Sequence[str]) -> list[OpenOrder]:
    rows = await conn.fetch(OPEN_ORDERS_SQL, list(symbols))
    return [OpenOrder(*r) for r in rows]


async def write_batch(
    conn: asyncpg.Connection,
    *,
    new_orders: Sequence[list],
    updates: Sequence[tuple[int, int, int, int]],
    fills: Sequence[tuple[int, int, int, str, int, int]],
) -> None:
    """Commit one group: new order rows (15 columns), moved orders, new fills. Raises on mismatch."""
    cols_o = list(zip(*new_orders, strict=True)) if new_orders else [()] * 15
    cols_u = list(zip(*updates, strict=True)) if updates else [()] * 4
    cols_f = list(zip(*fills, strict=True)) if fills else [()] * 6
    args = [list(c) for c in (*cols_o, *cols_u, *cols_f)]
    try:
        n_orders, n_fills, _ = await conn.fetchrow(WRITE_SQL, *args, len(updates))
    except asyncpg.DivisionByZeroError as e:
        raise CommitMismatch(
            f"expected all {len(updates)} updated orders to exist in the database, some did not; "
            "the in-memory book no longer matches it (nothing of this batch was committed)"
        ) from e
    if (n_orders, n_fills) != (len(new_orders), len(fills)):
        raise CommitMismatch(
            f"expected {len(new_orders)} orders and {len(fills)} fills written, saw {n_orders}, {n_fills}"
        )
