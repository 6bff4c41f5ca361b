"""hft_engine through its Python binding: the contract of CONTRACTS.md, error codes, dtypes,
input validation of submit_batch, and the GIL/lock behaviour of batches."""

from __future__ import annotations

import sys
import threading
import time

import hft_engine
import numpy as np
import pytest
from hft_engine import (
    FILL_DTYPE,
    ORDER_DTYPE,
    RESULT_DTYPE,
    Engine,
    OrderType,
    Side,
    Status,
)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, IOC, CANCEL = OrderType.LIMIT, OrderType.MARKET, OrderType.IOC, OrderType.CANCEL


def test_enum_values_follow_the_contract() -> None:
    assert [(m.name, m.value) for m in Side] == [("BUY", 0), ("SELL", 1)]
    assert [(m.name, m.value) for m in OrderType] == [("LIMIT", 0), ("MARKET", 1), ("IOC", 2), ("CANCEL", 3)]
    assert [m.name for m in Status] == [
        "OK",
        "INVALID_QTY",
        "INVALID_PRICE",
        "DUPLICATE_ID",
        "UNKNOWN_ORDER",
        "UNKNOWN_SYMBOL",
        "INVALID_SIDE",
        "INVALID_TYPE",
        "CAPACITY",
    ]
    assert [m.value for m in Status] == list(range(9))
    assert all(issubclass(e, int) for e in (Side, OrderType, Status))


def test_public_names_are_exported() -> None:
    for name in hft_engine.__all__:
        assert getattr(hft_engine, name) is not None
    assert {"Engine", "Side", "OrderType", "Status", "ORDER_DTYPE", "FILL_DTYPE", "RESULT_DTYPE"} <= set(
        hft_engine.__all__
    )


def test_dtypes_have_fixed_packed_layout() -> None:
    assert ORDER_DTYPE.itemsize == 32
    assert {n: ORDER_DTYPE.fields[n][1] for n in ORDER_DTYPE.names} == {
        "order_id": 0,
        "price": 8,
        "qty": 16,
        "symbol": 24,
        "side": 28,
        "kind": 29,
    }
    assert {"status", "filled_qty", "resting_qty"} <= set(RESULT_DTYPE.names)
    assert {"row", "maker_id", "taker_id", "price", "qty"} <= set(FILL_DTYPE.names)


def test_limit_orders_match_in_price_time_order(engine: Engine, symbol: int) -> None:
    assert engine.submit(symbol, 1, SELL, LIMIT, 101, 5) == (Status.OK, 0, 5, [])
    assert engine.submit(symbol, 2, SELL, LIMIT, 100, 5) == (Status.OK, 0, 5, [])
    assert engine.submit(symbol, 3, SELL, LIMIT, 100, 5) == (Status.OK, 0, 5, [])
    assert engine.depth(symbol, 5) == ([], [(100, 10, 2), (101, 5, 1)])
    status, filled, resting, fills = engine.submit(symbol, 9, BUY, LIMIT, 101, 14)
    assert (status, filled, resting) == (Status.OK, 14, 0)
    assert fills == [(2, 9, 100, 5), (3, 9, 100, 5), (1, 9, 101, 4)]
    assert engine.depth(symbol, 5) == ([], [(101, 1, 1)])
    assert engine.live_orders() == 1


def test_market_and_ioc_never_rest(engine: Engine, symbol: int) -> None:
    engine.submit(symbol, 1, BUY, LIMIT, 50, 3)
    assert engine.submit(symbol, 2, SELL, MARKET, 0, 10) == (Status.OK, 3, 0, [(1, 2, 50, 3)])
    assert engine.submit(symbol, 3, SELL, IOC, 40, 10) == (Status.OK, 0, 0, [])
    assert engine.depth(symbol, 5) == ([], [])
    assert engine.live_orders() == 0


