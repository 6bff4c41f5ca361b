"""The database checks (``pytest_hftk8s.slo.database``) against the real platform: they pass after a
trading load run, and each one fails - with a message that says what happened - when PostgreSQL is
changed the way the failure it guards against would change it (a fill applied twice, a book that
drifted from the database, acknowledged orders lost, a run that did not trade).

The module starts its own loopback stack instead of the session's ``stack``: the load generator
trades eight symbols (the session stack routes four, so half its orders would be refused), a
resting-limits-only run leaves hundreds of orders on the book around 100.00 (where the other
platform tests place theirs), and ``FillIntegrity`` / ``OrdersTraded`` read the whole database - so
neither side's data may leak into the other's assertions. Every change made to PostgreSQL here is
undone (in ``finally``) and the undoing is checked by the check passing again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from hft_platform.devstack.stack import LoopbackStack

from pytest_hftk8s.load import api
from pytest_hftk8s.load.run import LoadRun
from pytest_hftk8s.results import AckCheck, FillCheck, SloResult, Window
from pytest_hftk8s.slo.database import AckedOrdersStored, DbTarget, FillIntegrity, OrdersTraded
from pytest_hftk8s.slo.evaluate import evaluate

pytestmark = pytest.mark.slow

RATE = 150  # orders/s
DURATION_S = 4.0


# -- the stack and its database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trading_stack() -> Iterator[LoopbackStack]:
    """A stack of its own that routes every symbol the load generator trades, behind nginx."""
    for binary in ("redis-server", "nginx"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed; .ci/install installs it from Debian's packages")
    if os.geteuid() != 0:
        pytest.skip("PostgreSQL refuses root and these tests switch to the postgres user: run them as root")
    st = LoopbackStack(symbols=api.SYMBOLS, with_nginx=True)
    st.start()
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def db(trading_stack: LoopbackStack) -> DbTarget:
    return DbTarget(host="127.0.0.1", port=trading_stack.postgres.port, user="hft", database="hft")


def sql(db: DbTarget, *statements: tuple[Any, ...]) -> list[list[tuple[Any, ...]]]:
    """Run ``(query, *args)`` statements in one committed transaction; the rows of each."""

    async def run() -> list[list[tuple[Any, ...]]]:
        conn = await asyncpg.connect(host=db.host, port=db.port, user=db.user, database=db.database)
        try:
            async with conn.transaction():
                return [[tuple(r) for r in await conn.fetch(q, *args)] for q, *args in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_quiescent(db: DbTarget, *, timeout_s: float = 15.0) -> None:
    """Until orders and fills stop changing (a request that timed out may still be committing)."""
    query = ("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM fills), "
             "(SELECT coalesce(sum(remaining), 0) FROM orders)",)  # fmt: skip
    last = sql(db, query)[0]
    deadline = time.monotonic() + timeout_s
    while True:
        time.sleep(0.3)
        now = sql(db, query)[0]
        if now == last:
            return
        assert time.monotonic() < deadline, (
            f"expected the database to settle in {timeout_s}s, it kept changing"
        )
        last = now


def run_load(stack: LoopbackStack, *, name: str, seed: int, mix: dict[str, float] | None = None) -> LoadRun:
    assert stack.nginx is not None
    with LoadRun(
        base_url=("127.0.0.1", stack.nginx.port), mode="open", rate=RATE, duration=DURATION_S,
        name=name, seed=seed, mix=mix,
    ) as run:  # fmt: skip
        pass
    assert run.summary is not None
    return run


def check(stack: LoopbackStack, db: DbTarget, *checks: Any, start: float) -> list[SloResult]:
    return evaluate(list(checks), Window(start, time.time()), None, db=db, api_url=stack.front_url)


def fill_integrity(stack: LoopbackStack, db: DbTarget, start: float) -> tuple[SloResult, FillCheck]:
    (res,) = check(stack, db, FillIntegrity(), start=start)
    assert isinstance(res.detail, FillCheck), res.message
    return res, res.detail


# -- one trading run, checked the moment it ended ---------------------------------------------


@dataclass
class Traded:
    run: LoadRun
    start: float
    acked: tuple[tuple[str, str], ...]
    integrity: SloResult
    traded: SloResult
    stored: SloResult


@pytest.fixture(scope="module")
def traded(trading_stack: LoopbackStack, db: DbTarget) -> Traded:
    """A load run with the default mix (limits, cancels, marketable orders), its checks evaluated
    right after it (before any other test changes the database or adds orders)."""
    start = time.time()
    run = run_load(trading_stack, name="trading", seed=1)
    wait_quiescent(db)
    acked = tuple(run.acked_orders())
    integrity, traded_, stored = check(
        trading_stack, db, FillIntegrity(), OrdersTraded(prefix=run.order_prefix),
        AckedOrdersStored(acked=acked, prefix=run.order_prefix), start=start,
    )  # fmt: skip
    return Traded(run, start, acked, integrity, traded_, stored)


def test_a_trading_run_passes_the_database_checks(traded: Traded) -> None:
    summary = traded.run.summary
    assert summary is not None
    assert summary.actions["cross"].ok > 0, summary.actions  # marketable orders were answered
    assert traded.acked, "expected the platform to acknowledge orders"

    res = traded.integrity
    assert res.passed, res.message
    detail = res.detail
    assert isinstance(detail, FillCheck)
    assert detail.fills > 0
    assert detail.filled_orders > 0
    assert detail.symbols == len(api.SYMBOLS)
    assert (detail.duplicated_fills, detail.overfilled_orders, detail.accounting_mismatches,
            detail.book_mismatches) == (0, 0, 0, 0)  # fmt: skip
    assert res.observed == 0
    assert detail.examples == []

    res = traded.traded
    assert res.passed, res.message
    assert res.observed >= 0.10
    assert res.extra["orders"] == len(traded.acked)  # the run's orders are exactly the acked ones
    assert res.extra["resting_share"] <= 0.25

    res = traded.stored
    assert res.passed, res.message
    ack = res.detail
    assert isinstance(ack, AckCheck)
    assert (ack.acked, ack.stored, ack.acked_stored, ack.lost, ack.duplicated, ack.stored_not_acked) == (
        len(traded.acked), len(traded.acked), len(traded.acked), 0, 0, 0,
    )  # fmt: skip


def test_a_fill_applied_twice_fails_fill_integrity_until_undone(
    trading_stack: LoopbackStack, db: DbTarget, traded: Traded
) -> None:
    # A fill between two orders that both ended fully filled: applying it again over-fills both.
    ((fill,),) = sql(db, (
        "SELECT f.taker_id, f.maker_id, f.symbol, f.price, f.qty, t.qty, m.qty FROM fills f "
        "JOIN orders t ON t.order_id = f.taker_id JOIN orders m ON m.order_id = f.maker_id "
        "WHERE t.filled = t.qty AND m.filled = m.qty ORDER BY f.taker_id, f.seq LIMIT 1",
    ))  # fmt: skip
    taker, maker, symbol, price, qty, taker_qty, maker_qty = fill
    ((next_seq,),) = sql(db, ("SELECT max(seq) + 1 FROM fills WHERE taker_id = $1", taker))[0]
    res, before = fill_integrity(trading_stack, db, traded.start)
    assert res.passed, res.message
    try:
        # Half a double application: the fill row stored again, the orders not moved.
        sql(db, ("INSERT INTO fills (taker_id, seq, maker_id, symbol, price, qty) VALUES ($1, $2, $3, $4, $5, $6)",
                 taker, next_seq, maker, symbol, price, qty))  # fmt: skip
        res, got = fill_integrity(trading_stack, db, traded.start)
        assert not res.passed
        assert (got.fills, got.duplicated_fills, got.overfilled_orders, got.accounting_mismatches,
                got.book_mismatches) == (before.fills + 1, 1, 2, 2, 0)  # fmt: skip
        assert f"order {taker}: filled {taker_qty}, its fills add up to {taker_qty + qty}" in res.message

        # The whole double application: both orders' filled moved by the fill again.
        sql(
            db,
            (
                "UPDATE orders SET filled = filled + $2 WHERE order_id = ANY($1::bigint[])",
                [taker, maker],
                qty,
            ),
        )
        res, got = fill_integrity(trading_stack, db, traded.start)
        assert not res.passed
        assert res.observed == 3  # one duplicated fill + two over-filled orders
        # The stored filled agrees with the (doubled) fills: only the duplicate and the over-fill show it.
        assert (got.duplicated_fills, got.overfilled_orders, got.accounting_mismatches, got.book_mismatches) == (
            1, 2, 0, 0,
        )  # fmt: skip
        assert f"fill (taker {taker}, maker {maker}) stored 2 times" in res.message
        assert f"order {taker}: qty {taker_qty}, fills add up to {taker_qty + qty}" in res.message
        assert f"order {maker}: qty {maker_qty}, fills add up to {maker_qty + qty}" in res.message
    finally:
        sql(
            db,
            ("DELETE FROM fills WHERE taker_id = $1 AND seq = $2", taker, next_seq),
            ("UPDATE orders SET filled = qty WHERE order_id = ANY($1::bigint[])", [taker, maker]),
        )
    res, after = fill_integrity(trading_stack, db, traded.start)
    assert res.passed, res.message
    assert after.fills == before.fills


def test_an_open_order_changed_in_postgres_is_a_book_mismatch(
    trading_stack: LoopbackStack, db: DbTarget, traded: Traded
) -> None:
    # The best-priced resting order (highest bid, else lowest ask): its level is the first one shown.
    ((order,),) = sql(db, (
        "SELECT order_id, symbol, side, price, remaining FROM orders WHERE remaining > 0 "
        "ORDER BY side, CASE WHEN side = 0 THEN -price ELSE price END, order_id LIMIT 1",
    ))  # fmt: skip
    order_id, symbol, side, price, remaining = order
    side_name = "bids" if side == 0 else "asks"
    ((level,),) = sql(db, (
        "SELECT sum(remaining), count(*) FROM orders WHERE symbol = $1 AND side = $2 AND price = $3 "
        "AND remaining > 0", symbol, side, price,
    ))  # fmt: skip
    level_qty, level_orders = int(level[0]), int(level[1])
    res, _ = fill_integrity(trading_stack, db, traded.start)
    assert res.passed, res.message
    try:
        sql(db, ("UPDATE orders SET remaining = remaining + 1 WHERE order_id = $1", order_id))
        res, got = fill_integrity(trading_stack, db, traded.start)
        assert not res.passed
        assert got.book_mismatches == 1
        assert (got.duplicated_fills, got.overfilled_orders, got.accounting_mismatches) == (0, 0, 0)
        assert f"{symbol} {side_name}: engine [({price}, {level_qty}, {level_orders})" in res.message
        assert f"PostgreSQL [({price}, {level_qty + 1}, {level_orders})" in res.message
    finally:
        sql(db, ("UPDATE orders SET remaining = $2 WHERE order_id = $1", order_id, remaining))
    res, _ = fill_integrity(trading_stack, db, traded.start)
    assert res.passed, res.message


def test_acknowledged_orders_missing_from_postgres_fail_acked_orders_stored(
    trading_stack: LoopbackStack, db: DbTarget, traded: Traded
) -> None:
    """Three acknowledged order rows deleted (committed: the check reads on its own connection, so
    an uncommitted delete would be invisible to it), then put back exactly as they were."""
    victims = traded.acked[:3]
    checked = AckedOrdersStored(acked=traded.acked, prefix=traded.run.order_prefix)
    (rows,) = sql(db, ("DELETE FROM orders WHERE client_order_id = ANY($1::text[]) RETURNING *",
                       [coid for _, coid in victims]))  # fmt: skip
    try:
        assert len(rows) == 3
        (res,) = check(trading_stack, db, checked, start=traded.start)
        assert not res.passed
        assert res.observed == 3
        ack = res.detail
        assert isinstance(ack, AckCheck)
        assert (ack.acked, ack.lost, ack.stored, ack.acked_stored) == (
            len(traded.acked), 3, len(traded.acked) - 3, len(traded.acked) - 3,
        )  # fmt: skip
        assert sorted(ack.lost_examples) == sorted(f"{name}/{coid}" for name, coid in victims)
        assert res.message.startswith(f"3 of {len(traded.acked)} acknowledged orders are missing")
    finally:
        sql(db, *((f"INSERT INTO orders VALUES ({', '.join(f'${i + 1}' for i in range(len(row)))})", *row)
                  for row in rows))  # fmt: skip
    (res,) = check(trading_stack, db, checked, start=traded.start)
    assert res.passed, res.message


def test_a_run_of_resting_limits_only_fails_orders_traded(
    trading_stack: LoopbackStack, db: DbTarget, traded: Traded
) -> None:
    start = time.time()
    run = run_load(trading_stack, name="resting", seed=2, mix={"limit": 1.0})
    wait_quiescent(db)
    summary = run.summary
    assert summary is not None
    assert summary.actions["limit"].ok > 0
    assert summary.actions["cross"].scheduled == summary.actions["cancel"].scheduled == 0
    (res,) = check(trading_stack, db, OrdersTraded(prefix=run.order_prefix), start=start)
    assert not res.passed
    orders, filled = res.extra["orders"], res.extra["filled"]
    assert orders == len(run.acked_orders())
    assert res.observed == filled / orders < 0.10
    assert res.message.startswith(
        f"{filled} of {orders} orders filled ({filled / orders:.1%}, expected >= 10%)"
    )


def test_orders_traded_takes_its_prefix_literally(
    trading_stack: LoopbackStack, db: DbTarget, traded: Traded
) -> None:
    """``_`` and ``%`` in a prefix are characters, not LIKE wildcards: no other run's orders count."""
    prefix = traded.run.order_prefix
    for lookalike in (prefix[:-1] + "_", prefix[:3] + "%"):
        (res,) = check(trading_stack, db, OrdersTraded(prefix=lookalike), start=traded.start)
        assert not res.passed
        assert res.message == f"no data: no order of the run {lookalike!r} is stored"
