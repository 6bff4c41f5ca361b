"""The built-in SLOs and checks (DESIGN.md: throughput, registrations, p99 latency on both sides of
the wire, no CrashLoopBackOff, bounded restarts, no OOMKilled, recovery time, zero acknowledged-order
loss, fill integrity, the OOMKilled -> CrashLoopBackOff sequence).

Pure constructors: each returns a :class:`~.model.Check`; nothing is queried here. Kube-state-metrics
only exports a waiting/terminated reason series while it applies, so "no CrashLoopBackOff" and "no
OOMKilled" fall back to ``0 * count(kube_pod_status_ready)``: zero when the namespace's pods are
scraped, and still *no data* (a failure) when kube metrics are missing entirely. Event counters read
``$window_wide`` so a change right after the window opened is not lost; rates read ``$window``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_hftk8s.results import Series
from pytest_hftk8s.slo import queries
from pytest_hftk8s.slo.database import AckedOrdersStored, FillIntegrity, OrdersTraded
from pytest_hftk8s.slo.latency import ClientLatency
from pytest_hftk8s.slo.model import Check, Slo
from pytest_hftk8s.slo.oom import OomThenCrashLoop
from pytest_hftk8s.slo.recovery import RecoveryTime


def throughput(*, min_ratio: float = 0.95) -> Slo:
    """Accepted orders/s over the window relative to the offered order rate (``$offered_rate``)."""
    q = queries.THROUGHPUT_RATIO
    return Slo(
        name=q.name, expr=q.expr, comparator=">=", threshold=min_ratio,
        description=f"accepted orders/s >= {min_ratio:.0%} of the offered order rate", unit="ratio",
    )  # fmt: skip


def registration_success(*, min_ratio: float = 0.999) -> Slo:
    q = queries.REGISTRATION_SUCCESS
    return Slo(
        name=q.name, expr=q.expr, comparator=">=", threshold=min_ratio,
        description=f"registrations succeed >= {min_ratio:.1%}", unit="ratio",
    )  # fmt: skip


def p99_latency(*, max_ms: float = 50.0) -> Slo:
    """Server side: the backend's handler histogram (after parsing and auth, answered requests only)."""
    return Slo(
        name="p99_order_latency_ms", expr=queries.SERVER_P99_MS.expr, comparator="<=", threshold=max_ms,
        description=f"server-side p99 order latency <= {max_ms:g} ms", unit="ms",
    )  # fmt: skip


def client_p99_latency(*, max_ms: float = 100.0, load: str | None = None) -> ClientLatency:
    """Client side: the generator's p99 from each request's intended send time, timeouts at their time,
    unanswered requests as failures; the message quotes the server-side p99 beside it."""
    return ClientLatency(max_ms=max_ms, quantile=0.99, load=load)


def no_crashloop() -> Slo:
    q = queries.CRASHLOOP
    return Slo(
        name=q.name, expr=q.expr, comparator="==", threshold=0,
        description="no container waits in CrashLoopBackOff during the window",
    )  # fmt: skip


def bounded_restarts(*, max_restarts: int = 0) -> Slo:
    return Slo(
        name="bounded_restarts", expr=queries.RESTARTS.expr, comparator="<=", threshold=max_restarts,
        description=f"at most {max_restarts} container restarts in the window",
    )  # fmt: skip


def no_oomkilled() -> Slo:
    q = queries.OOMKILLED
    return Slo(
        name=q.name, expr=q.expr, comparator="==", threshold=0,
        description="no container was last terminated as OOMKilled during the window",
    )  # fmt: skip


def recovery_time(
    timeline: Series, *, fault_at: float, floor_rate: float, max_s: float, until: float | None = None
) -> RecoveryTime:
    """Throughput back at ``floor_rate`` for a full second (100 ms resolution) within ``max_s`` of the fault."""
    return RecoveryTime(timeline=timeline, fault_at=fault_at, floor_rate=floor_rate, max_s=max_s, until=until)


def acked_orders_stored(acked: Sequence[tuple[str, str]], *, prefix: str) -> AckedOrdersStored:
    """Zero acknowledged-order loss, checked in PostgreSQL (not Prometheus)."""
    return AckedOrdersStored(acked=tuple(acked), prefix=prefix)


def fill_integrity(*, min_fills: int = 1) -> FillIntegrity:
    """No fill applied twice, no order over-filled, the engine's book equals PostgreSQL's open orders."""
    return FillIntegrity(min_fills=min_fills)


def orders_traded(
    *, prefix: str, min_filled_share: float = 0.10, max_resting_share: float = 0.25
) -> OrdersTraded:
    """A run's orders traded (filled share) and its resting orders stayed bounded, from PostgreSQL."""
    return OrdersTraded(prefix=prefix, min_filled_share=min_filled_share, max_resting_share=max_resting_share)


def oom_then_crashloop(*, container: str) -> OomThenCrashLoop:
    return OomThenCrashLoop(container=container)


BUILTINS: dict[str, Callable[..., Check]] = {
    "throughput": throughput,
    "registration_success": registration_success,
    "p99_order_latency_ms": p99_latency,
    "p99_latency": p99_latency,
    "client_p99_latency": client_p99_latency,
    "client_p99_latency_ms": client_p99_latency,
    "no_crashloopbackoff": no_crashloop,
    "bounded_restarts": bounded_restarts,
    "no_oomkilled": no_oomkilled,
    "fill_integrity": fill_integrity,
    "oomkilled_then_crashloopbackoff": oom_then_crashloop,
}


def builtin(name: str, **params: Any) -> Check:
    """A built-in SLO by name, with its parameters (e.g. ``builtin("p99_latency", max_ms=20)``)."""
    from pytest_hftk8s.errors import ConfigError

    try:
        factory = BUILTINS[name]
    except KeyError:
        raise ConfigError(
            f"unknown built-in SLO {name!r}; expected one of {', '.join(sorted(BUILTINS))}"
        ) from None
    try:
        return factory(**params)
    except TypeError as e:
        raise ConfigError(f"built-in SLO {name!r}: bad parameters {params!r}: {e}") from e


def baseline(
    *, p99_ms: float = 50.0, client_p99_ms: float = 100.0, min_throughput: float = 0.95
) -> list[Check]:
    """What a trading desk signs for a steady load: the built-ins that hold on any healthy run."""
    return [
        throughput(min_ratio=min_throughput),
        registration_success(),
        p99_latency(max_ms=p99_ms),
        client_p99_latency(max_ms=client_p99_ms),
        no_crashloop(),
        bounded_restarts(),
        no_oomkilled(),
    ]