def test_cancel_returns_open_quantity(engine: Engine, symbol: int) -> None:
    engine.submit(symbol, 1, BUY, LIMIT, 50, 7)
    engine.submit(symbol, 2, SELL, IOC, 50, 3)
    assert engine.cancel(symbol, 1) == (Status.OK, 4)
    assert engine.cancel(symbol, 1) == (Status.UNKNOWN_ORDER, 0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0, 1, BUY, LIMIT, 10, 0), Status.INVALID_QTY),
        ((0, 1, BUY, LIMIT, 10, -3), Status.INVALID_QTY),
        ((0, 1, BUY, LIMIT, 10, hft_engine.MAX_QUANTITY + 1), Status.INVALID_QTY),
        ((0, 1, SELL, MARKET, 0, 2**63 - 1), Status.INVALID_QTY),
        ((0, 1, BUY, LIMIT, 0, 1), Status.INVALID_PRICE),
        ((0, 1, SELL, IOC, 1001, 1), Status.INVALID_PRICE),
        ((0, 1, BUY, LIMIT, -(2**63), 1), Status.INVALID_PRICE),
        ((1, 1, BUY, LIMIT, 10, 1), Status.UNKNOWN_SYMBOL),
        ((-1, 1, BUY, LIMIT, 10, 1), Status.UNKNOWN_SYMBOL),
        ((2**40, 1, BUY, LIMIT, 10, 1), Status.UNKNOWN_SYMBOL),
        ((0, 1, 2, LIMIT, 10, 1), Status.INVALID_SIDE),
        ((0, 1, -1, LIMIT, 10, 1), Status.INVALID_SIDE),
        ((0, 1, 10**12, LIMIT, 10, 1), Status.INVALID_SIDE),
        ((0, 1, BUY, CANCEL, 10, 1), Status.INVALID_TYPE),
        ((0, 1, BUY, 4, 10, 1), Status.INVALID_TYPE),
        ((0, 1, BUY, -5, 10, 1), Status.INVALID_TYPE),
    ],
)
def test_bad_input_returns_a_status(
    engine: Engine, symbol: int, args: tuple[int, ...], expected: Status
) -> None:
    assert symbol == 0
    assert engine.submit(*args) == (expected, 0, 0, [])
    assert engine.live_orders() == 0


def test_duplicate_id_and_unknown_symbol_cancel(engine: Engine, symbol: int) -> None:
    assert engine.submit(symbol, 2**64 - 1, BUY, LIMIT, 10, 1)[0] == Status.OK
    assert engine.submit(symbol, 2**64 - 1, SELL, MARKET, 0, 1) == (Status.DUPLICATE_ID, 0, 0, [])
    assert engine.cancel(symbol + 1, 2**64 - 1) == (Status.UNKNOWN_SYMBOL, 0)
    assert engine.cancel(-1, 1) == (Status.UNKNOWN_SYMBOL, 0)


def test_capacity_is_reported_and_recovers() -> None:
    engine = Engine(max_orders=2)
    sym = engine.add_symbol("CAP", max_price=100)
    assert engine.max_orders == 2
    assert engine.submit(sym, 1, BUY, LIMIT, 10, 1)[0] == Status.OK
    assert engine.submit(sym, 2, BUY, LIMIT, 11, 1)[0] == Status.OK
    assert engine.submit(sym, 3, SELL, LIMIT, 10, 1) == (Status.CAPACITY, 0, 0, [])
    assert engine.submit(sym, 4, SELL, IOC, 11, 1)[0:2] == (Status.OK, 1)
    assert engine.submit(sym, 3, SELL, LIMIT, 50, 1)[0] == Status.OK


def test_symbol_registry() -> None:
    engine = Engine(max_orders=8)
    assert engine.add_symbol("AAPL") == 0
    assert engine.add_symbol("MSFT", max_price=5) == 1
    assert engine.symbol_id("MSFT") == 1
    assert engine.symbol_id("NOPE") == -1
    with pytest.raises(ValueError, match="already registered"):
        engine.add_symbol("AAPL")
    with pytest.raises(ValueError, match="max_price"):
        engine.add_symbol("ZERO", max_price=0)
    with pytest.raises(ValueError, match="max_price"):
        engine.add_symbol("HUGE", max_price=hft_engine.MAX_PRICE_LIMIT + 1)
    with pytest.raises(ValueError, match="max_orders"):
        Engine(max_orders=0)


def test_depth_validates_arguments(engine: Engine, symbol: int) -> None:
    with pytest.raises(ValueError, match="unknown symbol"):
        engine.depth(symbol + 7, 5)
    with pytest.raises(ValueError, match="levels"):
        engine.depth(symbol, -1)
    engine.submit(symbol, 1, BUY, LIMIT, 10, 1)
    engine.submit(symbol, 2, BUY, LIMIT, 9, 1)
    assert engine.depth(symbol, 1) == ([(10, 1, 1)], [])
    assert engine.depth(symbol, 0) == ([], [])


def make_orders(rows: list[tuple[int, int, int, int, int, int]]) -> np.ndarray:
    """rows of (symbol, order_id, side, kind, price, qty) -> ORDER_DTYPE array."""
    orders = np.zeros(len(rows), dtype=ORDER_DTYPE)
    for i, (sym, oid, side, kind, price, qty) in enumerate(rows):
        orders[i] = (oid, price, qty, sym, side, kind)
    return orders


