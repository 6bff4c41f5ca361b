"""The checks that read the platform's PostgreSQL (and its book over HTTP) instead of Prometheus.

- :func:`acked_vs_stored` / :class:`AckedOrdersStored` - every order the generator saw acknowledged,
  looked up by ``(user, client_order_id)``: none may be missing.
- :func:`fill_integrity` / :class:`FillIntegrity` - at the level of fills: no execution stored twice
  (one taker meets one maker at most once), no order filled beyond its quantity, ``orders.filled``
  equal to the sum of its fills, and the engine's book (``GET /v1/book``, rebuilt from PostgreSQL
  after a restart) equal to the open orders in PostgreSQL, level by level.

``UNIQUE (user_id, client_order_id)`` makes a duplicated *order* impossible, so duplicates are looked
for where they can happen: in fills. Every query is bounded by a timeout. It reads; it never writes,
asserts, injects or restarts anything.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_hftk8s.errors import HftError
from pytest_hftk8s.results import AckCheck, FillCheck, SloResult
from pytest_hftk8s.slo.model import result

if TYPE_CHECKING:
    from pytest_hftk8s.slo.evaluate import Context

#: The platform's prices are integer ticks of 0.01 (hft_platform.domain.TICKS_PER_UNIT).
TICKS_PER_UNIT = 100
#: The most levels ``GET /v1/book`` returns per side.
BOOK_LEVELS = 50
SIDES = {0: "bids", 1: "asks"}


@dataclass(frozen=True)
class DbTarget:
    host: str
    port: int
    user: str = "hft"
    database: str = "hft"
    password: str = ""


def db_password(
    objects: Iterable[Mapping[str, Any]], *, secret: str = "hft-db", key: str = "password"
) -> str:
    """The database password from the rendered Secret (``data`` base64 or ``stringData``)."""
    for obj in objects:
        if obj.get("kind") == "Secret" and (obj.get("metadata") or {}).get("name") == secret:
            if key in (obj.get("stringData") or {}):
                return str(obj["stringData"][key])
            if key in (obj.get("data") or {}):
                return base64.b64decode(obj["data"][key]).decode()
    raise HftError(f"expected a Secret {secret!r} with key {key!r} in the rendered manifests; none found")


async def _fetch(db: DbTarget, timeout: float, *queries: tuple[str, Sequence[Any]]) -> list[list[Any]]:
    import asyncpg

    try:
        conn = await asyncpg.connect(
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password,
            database=db.database,
            timeout=timeout,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise HftError(
            f"expected to reach PostgreSQL at {db.host}:{db.port} as {db.user}: {type(e).__name__}: {e}"
        ) from e
    try:
        return [[tuple(r) for r in await conn.fetch(sql, *args, timeout=timeout)] for sql, args in queries]
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise HftError(
            f"PostgreSQL at {db.host}:{db.port} failed a check query: {type(e).__name__}: {e}"
        ) from e
    finally:
        await conn.close()


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for ``client_order_id`` = ``{prefix}-...``: ``\\``, ``%`` and ``_`` in the prefix
    are escaped (PostgreSQL's default escape character is the backslash), so they match only themselves."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "-%"


def acked_vs_stored(
    acked: Sequence[tuple[str, str]], *, prefix: str, db: DbTarget, timeout: float = 10.0
) -> AckCheck:
    """Look every acknowledged ``(user name, client_order_id)`` up in the ``orders`` table."""
    (rows,) = asyncio.run(
        _fetch(
            db,
            timeout,
            (
                "SELECT u.name, o.client_order_id, count(*) FROM orders o JOIN users u ON u.user_id = o.user_id "
                "WHERE o.client_order_id LIKE $1 GROUP BY 1, 2",
                [_like_prefix(prefix)],
            ),
        )
    )
    stored: dict[tuple[str, str], int] = {}
    users_per_id: dict[str, set[str]] = {}
    for name, coid, count in rows:
        stored[(name, coid)] = int(count)
        users_per_id.setdefault(coid, set()).add(name)
    acked_set = set(acked)
    lost = sorted(a for a in acked_set if stored.get(a, 0) == 0)
    duplicated = sorted({f"{n}/{c}" for (n, c), k in stored.items() if k > 1})
    duplicated += sorted(f"*/{c}" for c, names in users_per_id.items() if len(names) > 1)
    return AckCheck(
        acked=len(acked_set),
        stored=sum(stored.values()),
        acked_stored=sum(1 for a in acked_set if stored.get(a, 0) == 1),
        lost=len(lost),
        duplicated=len(duplicated),
        stored_not_acked=sum(1 for k in stored if k not in acked_set),
        lost_examples=[f"{n}/{c}" for n, c in lost[:10]],
        duplicated_examples=duplicated[:10],
    )


_EXECUTIONS = "SELECT taker_id AS order_id, qty FROM fills UNION ALL SELECT maker_id, qty FROM fills"
FILL_QUERIES: tuple[tuple[str, str], ...] = (
    ("counts", "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM orders WHERE filled > 0), "
               "(SELECT count(*) FROM fills), (SELECT count(*) FROM orders WHERE remaining > 0)"),
    ("duplicated", "SELECT taker_id, maker_id, count(*) FROM fills GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1"),
    ("overfilled", f"SELECT o.order_id, o.qty, sum(e.qty) FROM orders o JOIN ({_EXECUTIONS}) e USING (order_id) "
                   "GROUP BY o.order_id, o.qty HAVING sum(e.qty) > o.qty ORDER BY 1"),
    ("accounting", f"SELECT o.order_id, o.filled, coalesce(s.q, 0) FROM orders o LEFT JOIN "
                   f"(SELECT order_id, sum(qty) AS q FROM ({_EXECUTIONS}) e GROUP BY 1) s USING (order_id) "
                   "WHERE o.filled <> coalesce(s.q, 0) ORDER BY 1"),
    ("book", "SELECT symbol, side, price, sum(remaining), count(*) FROM orders WHERE remaining > 0 "
             "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"),
    ("symbols", "SELECT DISTINCT symbol FROM orders ORDER BY 1"),
)  # fmt: skip


def fill_integrity(*, db: DbTarget, api_url: str, timeout: float = 10.0) -> FillCheck:
    """Fill-level integrity of the whole database, and the engine's book against it (quiescent platform)."""
    rows = dict(
        zip(
            (name for name, _ in FILL_QUERIES),
            asyncio.run(_fetch(db, timeout, *((sql, ()) for _, sql in FILL_QUERIES))),
            strict=True,
        )
    )
    orders, filled_orders, fills, open_orders = rows["counts"][0]
    examples = [f"fill (taker {t}, maker {m}) stored {n} times" for t, m, n in rows["duplicated"][:5]]
    examples += [f"order {o}: qty {q}, fills add up to {s}" for o, q, s in rows["overfilled"][:5]]
    examples += [f"order {o}: filled {f}, its fills add up to {s}" for o, f, s in rows["accounting"][:5]]
    symbols = [r[0] for r in rows["symbols"]]
    stored: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for symbol, side, price, qty, count in rows["book"]:
        stored.setdefault((symbol, SIDES[int(side)]), []).append((int(price), int(qty), int(count)))
    book_mismatches = 0
    for symbol in symbols:
        engine = _engine_book(api_url, symbol, timeout)
        for side in ("bids", "asks"):
            levels = sorted(stored.get((symbol, side), []), reverse=side == "bids")[:BOOK_LEVELS]
            if engine[side] != levels:
                book_mismatches += 1
                if len(examples) < 20:
                    examples.append(
                        f"{symbol} {side}: engine {engine[side][:5]}..., PostgreSQL {levels[:5]}... "
                        "(price ticks, quantity, orders)"
                    )
    return FillCheck(
        orders=int(orders),
        filled_orders=int(filled_orders),
        fills=int(fills),
        duplicated_fills=len(rows["duplicated"]),
        overfilled_orders=len(rows["overfilled"]),
        accounting_mismatches=len(rows["accounting"]),
        book_mismatches=book_mismatches,
        open_orders=int(open_orders),
        symbols=len(symbols),
        examples=examples,
    )


