"""The sequencer: orders requests, deduplicates them, assigns ids, runs them through the books and
records the outcome into the group committer's current batch.

Single-threaded on the event loop. The only awaits are the idempotency look-up and id allocation
(both before anything is applied), so the book, the live-order table and the write batch always
change together. It never writes to PostgreSQL itself and never talks to sockets directly.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import orjson

from hft_platform import wire
from hft_platform.domain import KIND_CANCEL, Ack, EngineStatus, OrderState, state_after_submit
from hft_platform.engine import metrics, store
from hft_platform.engine.book import ShardBook
from hft_platform.engine.journal import GroupCommitter, Peer

_ORDER, _CANCEL, _CONTROL = 0, 1, 2
RECENT_LIMIT = 200_000  # ~40 MB; older keys fall back to the PostgreSQL look-up
EVICT_CHUNK = 10_000
DEPTH_LEVELS_MAX = 50


@dataclass(slots=True)
class LiveOrder:
    """A resting order: who owns it and how much of it is left."""

    user_id: int
    symbol: str
    remaining: int
    filled: int


def pack_ack(req_id: int, ack: Ack) -> bytes:
    return wire.ACK_REC.pack(
        req_id, ack.status, ack.state, ack.duplicate, ack.order_id, ack.filled_qty, ack.resting_qty
    )


class Sequencer:
    def __init__(
        self,
        *,
        book: ShardBook,
        committer: GroupCommitter,
        conn: asyncpg.Connection,
        shard: str,
        group_max: int = 2048,
        id_shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.book = book
        self._id_shard = id_shard  # (shard, shards): which interleaved id blocks are ours
        self.committer = committer
        self._conn = conn
        self._group_max = group_max
        self.intake: list[tuple] = []
        self.live: dict[int, LiveOrder] = {}
        self.recent: dict[tuple[int, str], Ack | None] = {}
        self._next_id = 0
        self._id_end = 0  # exclusive
        self._blocks: list[int] = []
        self._wake = asyncio.Event()
        self._depth = metrics.QUEUE_DEPTH.labels(shard)
        self._run_hist = metrics.ENGINE_RUN.labels(shard)

    # -- intake (called from connection protocols) -------------------------------------------
    def add_orders(self, peer: Peer, records: Iterable[tuple], started: float) -> None:
        self.intake.extend((_ORDER, peer, started, rec) for rec in records)
        self._wake.set()

    def add_cancels(self, peer: Peer, records: Iterable[tuple], started: float) -> None:
        self.intake.extend((_CANCEL, peer, started, rec) for rec in records)
        self._wake.set()

    def add_control(self, peer: Peer, request: dict, started: float) -> None:
        self.intake.append((_CONTROL, peer, started, request))
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.intake:
                group = self.intake[: self._group_max]
                del self.intake[: self._group_max]
                await self.process(group)
                self._depth.set(len(self.intake) + self.committer.in_flight + self.committer.current.requests)

    async def process(self, group: list[tuple]) -> None:
        await self._resolve_unknown_keys(group)
        await self._ensure_ids(sum(1 for item in group if item[0] == _ORDER))
        self._apply(group)
        self.committer.kick()

    async def _resolve_unknown_keys(self, group: list[tuple]) -> None:
        """Fetch stored acks for client order ids this process has not seen (e.g. before a restart)."""
        recent = self.recent
        unknown = {
            (rec[1], rec[7].rstrip(b"\0").decode())
            for tag, _, _, rec in group
            if tag == _ORDER and (rec[1], rec[7].rstrip(b"\0").decode()) not in recent
        }
        if not unknown:
            return
        for user_id, coid, order_id, status, state, filled, resting in await store.lookup_acks(
            self._conn, keys=list(unknown)
        ):
            recent[(user_id, coid)] = Ack(order_id, status, state, filled, resting, duplicate=True)

    async def _ensure_ids(self, n: int) -> None:
        have = self._id_end - self._next_id + store.ID_BLOCK * len(self._blocks)
        if have >= n:
            return
        need_blocks = (n - have) // store.ID_BLOCK + 1
        shard, shards = self._id_shard
        self._blocks.extend(
            await store.allocate_ids(self._conn, blocks=need_blocks, shard=shard, shards=shards)
        )

    def _take_id(self) -> int:
        if self._next_id >= self._id_end:
            start = self._blocks.pop(0)
            self._next_id, self._id_end = start, start + store.ID_BLOCK
        oid = self._next_id
        self._next_id += 1
        return oid

    def _apply(self, group: list[tuple]) -> None:
        batch = self.committer.current
        recent = self.recent
        live = self.live
        symbol_ids = self.book.symbol_ids
        rows: list[tuple[int, int, int, int, int, int]] = []
        metas: list[tuple] = []
        later: list[tuple] = []  # repeats of a key first seen in this same group
        controls: list[tuple] = []
        for item in group:
            tag, peer, started, rec = item
            batch.requests += 1
            if tag == _ORDER:
                req_id, user_id, price, qty, side, kind, sym_b, coid_b = rec
                key = (user_id, coid_b.rstrip(b"\0").decode())
                if key in recent:
                    ack = recent[key]
                    if ack is None:
                        later.append((peer, started, req_id, key))
                    else:
                        batch.reply(peer, pack_ack(req_id, _as_duplicate(ack)), started)
                    continue
                recent[key] = None  # claimed; filled in below once the engine has decided
                symbol = sym_b.rstrip(b"\0").decode()
                oid = self._take_id()
                rows.append((oid, price, qty, symbol_ids.get(symbol, -1), side, kind))
                metas.append((_ORDER, peer, started, req_id, key, symbol, side, kind, price, qty))
            elif tag == _CANCEL:
                req_id, user_id, order_id, sym_b = rec
                entry = live.get(order_id)
                if entry is None or entry.user_id != user_id:
                    status = EngineStatus.UNKNOWN_ORDER if entry is None else EngineStatus.NOT_OWNER
                    ack = Ack(order_id, status, OrderState.OPEN, 0, 0)
                    batch.reply(peer, pack_ack(req_id, ack), started)
                    continue
                rows.append((order_id, 0, 0, symbol_ids[entry.symbol], 0, KIND_CANCEL))
                metas.append((_CANCEL, peer, started, req_id, entry))
            else:
                controls.append(item)
        if rows:
            t0 = time.perf_counter()
            results, fills = self.book.run(rows)
            self._run_hist.observe(time.perf_counter() - t0)
            self._record(batch, rows, metas, results, fills)
        for peer, started, req_id, key in later:
            batch.reply(peer, pack_ack(req_id, _as_duplicate(recent[key])), started)
        for _, peer, _started, request in controls:
            batch.controls.append((peer, self._control_reply(request)))
        if len(recent) > RECENT_LIMIT + EVICT_CHUNK:
            # Oldest first (dicts keep insertion order); evicted keys fall back to the database.
            for key in list(itertools.islice(recent, EVICT_CHUNK)):
                if recent[key] is not None:
                    del recent[key]

    def _record(self, batch, rows, metas, results, fills) -> None:
        live = self.live
        recent = self.recent
        nf = len(fills)
        fp = 0
        for i, (meta, (filled, resting, status)) in enumerate(zip(metas, results, strict=True)):
            oid = rows[i][0]
            if meta[0] == _ORDER:
                _, peer, started, req_id, key, symbol, side, kind, price, qty = meta
                state = state_after_submit(status=status, kind=kind, qty=qty, filled=filled, resting=resting)
                ack = Ack(oid, status, state, filled, resting)
                recent[key] = ack
                batch.new_orders[oid] = [
                    oid, key[0], key[1], symbol, side, kind, price, qty,
                    status, state, filled, resting, filled, resting, state,
                ]  # fmt: skip
                if resting > 0:
                    live[oid] = LiveOrder(key[0], symbol, resting, filled)
                batch.reply(peer, pack_ack(req_id, ack), started)
            else:
                _, peer, started, req_id, entry = meta
                if status == EngineStatus.OK:
                    del live[oid]
                    batch.move(oid, filled=entry.filled, remaining=0, state=OrderState.CANCELLED)
                ack = Ack(oid, status, OrderState.CANCELLED if status == 0 else OrderState.OPEN, filled, 0)
                batch.reply(peer, pack_ack(req_id, ack), started)
                symbol = entry.symbol
            seq = 0
            while fp < nf and fills[fp][4] == i:
                maker_id, taker_id, price, fqty, _ = fills[fp]
                fp += 1
                maker = live[maker_id]
                maker.remaining -= fqty
                maker.filled += fqty
                if maker.remaining == 0:
                    del live[maker_id]
                    state = OrderState.FILLED
                else:
                    state = OrderState.OPEN
                batch.move(maker_id, filled=maker.filled, remaining=maker.remaining, state=state)
                batch.fills.append((taker_id, seq, maker_id, symbol, price, fqty))
                seq += 1

    def _control_reply(self, request: dict) -> bytes:
        op = request.get("op")
        body: dict = {"req_id": request.get("req_id")}
        if op == "depth":
            symbol = str(request.get("symbol", ""))
            levels = max(1, min(int(request.get("levels", 10)), DEPTH_LEVELS_MAX))
            if symbol in self.book.symbol_ids:
                bids, asks = self.book.depth(symbol, levels=levels)
                body.update(symbol=symbol, bids=bids, asks=asks)
            else:
                body.update(error="unknown_symbol")
        else:
            body.update(ok=True)
        return wire.encode(wire.T_CONTROL_REPLY, orjson.dumps(body))


def _as_duplicate(ack: Ack | None) -> Ack:
    assert ack is not None
    if ack.duplicate:
        return ack
    return Ack(ack.order_id, ack.status, ack.state, ack.filled_qty, ack.resting_qty, duplicate=True)
