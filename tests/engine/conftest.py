"""Fixtures for the matching-engine tests: fresh hft_engine.Engine instances with small pools.

Engines here are deliberately tiny (small max_price, small max_orders) so tests stay fast and
capacity limits are reachable. Nothing here builds the extension; that is the install's job.
"""

from __future__ import annotations

import pytest
from hft_engine import Engine


@pytest.fixture
def engine() -> Engine:
    """An engine with room for 64 resting orders."""
    return Engine(max_orders=64)


@pytest.fixture
def symbol(engine: Engine) -> int:
    """Symbol "TEST" (ticks 1..1000) registered on `engine`."""
    return engine.add_symbol("TEST", max_price=1000)
