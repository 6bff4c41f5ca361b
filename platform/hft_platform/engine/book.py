"""The shard's order books: a thin adapter from Python rows to the compiled engine's batch call.

Owns the ``hft_engine.Engine`` and the symbol-name <-> symbol-id mapping. It knows nothing about
the database, the wire protocol or idempotency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hft_engine import FILL_DTYPE, ORDER_DTYPE, Engine

from hft_platform.domain import MAX_PRICE_TICKS

#: (order_id, price, qty, symbol_id, side, kind) - the columns of ``ORDER_DTYPE`` we fill.
Row = tuple[int, int, int, int, int, int]
#: (filled_qty, resting_qty, status) per input row.
Result = tuple[int, int, int]
#: (maker_id, taker_id, price, qty, row)
FillTuple = tuple[int, int, int, int, int]

_ORDER_COLS = ("order_id", "price", "qty", "symbol", "side", "kind")
_FILL_COLS = ["maker_id", "taker_id", "price", "qty", "row"]
_RESULT_COLS = ["filled_qty", "resting_qty", "status"]


class ShardBook:
    """The books of every symbol this shard owns."""

    def __init__(self, symbols: Sequence[str], *, max_orders: int = 1_048_576) -> None:
        self._engine = Engine(max_orders=max_orders)
        self.symbol_ids: dict[str, int] = {
            sym: self._engine.add_symbol(sym, max_price=MAX_PRICE_TICKS) for sym in symbols
        }
        assert FILL_DTYPE.names is not None

    def run(self, rows: Sequence[Row]) -> tuple[list[Result], list[FillTuple]]:
        """Run rows through the engine in order (one GIL-free batch call)."""
        batch = np.zeros(len(rows), dtype=ORDER_DTYPE)
        for name, column in zip(_ORDER_COLS, zip(*rows, strict=True), strict=True):
            batch[name] = column
        results, fills = self._engine.submit_batch(batch)
        return results[_RESULT_COLS].tolist(), fills[_FILL_COLS].tolist()

    def depth(self, symbol: str, *, levels: int) -> tuple[list, list]:
        return self._engine.depth(self.symbol_ids[symbol], levels)

    def live_orders(self) -> int:
        return self._engine.live_orders()
