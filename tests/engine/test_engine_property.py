"""Property test: random order streams give identical fills and books in hft_engine and in the
pure-Python reference engine, and the batch path agrees with the single-order path.

Prices live in a tiny range so most streams cross often; ids come from a small pool so duplicate
ids, cancels of filled orders and unknown ids all occur; the pool is small so CAPACITY occurs.
"""

from __future__ import annotations

import numpy as np
from engine_reference import ReferenceEngine
from hft_engine import ORDER_DTYPE, Engine, OrderType
from hypothesis import given, settings
from hypothesis import strategies as st

MAX_PRICE = 12
MAX_ORDERS = 12
SYMBOLS = 2

# Each field is drawn from a list in which invalid values (unknown symbol 2, side 2, kind 9,
# price 0 / MAX_PRICE+1, qty 0 / 2**32) are rare, so most orders are valid. Buys lean to low prices and
# sells to high ones, so books build depth (and hit CAPACITY) while overlapping prices still cross.
symbols = st.sampled_from([0] * 12 + [1] * 6 + [SYMBOLS])
sides = st.sampled_from([0] * 12 + [1] * 12 + [2])
kinds = st.sampled_from(
    [OrderType.LIMIT] * 24 + [OrderType.MARKET] * 2 + [OrderType.IOC] * 3 + [OrderType.CANCEL] * 10 + [9]
)
quantities = st.sampled_from(list(range(1, 10)) * 6 + [0, 2**32])
BUY_PRICES = st.sampled_from(list(range(1, 9)) * 6 + [0, MAX_PRICE + 1])
SELL_PRICES = st.sampled_from(list(range(5, MAX_PRICE + 1)) * 6 + [0, MAX_PRICE + 1])


@st.composite
def orders(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    """(symbol, order_id, side, kind, price, qty)"""
    side = draw(sides)
    price = draw(BUY_PRICES if side == 0 else SELL_PRICES)
    return (draw(symbols), draw(st.integers(1, 20)), side, draw(kinds), price, draw(quantities))


streams = st.lists(orders(), min_size=10, max_size=150)

# Bounded and reproducible: the same examples every run, well under a second each.
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True)


def fresh_pair() -> tuple[Engine, ReferenceEngine]:
    engine = Engine(max_orders=MAX_ORDERS)
    reference = ReferenceEngine(max_orders=MAX_ORDERS)
    for s in range(SYMBOLS):
        assert engine.add_symbol(f"S{s}", max_price=MAX_PRICE) == reference.add_symbol(max_price=MAX_PRICE)
    return engine, reference


@BOUNDED
@given(streams)
def test_engine_matches_reference_book(stream: list[tuple[int, int, int, int, int, int]]) -> None:
    engine, reference = fresh_pair()
    for step, (sym, oid, side, kind, price, qty) in enumerate(stream):
        if kind == OrderType.CANCEL:
            got, want = engine.cancel(sym, oid), reference.cancel(sym, oid)
        else:
            got = engine.submit(sym, oid, side, kind, price, qty)
            want = reference.submit(sym, oid, side, kind, price, qty)
        assert got == want, f"step {step}: {(sym, oid, side, kind, price, qty)}"
        for s in range(SYMBOLS):
            assert engine.depth(s, MAX_PRICE + 2) == reference.depth(s, MAX_PRICE + 2), f"step {step}"
        assert engine.live_orders() == reference.live_orders()


@BOUNDED
@given(streams)
def test_batch_agrees_with_single_orders(stream: list[tuple[int, int, int, int, int, int]]) -> None:
    single, _ = fresh_pair()
    batched, _ = fresh_pair()
    orders = np.zeros(len(stream), dtype=ORDER_DTYPE)
    for i, (sym, oid, side, kind, price, qty) in enumerate(stream):
        orders[i] = (oid, price, qty, sym, side, kind)
    results, fills = batched.submit_batch(orders)

    expected_fills = []
    for row, (sym, oid, side, kind, price, qty) in enumerate(stream):
        if kind == OrderType.CANCEL:
            status, cancelled = single.cancel(sym, oid)
            assert (results[row]["status"], results[row]["filled_qty"]) == (status, cancelled)
            continue
        status, filled, resting, row_fills = single.submit(sym, oid, side, kind, price, qty)
        assert (results[row]["status"], results[row]["filled_qty"], results[row]["resting_qty"]) == (
            status,
            filled,
            resting,
        )
        assert results[row]["fill_count"] == len(row_fills)
        expected_fills += [(row, *f) for f in row_fills]
    assert fills[["row", "maker_id", "taker_id", "price", "qty"]].tolist() == expected_fills
    for s in range(SYMBOLS):
        assert batched.depth(s, MAX_PRICE) == single.depth(s, MAX_PRICE)