def _engine_book(api_url: str, symbol: str, timeout: float) -> dict[str, list[tuple[int, int, int]]]:
    import httpx

    url = f"{api_url.rstrip('/')}/v1/book/{symbol}"
    try:
        response = httpx.get(url, params={"levels": BOOK_LEVELS}, timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as e:
        raise HftError(f"expected the engine's book at {url}: {type(e).__name__}: {e}") from e
    return {
        side: [
            (round(float(lv["price"]) * TICKS_PER_UNIT), int(lv["qty"]), int(lv["orders"]))
            for lv in body[side]
        ]
        for side in ("bids", "asks")
    }


@dataclass(frozen=True)
class AckedOrdersStored:
    """Zero acknowledged-order loss: every order the generator saw acknowledged is in PostgreSQL."""

    acked: tuple[tuple[str, str], ...]
    prefix: str
    name: str = "acked_orders_stored"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        out = result(
            self, window=ctx.window, observed=None, passed=False, comparator="==", threshold=0,
            unit="orders lost", query="acknowledged (user, client_order_id) looked up in PostgreSQL",
        )  # fmt: skip
        if ctx.db is None:
            out.message = "no data: the platform's database is not known to this evaluation"
            return out
        if not self.acked:
            out.message = "no data: the load run acknowledged no order, so nothing can be checked"
            return out
        try:
            check = acked_vs_stored(self.acked, prefix=self.prefix, db=ctx.db)
        except HftError as e:
            out.message = f"no data: {e}"
            return out
        out.observed, out.passed, out.detail = check.lost, check.lost == 0, check
        if check.lost:
            out.message = (
                f"{check.lost} of {check.acked} acknowledged orders are missing, e.g. {check.lost_examples}"
            )
        return out


@dataclass(frozen=True)
class FillIntegrity:
    """No fill applied twice, no order over-filled, fills add up, the engine's book equals PostgreSQL's."""

    min_fills: int = 1  # on a run that trades, an empty fills table means the check checked nothing
    name: str = "fill_integrity"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        out = result(
            self, window=ctx.window, observed=None, passed=False, comparator="==", threshold=0,
            unit="violations", query="fills and open orders in PostgreSQL; GET /v1/book per symbol",
        )  # fmt: skip
        if ctx.db is None or ctx.api_url is None:
            out.message = "no data: the platform's database or HTTP API is not known to this evaluation"
            return out
        try:
            check = fill_integrity(db=ctx.db, api_url=ctx.api_url)
        except HftError as e:
            out.message = f"no data: {e}"
            return out
        violations = (
            check.duplicated_fills
            + check.overfilled_orders
            + check.accounting_mismatches
            + check.book_mismatches
        )
        out.observed, out.detail = violations, check
        out.passed = violations == 0 and check.fills >= self.min_fills
        if check.fills < self.min_fills:
            out.message = (
                f"no data: {check.fills} fills stored (expected >= {self.min_fills}): nothing traded"
            )
        elif violations:
            out.message = "; ".join(check.examples[:6])
        return out


def orders_traded(*, db: DbTarget, prefix: str, timeout: float = 10.0) -> tuple[int, int, int, int]:
    """(orders of one load run, those with fills; limit orders in the whole book, those still resting).

    The run's own orders say whether it traded; the resting share is taken over every limit order the
    book has seen, because price-time priority fills older runs' orders first: one run's orders are
    consumed by the next, while the book as a whole only grows if the flow stops cancelling or crossing.
    """
    run, book = asyncio.run(
        _fetch(
            db,
            timeout,
            (
                "SELECT count(*), count(*) FILTER (WHERE filled > 0) FROM orders WHERE client_order_id LIKE $1",
                [_like_prefix(prefix)],
            ),
            (
                "SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE remaining > 0) FROM orders",
                [],
            ),
        )
    )
    return int(run[0][0]), int(run[0][1]), int(book[0][0]), int(book[0][1])


@dataclass(frozen=True)
class OrdersTraded:
    """The run traded: at least ``min_filled_share`` of its orders filled in PostgreSQL; and the live
    book stays bounded: at most ``max_resting_share`` of all the limit orders it has seen still rest."""

    prefix: str
    min_filled_share: float = 0.10
    max_resting_share: float = 0.25
    name: str = "orders_traded"
    severity: str = "error"

    def evaluate(self, ctx: Context) -> SloResult:
        out = result(
            self, window=ctx.window, observed=None, passed=False, comparator=">=", threshold=self.min_filled_share,
            unit="of orders filled", query=f"orders with client_order_id {self.prefix}-* in PostgreSQL",
        )  # fmt: skip
        if ctx.db is None:
            out.message = "no data: the platform's database is not known to this evaluation"
            return out
        try:
            orders, filled, limits, resting = orders_traded(db=ctx.db, prefix=self.prefix)
        except HftError as e:
            out.message = f"no data: {e}"
            return out
        if orders == 0:
            out.message = f"no data: no order of the run {self.prefix!r} is stored"
            return out
        filled_share = filled / orders
        resting_share = resting / limits if limits else 0.0
        out.observed = filled_share
        out.extra = {"orders": orders, "filled": filled, "book_limit_orders": limits, "book_resting": resting,
                     "resting_share": resting_share, "max_resting_share": self.max_resting_share}  # fmt: skip
        out.passed = filled_share >= self.min_filled_share and resting_share <= self.max_resting_share
        out.message = (
            f"{filled} of {orders} orders filled ({filled_share:.1%}, expected >= {self.min_filled_share:.0%}); "
            f"the book: {resting} of the {limits} limit orders it has seen still rest ({resting_share:.1%}, "
            f"expected <= {self.max_resting_share:.0%})"
        )
        return out


#: The checks that read PostgreSQL (the others never need a path to it).
DATABASE_CHECKS = (AckedOrdersStored, FillIntegrity, OrdersTraded)
