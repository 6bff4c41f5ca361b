"""The order flow that trades: its stated mix, what it cancels and where it crosses, and the
resting book it estimates from the acknowledgements. Pure: requests are bytes, answers are fed in."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pytest_hftk8s.errors import LoadError
from pytest_hftk8s.load.flow import DEFAULT_MIX, OrderFlow, check_mix


def _flow(**kwargs: object) -> OrderFlow:
    return OrderFlow(keys=["k0", "k1"], run_id="r", host="h:80", symbols=("AAPL", "MSFT"), seed=7, **kwargs)  # type: ignore[arg-type]


def _parse(raw: bytes) -> tuple[str, str, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *headers = head.decode().split("\r\n")
    key = next(h.split(": ", 1)[1] for h in headers if h.startswith("X-API-Key"))
    return request_line, key, json.loads(body) if body else {}


def _ack(order_id: int, *, filled: int = 0, resting: int = 0) -> bytes:
    return json.dumps(
        {"order_id": order_id, "status": "open", "filled_qty": filled, "resting_qty": resting}
    ).encode()


def test_mix_is_checked_and_normalised() -> None:
    assert check_mix({"limit": 3, "cross": 1}) == {"limit": 0.75, "cancel": 0.0, "cross": 0.25}
    with pytest.raises(LoadError, match="unknown actions \\['market'\\]"):
        check_mix({"limit": 1, "market": 1})
    with pytest.raises(LoadError, match="expected some limit or cross orders"):
        check_mix({"cancel": 1})
    with pytest.raises(LoadError, match="shares >= 0"):
        check_mix({"limit": -1})


def test_the_stated_mix_is_what_is_sent() -> None:
    flow = _flow()
    for seq in range(10_000):
        raw = flow.request(seq)
        line, _, body = _parse(raw)
        if line.startswith("POST") and body["type"] == "limit":
            flow.on_answer(seq, 200, _ack(seq + 1, resting=body["qty"]))  # limits rest: cancels need them
        else:
            flow.on_answer(seq, 200, b"{}")
    shares = {a: c.scheduled / 10_000 for a, c in flow.actions.items()}
    assert shares["cross"] == pytest.approx(DEFAULT_MIX["cross"], abs=0.01)
    assert shares["cancel"] == pytest.approx(DEFAULT_MIX["cancel"], abs=0.02)
    assert shares["limit"] + shares["cancel"] == pytest.approx(0.85, abs=0.01)  # cancels fall back to limits


def test_cancels_take_the_deepest_order_of_the_fullest_side_with_its_owners_key() -> None:
    flow = _flow(mix={"limit": 1.0})
    resting = {}
    for seq in range(40):
        line, key, body = _parse(flow.request(seq))
        assert line == "POST /v1/orders HTTP/1.1"
        ticks = round(abs(body["price"] - 100.0) * 100)
        resting[1000 + seq] = (body["symbol"], body["side"], ticks, key)
        flow.on_answer(seq, 200, _ack(1000 + seq, resting=body["qty"]))
    sides = Counter((s, side) for s, side, _, _ in resting.values())
    fullest = max(sides.values())
    flow.mix = check_mix({"cancel": 1.0, "limit": 0.0, "cross": 1e-9})
    flow._thresholds = [(1.0, "cancel")]
    line, key, _ = _parse(flow.request(99))
    assert line.startswith("DELETE /v1/orders/")
    order_id = int(line.split()[1].rsplit("/", 1)[1])
    symbol, side, ticks, owner = resting[order_id]
    assert key == owner
    assert sides[(symbol, side)] == fullest
    assert ticks == max(t for s, sd, t, _ in resting.values() if (s, sd) == (symbol, side))
    assert flow.actions["cancel"].scheduled == 1


def test_crosses_go_against_the_fullest_side_and_fills_come_off_its_best_orders() -> None:
    flow = _flow(mix={"limit": 1.0})
    for seq in range(30):
        _, _, body = _parse(flow.request(seq))
        flow.on_answer(seq, 200, _ack(1000 + seq, resting=body["qty"]))
    depth = {k: sum(o.qty for o in orders) for k, orders in flow._book.items()}
    (symbol, side), available = max(depth.items(), key=lambda kv: kv[1])
    flow._thresholds = [(1.0, "cross")]
    for seq in range(100, 130):  # whichever kind each cross draws, it aims at that side
        _, _, body = _parse(flow.request(seq))
        assert (body["symbol"], body["side"]) == (symbol, "sell" if side == "buy" else "buy")
        if body["type"] == "limit":
            assert body["qty"] <= available  # a crossing limit fills whole rather than resting
            assert abs(body["price"] - 100.0) == pytest.approx(0.10)  # through the whole depth
    best = min(flow._book[(symbol, side)], key=lambda o: o.ticks)
    best_qty = best.qty
    flow.on_answer(100, 200, _ack(5000, filled=best_qty))
    assert best not in flow._book[(symbol, side)]  # price-time priority took the best order first
    assert sum(o.qty for o in flow._book[(symbol, side)]) == available - best_qty


def test_acked_orders_are_the_placements_only() -> None:
    flow = _flow()
    answered = []
    for seq in range(300):
        line, _, _ = _parse(flow.request(seq))
        status = 200 if seq % 10 else 409
        flow.on_answer(seq, status, _ack(seq + 1, resting=1) if line.startswith("POST") else b"{}")
        if status == 200 and line.startswith("POST"):
            answered.append(seq)
    acked = flow.acked_orders(["alice", "bob"])
    assert [coid for _, coid in acked] == [f"r-{seq}" for seq in answered]
    assert {name for name, _ in acked} <= {"alice", "bob"}
    assert flow.actions["cancel"].ok + flow.actions["limit"].ok + flow.actions["cross"].ok == 270
