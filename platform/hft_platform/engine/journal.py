"""Group commit: what the sequencer has applied but not yet made durable, and the writer that commits it.

The sequencer mutates :attr:`GroupCommitter.current` synchronously (no awaits), the writer swaps it
for an empty batch whenever it is idle and commits the swapped one in one statement, then sends its
replies. So a reply leaves only after everything it depends on is committed, and commits happen in
sequence order on one connection. A failed commit is fatal (fail-stop): the in-memory book has moved
past the database and only a restart (rebuild from PostgreSQL) makes them agree again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from hft_platform import wire
from hft_platform.engine import metrics, store

log = logging.getLogger(__name__)

#: Column positions in a new-order row (see ``store.WRITE_SQL``).
COL_FILLED, COL_REMAINING, COL_STATE = 12, 13, 14
FAIL_STOP_EXIT = 70


class Peer(Protocol):
    def send(self, data: bytes) -> None: ...


@dataclass
class WriteBatch:
    new_orders: dict[int, list] = field(default_factory=dict)
    updates: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    fills: list[tuple[int, int, int, str, int, int]] = field(default_factory=list)
    acks: dict[Peer, list[bytes]] = field(default_factory=dict)
    controls: list[tuple[Peer, bytes]] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    requests: int = 0

    def move(self, order_id: int, *, filled: int, remaining: int, state: int) -> None:
        """Record an order's new state; rows first written in this batch are edited in place."""
        row = self.new_orders.get(order_id)
        if row is None:
            self.updates[order_id] = (filled, remaining, state)
        else:
            row[COL_FILLED] = filled
            row[COL_REMAINING] = remaining
            row[COL_STATE] = state

    def reply(self, peer: Peer, record: bytes, started: float) -> None:
        acks = self.acks.get(peer)
        if acks is None:
            self.acks[peer] = [record]
        else:
            acks.append(record)
        self.started.append(started)

    @property
    def has_rows(self) -> bool:
        return bool(self.new_orders or self.updates or self.fills)


class GroupCommitter:
    """Commits batches one at a time, each as large as whatever queued while the last one committed."""

    def __init__(
        self, conn: asyncpg.Connection, *, shard: str, exit: Callable[[int], None] = os._exit
    ) -> None:
        self._conn = conn
        self._shard = shard
        self._exit = exit
        self._wake = asyncio.Event()
        self.current = WriteBatch()
        self.in_flight = 0
        self._commit_hist = metrics.DB_COMMIT.labels(shard)
        self._batch_hist = metrics.DB_BATCH.labels(shard)
        self._latency_hist = metrics.ENGINE_LATENCY.labels(shard)
        self._fills = metrics.FILLS.labels(shard)

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self.current = self.current, WriteBatch()
            self.in_flight = batch.requests
            if batch.has_rows:
                t0 = time.perf_counter()
                try:
                    await store.write_batch(
                        self._conn,
                        new_orders=list(batch.new_orders.values()),
                        updates=[(oid, *u) for oid, u in batch.updates.items()],
                        fills=batch.fills,
                    )
                except Exception as e:  # any failure leaves the in-memory book untrustworthy
                    log.critical("group commit failed, stopping so a restart rebuilds from PostgreSQL: %r", e)
                    logging.shutdown()
                    self._exit(FAIL_STOP_EXIT)
                    raise
                self._commit_hist.observe(time.perf_counter() - t0)
                self._batch_hist.observe(batch.requests)
                if batch.fills:
                    self._fills.inc(len(batch.fills))
            self._deliver(batch)
            self.in_flight = 0

    def _deliver(self, batch: WriteBatch) -> None:
        for peer, records in batch.acks.items():
            peer.send(wire.encode(wire.T_ACKS, b"".join(records)))
        for peer, frame in batch.controls:
            peer.send(frame)
        now = time.perf_counter()
        observe = self._latency_hist.observe
        for t0 in batch.started:
            observe(now - t0)
