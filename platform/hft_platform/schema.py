"""The PostgreSQL schema (users, orders, fills) and its idempotent application.

Both processes call :func:`apply_schema` at start; an advisory lock serialises concurrent starters.
Only DDL lives here: no queries for the hot path.
"""

from __future__ import annotations

import asyncpg

SCHEMA_LOCK_KEY = 0x4846_5400  # "HFT\0": any fixed key; it only serialises concurrent starters

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS users (
    user_id      bigserial PRIMARY KEY,
    name         text NOT NULL,
    api_key_hash bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Order ids come from this sequence in blocks of 1024 (one nextval per block), so every shard's ids
-- are unique and always above any id that was ever committed, also after a crash.
CREATE SEQUENCE IF NOT EXISTS order_id_blocks INCREMENT BY 1024 MINVALUE 1024 START WITH 1024;

CREATE TABLE IF NOT EXISTS orders (
    order_id        bigint PRIMARY KEY,
    user_id         bigint NOT NULL,          -- no FK: its per-row check locks the user row (WAL per insert)
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            smallint NOT NULL,
    kind            smallint NOT NULL,
    price           bigint NOT NULL,          -- ticks; 0 for market orders
    qty             bigint NOT NULL,
    -- the acknowledgement, fixed at the first commit and returned again to retries
    ack_status      smallint NOT NULL,
    ack_state       smallint NOT NULL,
    ack_filled      bigint NOT NULL,
    ack_resting     bigint NOT NULL,
    -- the current state, moved by later fills and cancels
    filled          bigint NOT NULL,
    remaining       bigint NOT NULL,          -- quantity resting on the book now
    state           smallint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_client_order_id_key UNIQUE (user_id, client_order_id)
) WITH (fillfactor = 85);
-- Deliberately no index on the mutable columns (remaining, state): fills and cancels then update
-- rows in place (HOT) without touching any index. The rebuild after a restart scans instead.

-- One row per execution; (taker_id, seq) makes applying a taker's fills twice impossible.
CREATE TABLE IF NOT EXISTS fills (
    taker_id bigint NOT NULL,
    seq      integer NOT NULL,
    maker_id bigint NOT NULL,
    symbol   text NOT NULL,
    price    bigint NOT NULL,
    qty      bigint NOT NULL,
    PRIMARY KEY (taker_id, seq)
);
"""


async def apply_schema(conn: asyncpg.Connection) -> None:
    """Create whatever is missing; safe to run from many processes at once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        await conn.execute(SCHEMA_SQL)
