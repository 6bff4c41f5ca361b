"""An order flow that trades: a stated mix of resting limits, cancels and marketable orders.

Every request slot draws an action from the mix (seeded, so a run is reproducible):

- ``limit``: a resting limit order 1..10 ticks away from the mid on a random side of a random symbol
  (bids below the mid, asks above: it rests unless the book is crossed);
- ``cancel``: ``DELETE`` of one of this run's own resting orders - the one farthest from the mid on the
  fullest side of the book, the least likely to have been filled meanwhile (when the run has none
  yet, the slot places a limit instead, and the summary counts it as a limit);
- ``cross``: a marketable order - market, IOC or limit priced through the whole 10-tick depth the
  resting orders use - against the side of the book with the most resting quantity, sized to take
  about three resting orders (a crossing limit no more than that side holds, so it fills whole
  rather than resting), so fills happen and the book does not grow without bound.

The flow keeps an estimate of its own resting orders per book side from the acknowledgements
(``on_answer``: resting quantity added, filled quantity taken from the opposite side best-first, as
price-time priority does), counts each action, and remembers which sequence numbers were order
placements, so acknowledged orders can be looked up in the database afterwards. It runs on the load
generator's event loop; no I/O of its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_hftk8s.errors import LoadError
from pytest_hftk8s.load import api
from pytest_hftk8s.results import ActionCounts

ACTIONS = ("limit", "cancel", "cross")
DEFAULT_MIX: Mapping[str, float] = {"limit": 0.6, "cancel": 0.25, "cross": 0.15}
MID = 100.0
DEPTH_TICKS = 10
LIMIT_QTY = (1, 5)
# Per request the default mix adds 0.6 x 3 lots on average and takes 0.15 x 10 (crosses) plus
# 0.25 x ~2.5 (cancels): more than it adds, so the book shrinks towards a few resting orders per side
# (a market order that finds the book thin expires; that is a trade too).
CROSS_QTY = (7, 13)
OPPOSITE = {"buy": "sell", "sell": "buy"}


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """The mix normalised to shares that sum to 1; :class:`LoadError` saying what is wrong otherwise."""
    unknown = sorted(set(mix) - set(ACTIONS))
    if unknown:
        raise LoadError(f"mix: unknown actions {unknown}; expected some of {', '.join(ACTIONS)}")
    if any(not isinstance(v, int | float) or isinstance(v, bool) or v < 0 for v in mix.values()):
        raise LoadError(f"mix: expected shares >= 0, got {dict(mix)!r}")
    total = float(sum(mix.values()))
    if total <= 0 or mix.get("limit", 0) + mix.get("cross", 0) <= 0:
        raise LoadError(f"mix: expected some limit or cross orders, got {dict(mix)!r}")
    return {a: float(mix.get(a, 0.0)) / total for a in ACTIONS}


@dataclass
class _Resting:
    ticks: int  # distance from the mid on its own side; lower is better priced (negative: through the mid)
    order_id: int
    user: int
    qty: int


@dataclass(frozen=True)
class _Sent:
    action: str
    user: int
    symbol: str = ""
    side: str = ""
    ticks: int = 0


class OrderFlow:
    """A request factory (``request(seq)``) plus an answer hook (``on_answer``); see the module docstring."""

    def __init__(
        self,
        *,
        keys: Sequence[str],
        run_id: str,
        host: str,
        mix: Mapping[str, float] = DEFAULT_MIX,
        symbols: Sequence[str] = api.SYMBOLS,
        seed: int = 0,
    ) -> None:
        if not keys:
            raise LoadError("an order flow needs at least one registered user's API key")
        self.keys = list(keys)
        self.run_id = run_id
        self.host = host
        self.mix = check_mix(mix)
        self.symbols = list(symbols)
        self._rng = random.Random(seed)
        self._thresholds: list[tuple[float, str]] = []
        acc = 0.0
        for action in ACTIONS:
            acc += self.mix[action]
            self._thresholds.append((acc, action))
        self.actions = {a: ActionCounts() for a in ACTIONS}
        self._sent: dict[int, _Sent] = {}  # seq -> what it was, until answered
        self.placed: dict[int, int] = {}  # seq of every order placement -> key index
        self.acked: list[int] = []  # seqs of acknowledged order placements, in answer order
        self._book: dict[tuple[str, str], list[_Resting]] = {}  # (symbol, side) -> our resting orders

    # -- requests -------------------------------------------------------------------------------

    def _draw(self) -> str:
        x = self._rng.random()
        return next((a for t, a in self._thresholds if x < t), ACTIONS[-1])

    def request(self, seq: int) -> bytes:
        action = self._draw()
        if action == "cancel":
            target = self._to_cancel()
            if target is not None:
                symbol, side, order = target
                self._sent[seq] = _Sent("cancel", order.user, symbol, side, order.ticks)
                self.actions["cancel"].scheduled += 1
                return api.cancel_request(order.order_id, api_key=self.keys[order.user], host=self.host)
            action = "limit"
        user = self._rng.randrange(len(self.keys))
        body, sent = self._order(seq, action, user)
        self._sent[seq] = sent
        self.placed[seq] = user
        self.actions[action].scheduled += 1
        return api.order_request(body, api_key=self.keys[user], host=self.host)

    def _to_cancel(self) -> tuple[str, str, _Resting] | None:
        """The resting order farthest from the mid on the fullest side of our book, taken off it."""
        sides = [(len(orders), key) for key, orders in self._book.items() if orders]
        if not sides:
            return None
        _, (symbol, side) = max(sides)
        orders = self._book[(symbol, side)]
        order = max(orders, key=lambda o: o.ticks)
        orders.remove(order)
        return symbol, side, order

    def _order(self, seq: int, action: str, user: int) -> tuple[api.OrderBody, _Sent]:
        rng = self._rng
        coid = f"{self.run_id}-{seq}"
        if action == "limit":
            symbol, side, ticks = (
                rng.choice(self.symbols),
                rng.choice(("buy", "sell")),
                rng.randint(1, DEPTH_TICKS),
            )
            sign = 1 if side == "buy" else -1
            body = api.order_body(
                client_order_id=coid, symbol=symbol, side=side, kind="limit", qty=rng.randint(*LIMIT_QTY),
                price=MID - sign * ticks * api.TICK,
            )  # fmt: skip
            return body, _Sent("limit", user, symbol, side, ticks)
        symbol, side, available = self._liquid_target(rng)
        sign = 1 if side == "buy" else -1
        qty = rng.randint(*CROSS_QTY)
        kind = rng.choice(("market", "ioc", "limit"))
        if kind == "limit" and available:
            qty = min(qty, available)  # a crossing limit that fills whole, instead of resting the rest
        if kind == "market":
            body = api.order_body(client_order_id=coid, symbol=symbol, side=side, kind="market", qty=qty)
            return body, _Sent("cross", user, symbol, side, 0)
        body = api.order_body(
            client_order_id=coid, symbol=symbol, side=side, kind=kind, qty=qty,
            price=MID + sign * DEPTH_TICKS * api.TICK,
        )  # fmt: skip
        return body, _Sent("cross", user, symbol, side, -DEPTH_TICKS)

    def _liquid_target(self, rng: random.Random) -> tuple[str, str, int]:
        """(symbol, side, resting quantity it faces) of a marketable order: against our fullest side."""
        depth = [(sum(o.qty for o in orders), key) for key, orders in self._book.items() if orders]
        if not depth:
            return rng.choice(self.symbols), rng.choice(("buy", "sell")), 0
        available, (symbol, resting_side) = max(depth)
        return symbol, OPPOSITE[resting_side], available

    # -- answers --------------------------------------------------------------------------------

    def on_answer(self, seq: int, status: int, body: bytes) -> None:
        sent = self._sent.pop(seq, None)
        if sent is None:
            return
        counts = self.actions[sent.action]
        key = str(status)
        counts.statuses[key] = counts.statuses.get(key, 0) + 1
        if not 200 <= status < 300:
            return
        counts.ok += 1
        if sent.action == "cancel":
            return
        self.acked.append(seq)
        try:
            ack = json.loads(body) if body else {}
        except ValueError:
            return
        filled = int(ack.get("filled_qty") or 0)
        if filled:
            self._consume(sent.symbol, OPPOSITE[sent.side], filled)
        resting = int(ack.get("resting_qty") or 0)
        if resting and isinstance(ack.get("order_id"), int):
            self._book.setdefault((sent.symbol, sent.side), []).append(
                _Resting(sent.ticks, ack["order_id"], sent.user, resting)
            )

    def _consume(self, symbol: str, side: str, qty: int) -> None:
        """A fill took ``qty`` from ``side``: take it from our best-priced resting orders first."""
        orders = self._book.get((symbol, side))
        if not orders:
            return
        orders.sort(key=lambda o: o.ticks)
        while qty > 0 and orders:
            best = orders[0]
            take = min(qty, best.qty)
            best.qty -= take
            qty -= take
            if best.qty == 0:
                orders.pop(0)

    def acked_orders(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """``(user name, client_order_id)`` of every acknowledged order placement."""
        return [(names[self.placed[seq]], f"{self.run_id}-{seq}") for seq in self.acked]
