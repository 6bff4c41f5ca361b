"""hft_engine: Python face of the C++ price-time priority matching engine.

Re-exports the compiled ``hft_engine._core`` extension. Side, OrderType and Status are real
``enum.IntEnum`` classes defined once in C++; the order path returns plain ints that compare equal
to them. This package must stay a thin re-export: no matching logic, no I/O.
"""

from __future__ import annotations

from hft_engine._core import (
    DEFAULT_MAX_ORDERS,
    FILL_DTYPE,
    MAX_PRICE_LIMIT,
    MAX_QUANTITY,
    ORDER_DTYPE,
    RESULT_DTYPE,
    Engine,
    MemoryMode,
    OrderType,
    Side,
    Status,
)

__all__ = [
    "DEFAULT_MAX_ORDERS",
    "FILL_DTYPE",
    "MAX_PRICE_LIMIT",
    "MAX_QUANTITY",
    "ORDER_DTYPE",
    "RESULT_DTYPE",
    "Engine",
    "MemoryMode",
    "OrderType",
    "Side",
    "Status",
]