def test_submit_batch_matches_and_cancels(engine: Engine, symbol: int) -> None:
    orders = make_orders(
        [
            (symbol, 1, SELL, LIMIT, 100, 5),
            (symbol, 2, SELL, LIMIT, 101, 5),
            (symbol, 3, BUY, LIMIT, 101, 7),
            (symbol, 2, 0, CANCEL, 0, 0),
            (symbol, 2, 0, CANCEL, 0, 0),
            (symbol, 4, BUY, LIMIT, 0, 1),
        ]
    )
    results, fills = engine.submit_batch(orders)
    assert results.dtype == RESULT_DTYPE
    assert fills.dtype == FILL_DTYPE
    assert results["status"].tolist() == [0, 0, 0, 0, Status.UNKNOWN_ORDER, Status.INVALID_PRICE]
    assert results["filled_qty"].tolist() == [0, 0, 7, 3, 0, 0]  # CANCEL rows report cancelled qty
    assert results["resting_qty"].tolist() == [5, 5, 0, 0, 0, 0]
    assert fills[["row", "maker_id", "taker_id", "price", "qty"]].tolist() == [
        (2, 1, 3, 100, 5),
        (2, 2, 3, 101, 2),
    ]
    assert engine.live_orders() == 0


def test_submit_batch_empty(engine: Engine, symbol: int) -> None:
    results, fills = engine.submit_batch(np.zeros(0, dtype=ORDER_DTYPE))
    assert len(results) == 0
    assert len(fills) == 0


def test_submit_batch_rejects_wrong_arrays(engine: Engine, symbol: int) -> None:
    with pytest.raises(TypeError, match="ORDER_DTYPE"):
        engine.submit_batch(np.zeros(3, dtype=np.int64))
    unaligned = np.dtype([(n, ORDER_DTYPE.fields[n][0]) for n in ORDER_DTYPE.names])  # packed, 30 bytes
    with pytest.raises(TypeError, match="ORDER_DTYPE"):
        engine.submit_batch(np.zeros(3, dtype=unaligned))
    with pytest.raises(ValueError, match="1-d"):
        engine.submit_batch(np.zeros((2, 2), dtype=ORDER_DTYPE))
    with pytest.raises(ValueError, match="C-contiguous"):
        engine.submit_batch(np.zeros(6, dtype=ORDER_DTYPE)[::2])


def test_submit_batch_releases_the_gil(engine: Engine, symbol: int) -> None:
    # With a 1 s switch interval the main thread keeps the GIL for the whole call unless the
    # binding releases it, so the counter thread can only advance while the batch runs if it does.
    n = 400_000
    orders = np.zeros(n, dtype=ORDER_DTYPE)
    orders["order_id"] = np.arange(1, n + 1)
    orders["side"] = np.arange(n) % 2
    orders["price"] = np.where(orders["side"] == 0, 400, 600)
    orders["qty"] = 1
    orders["symbol"] = symbol
    big = Engine(max_orders=n)
    big_symbol = big.add_symbol("BIG", max_price=1000)
    orders["symbol"] = big_symbol

    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)  # releases the GIL, so the main thread never waits a full interval

    old = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    thread = threading.Thread(target=spin)
    try:
        thread.start()
        before = counter[0]
        results, _ = big.submit_batch(orders)
        during = counter[0] - before
    finally:
        stop.set()
        thread.join(timeout=10)
        sys.setswitchinterval(old)
    assert not thread.is_alive()
    assert (results["status"] == 0).all()
    assert big.live_orders() == n
    assert during > 0, "no Python thread ran while submit_batch was matching: the GIL was held"


def test_concurrent_batches_and_single_calls_stay_consistent() -> None:
    engine = Engine(max_orders=200_000)
    sym = engine.add_symbol("MT", max_price=1000)
    per_thread = 20_000
    errors: list[BaseException] = []

    def batch_worker(base: int) -> None:
        try:
            orders = np.zeros(per_thread, dtype=ORDER_DTYPE)
            orders["order_id"] = base + np.arange(per_thread)
            orders["price"] = 10
            orders["qty"] = 1
            orders["symbol"] = sym
            for chunk in np.array_split(orders, 20):
                results, _ = engine.submit_batch(chunk)
                assert (results["status"] == 0).all()
        except BaseException as e:
            errors.append(e)

    def single_worker(base: int) -> None:
        try:
            for i in range(per_thread // 4):
                assert engine.submit(sym, base + i, BUY, LIMIT, 9, 1)[0] == Status.OK
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=batch_worker, args=(0,)),
        threading.Thread(target=batch_worker, args=(1_000_000,)),
        threading.Thread(target=single_worker, args=(2_000_000,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert engine.live_orders() == 2 * per_thread + per_thread // 4
    assert engine.depth(sym, 5) == (
        [(10, 2 * per_thread, 2 * per_thread), (9, per_thread // 4, per_thread // 4)],
        [],
    )


def test_submit_batch_rejects_unaligned_buffer(engine: Engine, symbol: int) -> None:
    raw = bytearray(ORDER_DTYPE.itemsize * 2 + 1)
    unaligned = np.frombuffer(raw, dtype=ORDER_DTYPE, count=2, offset=1)
    with pytest.raises(ValueError, match="aligned"):
        engine.submit_batch(unaligned)
