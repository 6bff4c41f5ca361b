"""What a resilience test measures after a fault, as plain data for the report.

- :func:`recovery` - from a load run's per-100 ms timeline of acknowledged orders: when throughput
  dipped below a floor after the fault, and when it was back at >= the floor for a full second.
- :func:`acked_vs_stored` - every order the generator saw acknowledged, looked up in PostgreSQL by
  ``(user, client_order_id)``: none may be missing, none may be stored twice.
- :func:`oom_sequence` - from Prometheus, when a container was last terminated ``OOMKilled`` and
  when it waited in ``CrashLoopBackOff`` (kube-state-metrics series), and whether in that order.

It reads; it never asserts, injects or restarts anything.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_hftk8s.errors import HftError

#: The sliding window a recovered throughput must hold for, seconds.
RECOVERY_WINDOW_S = 1.0


@dataclass
class Recovery:
    """Throughput around one fault (times in epoch seconds, durations in seconds)."""

    fault_at: float
    floor_rate: float  # orders/s that counts as recovered (e.g. 90% of the baseline)
    dipped: bool = False
    dip_at: float | None = None
    recovered_at: float | None = None
    recovery_s: float | None = None  # recovered_at - fault_at; 0.0 when throughput never dipped
    min_rate: float | None = None  # lowest 1 s rate after the fault
    observed_until: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def recovery(
    timeline: Sequence[tuple[float, int]],
    *,
    fault_at: float,
    floor_rate: float,
    until: float | None = None,
    window_s: float = RECOVERY_WINDOW_S,
) -> Recovery:
    """Recovery from ``timeline`` ((bucket start, count) pairs of equal width, gaps filled)."""
    result = Recovery(fault_at=fault_at, floor_rate=floor_rate)
    if len(timeline) < 2:
        return result
    width = timeline[1][0] - timeline[0][0]
    per_window = max(1, round(window_s / width))
    starts = [t for t, _ in timeline]
    counts = [c for _, c in timeline]
    last = until if until is not None else starts[-1] + width
    result.observed_until = last
    rates: list[tuple[float, float]] = []  # (window start, orders/s over [start, start + window_s))
    for i in range(len(starts) - per_window + 1):
        start = starts[i]
        if start < fault_at - width / 2 or start + window_s > last + 1e-9:
            continue
        rates.append((start, sum(counts[i : i + per_window]) / (per_window * width)))
    if not rates:
        return result
    result.min_rate = min(r for _, r in rates)
    dip = next((t for t, r in rates if r < floor_rate), None)
    if dip is None:
        result.recovered_at, result.recovery_s = fault_at, 0.0
        return result
    result.dipped, result.dip_at = True, dip
    back = next((t for t, r in rates if t > dip and r >= floor_rate), None)
    if back is not None:
        result.recovered_at, result.recovery_s = back, max(0.0, back - fault_at)
    return result


@dataclass
class AckCheck:
    """Acknowledged orders against the database."""

    acked: int
    stored: int  # rows found for the run's client_order_ids (acknowledged or not)
    acked_stored: int  # acknowledged orders found exactly once under their user
    lost: int
    duplicated: int
    stored_not_acked: int  # committed but the answer never arrived (allowed: the client may retry)
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DbTarget:
    host: str
    port: int
    user: str = "hft"
    database: str = "hft"
    password: str = ""


def db_password(objects: Iterable[dict[str, Any]], *, secret: str = "hft-db", key: str = "password") -> str:
    """The database password from the rendered Secret (``data`` base64 or ``stringData``)."""
    for obj in objects:
        if obj.get("kind") == "Secret" and (obj.get("metadata") or {}).get("name") == secret:
            if key in (obj.get("stringData") or {}):
                return str(obj["stringData"][key])
            if key in (obj.get("data") or {}):
                return base64.b64decode(obj["data"][key]).decode()
    raise HftError(f"expected a Secret {secret!r} with key {key!r} in the rendered manifests; none found")


def acked_vs_stored(
    acked: Sequence[tuple[str, str]], *, prefix: str, db: DbTarget, timeout: float = 10.0
) -> AckCheck:
    """Look every acknowledged ``(user name, client_order_id)`` up in the ``orders`` table."""
    rows = asyncio.run(_stored(prefix, db, timeout))
    stored: dict[tuple[str, str], int] = {}
    users_per_id: dict[str, set[str]] = {}
    for name, coid, count in rows:
        stored[(name, coid)] = count
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


async def _stored(prefix: str, db: DbTarget, timeout: float) -> list[tuple[str, str, int]]:
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
        raise HftError(f"expected to reach PostgreSQL at {db.host}:{db.port} as {db.user}: {e}") from e
    try:
        records = await conn.fetch(
            "SELECT u.name, o.client_order_id, count(*) FROM orders o JOIN users u ON u.user_id = o.user_id "
            "WHERE o.client_order_id LIKE $1 GROUP BY 1, 2",
            prefix + "-%",
            timeout=timeout,
        )
    finally:
        await conn.close()
    return [(r[0], r[1], int(r[2])) for r in records]


@dataclass
class OomSequence:
    """When Prometheus first saw the container OOMKilled and in CrashLoopBackOff."""

    container: str
    oom_killed_at: float | None = None
    crashloop_at: float | None = None
    queries: dict[str, str] = field(default_factory=dict)

    @property
    def detected(self) -> bool:
        return self.oom_killed_at is not None and self.crashloop_at is not None

    @property
    def in_order(self) -> bool:
        return self.detected and self.oom_killed_at <= self.crashloop_at  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detected": self.detected, "oom_then_crashloop": self.in_order}


def oom_sequence(client: Any, *, namespace: str, container: str, start: float, end: float) -> OomSequence:
    """First sample times of OOMKilled (last terminated) and CrashLoopBackOff (waiting) in ``[start, end]``."""
    seq = OomSequence(container=container)
    selectors = {
        "oom_killed_at": f'kube_pod_container_status_last_terminated_reason{{namespace="{namespace}",'
        f'container="{container}",reason="OOMKilled"}}',
        "crashloop_at": f'kube_pod_container_status_waiting_reason{{namespace="{namespace}",'
        f'container="{container}",reason="CrashLoopBackOff"}}',
    }
    seconds = max(1, int(end - start) + 1)
    for attr, selector in selectors.items():
        # The earliest sample with value 1 stamped inside the range (a reason series keeps its value
        # after the event, so samples stamped before ``start`` are an earlier event, not this one).
        query = f"min(min_over_time((timestamp({selector} == 1) >= {start - 1:.3f})[{seconds}s:250ms]))"
        seq.queries[attr] = query
        value = client.scalar(query, at=end)
        if value is not None and value == value and start - 1 <= value <= end + 1:
            setattr(seq, attr, value)
    return seq


def db_target(cluster: Any, profile: str) -> DbTarget:
    """Where the test process reaches the platform's PostgreSQL, with the rendered Secret's password."""
    from pytest_hftk8s.manifests import render

    address = cluster.service_address("postgres", 5432)
    return DbTarget(host=address.host, port=address.port, password=db_password(render(profile)))
