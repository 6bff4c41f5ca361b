"""A deliberately simple pure-Python matching engine: the oracle for the property tests.

It implements the same contract as ``hft_engine.Engine`` (price-time priority, limit/market/IOC,
cancel, status codes checked in the same order, capacity checked before matching) with plain
dicts and lists, favouring obviousness over speed. It must not import or call hft_engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK, INVALID_QTY, INVALID_PRICE, DUPLICATE_ID, UNKNOWN_ORDER, UNKNOWN_SYMBOL = 0, 1, 2, 3, 4, 5
INVALID_SIDE, INVALID_TYPE, CAPACITY = 6, 7, 8
BUY, SELL = 0, 1
MAX_QUANTITY = 2**32 - 1
LIMIT, MARKET, IOC = 0, 1, 2

Fill = tuple[int, int, int, int]
Level = tuple[int, int, int]


@dataclass
class RestingOrder:
    """An order on the reference book."""

    order_id: int
    side: int
    price: int
    qty: int


@dataclass
class ReferenceBook:
    """One symbol: each side maps price -> FIFO list of resting orders."""

    max_price: int
    bids: dict[int, list[RestingOrder]] = field(default_factory=dict)
    asks: dict[int, list[RestingOrder]] = field(default_factory=dict)
    live: dict[int, RestingOrder] = field(default_factory=dict)

    def depth(self, levels: int) -> tuple[list[Level], list[Level]]:
        def rows(side: dict[int, list[RestingOrder]], prices: list[int]) -> list[Level]:
            return [(p, sum(o.qty for o in side[p]), len(side[p])) for p in prices[:levels]]

        return (
            rows(self.bids, sorted(self.bids, reverse=True)),
            rows(self.asks, sorted(self.asks)),
        )


class ReferenceEngine:
    """Multi-symbol reference engine with the hft_engine.Engine single-order API."""

    def __init__(self, max_orders: int) -> None:
        self.max_orders = max_orders
        self.books: list[ReferenceBook] = []

    def add_symbol(self, *, max_price: int) -> int:
        self.books.append(ReferenceBook(max_price=max_price))
        return len(self.books) - 1

    def live_orders(self) -> int:
        return sum(len(b.live) for b in self.books)

    def submit(
        self, symbol: int, order_id: int, side: int, kind: int, price: int, qty: int
    ) -> tuple[int, int, int, list[Fill]]:
        if not 0 <= symbol < len(self.books):
            return (UNKNOWN_SYMBOL, 0, 0, [])
        if kind not in (LIMIT, MARKET, IOC):
            return (INVALID_TYPE, 0, 0, [])
        if side not in (BUY, SELL):
            return (INVALID_SIDE, 0, 0, [])
        if not 1 <= qty <= MAX_QUANTITY:
            return (INVALID_QTY, 0, 0, [])
        book = self.books[symbol]
        if kind != MARKET and not 1 <= price <= book.max_price:
            return (INVALID_PRICE, 0, 0, [])
        if order_id in book.live:
            return (DUPLICATE_ID, 0, 0, [])
        if kind == LIMIT and self.live_orders() >= self.max_orders:
            return (CAPACITY, 0, 0, [])

        fills: list[Fill] = []
        remaining = qty
        opposite = book.asks if side == BUY else book.bids
        while remaining > 0 and opposite:
            best = min(opposite) if side == BUY else max(opposite)
            if kind != MARKET and (best > price if side == BUY else best < price):
                break
            queue = opposite[best]
            while remaining > 0 and queue:
                maker = queue[0]
                traded = min(maker.qty, remaining)
                fills.append((maker.order_id, order_id, best, traded))
                maker.qty -= traded
                remaining -= traded
                if maker.qty == 0:
                    queue.pop(0)
                    del book.live[maker.order_id]
            if not queue:
                del opposite[best]
        filled = qty - remaining
        if kind != LIMIT or remaining == 0:
            return (OK, filled, 0, fills)
        order = RestingOrder(order_id=order_id, side=side, price=price, qty=remaining)
        own = book.bids if side == BUY else book.asks
        own.setdefault(price, []).append(order)
        book.live[order_id] = order
        return (OK, filled, remaining, fills)

    def cancel(self, symbol: int, order_id: int) -> tuple[int, int]:
        if not 0 <= symbol < len(self.books):
            return (UNKNOWN_SYMBOL, 0)
        book = self.books[symbol]
        order = book.live.pop(order_id, None)
        if order is None:
            return (UNKNOWN_ORDER, 0)
        side = book.bids if order.side == BUY else book.asks
        side[order.price].remove(order)
        if not side[order.price]:
            del side[order.price]
        return (OK, order.qty)

    def depth(self, symbol: int, levels: int) -> tuple[list[Level], list[Level]]:
        return self.books[symbol].depth(levels)
