"""Support for the platform's tests (fixtures re-exported by conftest.py): one real loopback stack (PostgreSQL, Redis, engine, backend)
per session, HTTP clients, registered users, and database/book comparisons.

Nothing is mocked: every test talks to real servers started from Debian's packages on free ports.
"""

from __future__ import annotations

import collections
import itertools
import os
import shutil
from collections.abc import Iterator

import httpx
import pytest
from hft_platform.devstack.stack import LoopbackStack

SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN")
RATE_LIMIT = 40  # orders/s per key: low enough that the 429 test trips it, high for the rest
_coids = itertools.count(1)


def _require(binary: str) -> None:
    if shutil.which(binary) is None and not binary.startswith("/"):
        pytest.skip(f"{binary} not installed; .ci/install installs it from Debian's packages")


@pytest.fixture(scope="session")
def stack() -> Iterator[LoopbackStack]:
    """The shared stack. Tests that kill or stop a server must leave it running again."""
    for binary in ("redis-server", "nginx"):
        _require(binary)
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL refuses root and these tests switch to the postgres user: run them as root")
    st = LoopbackStack(symbols=SYMBOLS, backends=1, rate_limit=RATE_LIMIT, with_nginx=True)
    st.start()
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture
def api(stack: LoopbackStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.backend_url(), timeout=15) as client:
        yield client


def register(api: httpx.Client, name: str = "trader") -> dict[str, str]:
    resp = api.post("/v1/users", json={"name": name})
    assert resp.status_code == 201, resp.text
    return {"X-API-Key": resp.json()["api_key"]}


@pytest.fixture
def auth(api: httpx.Client) -> dict[str, str]:
    """Headers of a freshly registered user."""
    return register(api)


def new_coid(prefix: str = "t") -> str:
    return f"{prefix}-{next(_coids)}"


def order(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "client_order_id": new_coid(),
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "price": 100.0,
        "qty": 10,
    }
    body.update(overrides)
    return body


def db_rows(stack: LoopbackStack, sql: str) -> list[list[str]]:
    out = stack.postgres.psql(sql, db="hft")
    return [line.split("|") for line in out.splitlines() if line]


def db_book(stack: LoopbackStack, symbol: str) -> dict[str, dict[float, tuple[int, int]]]:
    """Open orders in PostgreSQL aggregated like the engine's depth: side -> price -> (qty, count)."""
    book: dict[str, dict[float, tuple[int, int]]] = {"bids": {}, "asks": {}}
    for side, price, qty, n in db_rows(
        stack,
        "SELECT side, price, sum(remaining), count(*) FROM orders "
        f"WHERE symbol = '{symbol}' AND remaining > 0 GROUP BY side, price",
    ):
        book["bids" if side == "0" else "asks"][int(price) / 100] = (int(qty), int(n))
    return book


def engine_book(api: httpx.Client, symbol: str) -> dict[str, dict[float, tuple[int, int]]]:
    resp = api.get(f"/v1/book/{symbol}", params={"levels": 50})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return {s: {lv["price"]: (lv["qty"], lv["orders"]) for lv in body[s]} for s in ("bids", "asks")}


def fill_mismatches(stack: LoopbackStack) -> list[list[str]]:
    """Orders whose stored filled quantity differs from the sum of their stored fills."""
    return db_rows(
        stack,
        """
        WITH f AS (
            SELECT order_id, sum(qty) AS q FROM (
                SELECT taker_id AS order_id, qty FROM fills UNION ALL SELECT maker_id, qty FROM fills
            ) x GROUP BY order_id
        )
        SELECT o.order_id, o.filled, coalesce(f.q, 0) FROM orders o LEFT JOIN f USING (order_id)
        WHERE o.filled <> coalesce(f.q, 0)
           OR (o.state = 0 AND o.remaining <> o.qty - o.filled)
           OR o.remaining < 0
        """,
    )


def outcome_counts(values: list[int]) -> dict[int, int]:
    return dict(collections.Counter(values))
