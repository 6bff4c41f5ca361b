"""The built-in SLOs, as PromQL over DESIGN.md's metric contract (names byte-for-byte).

Pure constructors: each returns an :class:`~pytest_hftk8s.slo.model.Slo`; nothing is queried here.
Kube-state-metrics only exports a waiting/terminated reason series while it applies, so "no
CrashLoopBackOff" and "no OOMKilled" fall back to ``0 * count(kube_pod_status_ready)``: zero when the
namespace's pods are scraped, and still *no data* (a failure) when kube metrics are missing entirely.
Event counters (registrations, restarts, reasons) read ``$window_wide`` so a change right after the
window opened is not lost; throughput and latency read exactly ``$window``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_hftk8s.slo.model import Slo

_PODS_SEEN = '0 * count(max_over_time(kube_pod_status_ready{namespace="$namespace"}[$window_wide]))'


def throughput(*, min_ratio: float = 0.95) -> Slo:
    """Accepted orders/s over the window relative to the offered rate (``$offered_rate``)."""
    return Slo(
        name="throughput",
        expr='sum(rate(hft_orders_total{outcome="accepted"}[$window])) / $offered_rate',
        comparator=">=",
        threshold=min_ratio,
        description=f"accepted orders/s >= {min_ratio:.0%} of the offered rate",
        unit="ratio",
    )


def registration_success(*, min_ratio: float = 0.999) -> Slo:
    return Slo(
        name="registration_success",
        expr=(
            'sum(increase(hft_registrations_total{outcome=~"ok|success|created|registered"}[$window_wide]))'
            " / sum(increase(hft_registrations_total[$window_wide]))"
        ),
        comparator=">=",
        threshold=min_ratio,
        description=f"registrations succeed >= {min_ratio:.1%}",
        unit="ratio",
    )


def p99_latency(*, max_ms: float = 50.0) -> Slo:
    return Slo(
        name="p99_order_latency_ms",
        expr="1000 * histogram_quantile(0.99, sum by (le) (rate(hft_order_latency_seconds_bucket[$window])))",
        comparator="<=",
        threshold=max_ms,
        description=f"p99 order latency <= {max_ms:g} ms",
        unit="ms",
    )


def no_crashloop() -> Slo:
    return Slo(
        name="no_crashloopbackoff",
        expr=(
            "sum(max_over_time(kube_pod_container_status_waiting_reason"
            '{namespace="$namespace",reason="CrashLoopBackOff"}[$window_wide])) or ' + _PODS_SEEN
        ),
        comparator="==",
        threshold=0,
        description="no container waits in CrashLoopBackOff during the window",
    )


def bounded_restarts(*, max_restarts: int = 0) -> Slo:
    return Slo(
        name="bounded_restarts",
        expr='sum(increase(kube_pod_container_status_restarts_total{namespace="$namespace"}[$window_wide]))',
        comparator="<=",
        threshold=max_restarts,
        description=f"at most {max_restarts} container restarts in the window",
    )


def no_oomkilled() -> Slo:
    return Slo(
        name="no_oomkilled",
        expr=(
            "sum(max_over_time(kube_pod_container_status_last_terminated_reason"
            '{namespace="$namespace",reason="OOMKilled"}[$window_wide])) or ' + _PODS_SEEN
        ),
        comparator="==",
        threshold=0,
        description="no container was last terminated as OOMKilled during the window",
    )


BUILTINS: dict[str, Callable[..., Slo]] = {
    "throughput": throughput,
    "registration_success": registration_success,
    "p99_order_latency_ms": p99_latency,
    "p99_latency": p99_latency,
    "no_crashloopbackoff": no_crashloop,
    "bounded_restarts": bounded_restarts,
    "no_oomkilled": no_oomkilled,
}


def builtin(name: str, **params: Any) -> Slo:
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


def baseline(*, p99_ms: float = 50.0, min_throughput: float = 0.95) -> list[Slo]:
    """What a trading desk signs for a steady load: the six built-ins."""
    return [
        throughput(min_ratio=min_throughput),
        registration_success(),
        p99_latency(max_ms=p99_ms),
        no_crashloop(),
        bounded_restarts(),
        no_oomkilled(),
    ]
