"""Type stub of the compiled extension hft_engine._core (see engine_cpp/src/bindings.cpp)."""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

class Side(enum.IntEnum):
    BUY = 0
    SELL = 1

class OrderType(enum.IntEnum):
    LIMIT = 0
    MARKET = 1
    IOC = 2
    CANCEL = 3

class MemoryMode(enum.IntEnum):
    PREFAULT = 0
    RESERVE = 1

class Status(enum.IntEnum):
    OK = 0
    INVALID_QTY = 1
    INVALID_PRICE = 2
    DUPLICATE_ID = 3
    UNKNOWN_ORDER = 4
    UNKNOWN_SYMBOL = 5
    INVALID_SIDE = 6
    INVALID_TYPE = 7
    CAPACITY = 8

ORDER_DTYPE: np.dtype[np.void]
RESULT_DTYPE: np.dtype[np.void]
FILL_DTYPE: np.dtype[np.void]
MAX_PRICE_LIMIT: int
MAX_QUANTITY: int
DEFAULT_MAX_ORDERS: int

_Fill = tuple[int, int, int, int]  # (maker_id, taker_id, price, qty)
_Level = tuple[int, int, int]  # (price, total_qty, order_count)

class Engine:
    def __init__(self, max_orders: int = 1048576, *, memory: MemoryMode = MemoryMode.PREFAULT) -> None: ...
    @property
    def max_orders(self) -> int: ...
    @property
    def memory_mode(self) -> MemoryMode: ...
    @property
    def memory_bytes(self) -> int: ...
    def add_symbol(self, name: str, *, max_price: int = 1000000) -> int: ...
    def symbol_id(self, name: str) -> int: ...
    def submit(
        self, symbol: int, order_id: int, side: int, kind: int, price: int, qty: int
    ) -> tuple[int, int, int, list[_Fill]]: ...
    def cancel(self, symbol: int, order_id: int) -> tuple[int, int]: ...
    def depth(self, symbol: int, levels: int = 10) -> tuple[list[_Level], list[_Level]]: ...
    def live_orders(self) -> int: ...
    def submit_batch(
        self, orders: npt.NDArray[np.void]
    ) -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]: ...
