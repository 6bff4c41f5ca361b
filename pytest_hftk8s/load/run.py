"""One load run as a context manager: register users, drive an order flow on a thread, summarise.

``with driver.constant_rate(rate=2000, duration=10) as run: ...`` registers K users (httpx), then
runs the request engine on its own uvloop thread with an :class:`~.flow.OrderFlow` (or a caller's
request factory) while the ``with`` body executes (chaos, checks), and on exit waits for the
schedule - bounded by a hard deadline - and builds ``run.summary``, a typed
:class:`~pytest_hftk8s.results.LoadSummary`. The results JSON is written in ``finally``, so a
failure or Ctrl-C still leaves it on disk.

It never imports pytest and never talks to Prometheus; progress goes through a plain callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import pathlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pytest_hftk8s.errors import LoadError
from pytest_hftk8s.load import api
from pytest_hftk8s.load.engine import TIMELINE_BUCKET_S, EngineResult, EngineSpec, run_engine
from pytest_hftk8s.load.flow import DEFAULT_MIX, OrderFlow
from pytest_hftk8s.results import LoadSummary, Series, Window, to_dict

Progress = Callable[[str], None]

#: Above this share of one core the generator itself was the bottleneck: the run is invalid. The
#: generator's thread and the threads of an in-process port-forward count together: they share one
#: interpreter lock, so between them they can use about one core of Python.
SATURATION = 0.90
#: Scheduler wake-ups later than 5 ms on more than this share of ticks: the generator fell behind.
LATE_TICK_SHARE = 0.05


def latency_summary(result: EngineResult) -> dict[str, float]:
    h = result.histogram
    if h.get_total_count() == 0:
        return {}
    out = {f"p{q:g}".replace(".", "_"): h.get_value_at_percentile(q) / 1000 for q in (50, 90, 99, 99.9)}
    out["max"] = h.get_max_value() / 1000
    out["mean"] = h.get_mean_value() / 1000
    return out


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile (the histogram's convention): the smallest value with >= q of them at or below."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_timeline(result: EngineResult) -> dict[str, Series]:
    """Client-side p50 and p99 (ms) per second of intended send time, gaps as ``nan``."""
    by_second = result.latencies_by_second
    if not by_second or not result.started:
        return {}
    last = max(by_second)
    ordered = [sorted(by_second.get(k, ())) for k in range(last + 1)]
    return {
        name: Series(
            name=f"client_{name}_ms",
            start=result.started,
            step=1.0,
            values=tuple(_quantile(v, q) if v else math.nan for v in ordered),
            unit="ms",
        )
        for name, q in (("p50", 0.5), ("p99", 0.99))
    }


def errors_timeline(result: EngineResult) -> Series | None:
    """Failed requests (non-2xx, timed out, unanswered, never sent) per second of intended send time."""
    failures = result.failures_by_second
    seconds = max([*failures, *result.latencies_by_second], default=None)
    if seconds is None or not result.started:
        return None
    return Series(
        name="client_errors",
        start=result.started,
        step=1.0,
        values=tuple(float(failures.get(k, 0)) for k in range(seconds + 1)),
        unit="requests/s",
    )


def judge(result: EngineResult, *, mode: str) -> list[str]:
    """Why the run cannot be trusted as a measurement of the target (empty = valid)."""
    reasons = []
    busy = (result.cpu_s + result.extra_cpu_s) / result.wall_s if result.wall_s > 0 else 0.0
    if busy > SATURATION and result.extra_cpu_s > 0:
        reasons.append(
            f"load generator saturated: {busy:.0%} of one core (limit {SATURATION:.0%}), of which the "
            f"in-process port-forward's threads {result.extra_cpu_s / result.wall_s:.0%}; lower the rate, or "
            "reach the platform directly (--hft-access=loadbalancer or nodeport with the orbstack or kind overlay)"
        )
    elif busy > SATURATION:
        reasons.append(
            f"load generator saturated: {busy:.0%} of one core (limit {SATURATION:.0%}); "
            "lower the rate or give the generator its own core"
        )
    if mode == "open" and result.ticks and result.late_ticks / result.ticks > LATE_TICK_SHARE:
        reasons.append(
            f"load generator fell behind its schedule: {result.late_ticks}/{result.ticks} ticks late "
            f"by >5 ms (max {result.max_lag_s * 1000:.1f} ms)"
        )
    # Requests still queued at the end because every connection waited on the server are the
    # server's backpressure, not the generator's fault: they count as errors ("unsent"), and the
    # throughput SLO sees them; they do not make the measurement invalid.
    return reasons


class LoadRun:
    """A context manager around one engine run; see the module docstring."""

    def __init__(
        self,
        *,
        base_url: tuple[str, int],
        mode: str,
        rate: float,
        duration: float,
        users: int = 8,
        connections: int = 32,
        request_timeout: float = 2.0,
        deadline: float | None = None,
        results_dir: pathlib.Path | None = None,
        name: str = "load",
        progress: Progress | None = None,
        make_request: Callable[[int], bytes] | None = None,
        mix: Mapping[str, float] | None = None,
        seed: int = 0,
        extra_cpu: Callable[[], float] | None = None,
    ) -> None:
        if rate <= 0 or duration <= 0:
            raise LoadError(f"rate and duration must be > 0, got rate={rate} duration={duration}")
        if make_request is not None and mix is not None:
            raise LoadError("give a mix (the order flow) or make_request (your own requests), not both")
        self.host, self.port = base_url
        self.mode = mode
        self.rate = rate
        self.duration = duration
        self.users = users
        self.connections = connections
        self.request_timeout = request_timeout
        self.deadline = deadline if deadline is not None else duration + 2 * request_timeout + 10
        self.results_dir = results_dir
        self.name = name
        self._progress = progress or (lambda _m: None)
        self._make_request = make_request
        self.mix = dict(mix if mix is not None else DEFAULT_MIX) if make_request is None else {}
        self.seed = seed
        #: Cumulative CPU seconds of other threads of this process that carry the load (an in-process
        #: port-forward); counted with the generator's own in the saturation judgement.
        self.extra_cpu = extra_cpu
        self.flow: OrderFlow | None = None
        #: Called first thing in ``__enter__`` (the plugin takes its measurement lock there).
        self.on_enter: Callable[[LoadRun], None] | None = None
        self.summary: LoadSummary | None = None
        self._result: EngineResult | None = None
        self._live = EngineResult()
        self._last_ok = (0.0, 0)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        # Our own "finished" flag: Thread.is_alive() can read False after a KeyboardInterrupt hit
        # Thread.join() (CPython's tstate-lock handling), while the thread is still running.
        self._done = threading.Event()
        self._stopped_early = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._window_start = 0.0
        self._reg_ok = 0
        self._reg_failed = 0
        self._keys: list[str] = []
        self._names: list[str] = []  # the registered user name of each key, same order
        self.order_prefix = uuid.uuid4().hex[:10]  # every client_order_id is f"{order_prefix}-{seq}"

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> LoadRun:
        if self.on_enter is not None:
            self.on_enter(self)
        self._window_start = time.time()
        if self._make_request is None:
            self._register_users()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name=f"hft-{self.name}", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is not None:
                self.stop()  # the body failed: end the run early, keep what was measured
            self._join()
        except BaseException:
            self.stop()
            self._join(grace=2.0)
            raise
        finally:
            self._finish()
        if self._error is not None and exc[0] is None:
            raise LoadError(
                f"load run {self.name!r} failed: {type(self._error).__name__}: {self._error}; "
                f"partial results in {self.summary.results_file if self.summary else '(none)'}"
            ) from self._error

    def stop(self) -> None:
        """End the run early (the ``with`` body failed, Ctrl-C, deadline); the summary says so."""
        self._stopped_early = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so there is nothing left to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    # -- internals ------------------------------------------------------------------------------

    def _register_users(self) -> None:
        import httpx

        url = f"http://{self.host}:{self.port}{api.USERS_PATH}"
        tag = uuid.uuid4().hex[:8]
        with httpx.Client(timeout=self.request_timeout) as client:
            for i in range(self.users):
                name = api.registration_body(f"load-{tag}-{i}")["name"]
                try:
                    self._keys.append(
                        register_user(url, name=name, timeout=self.request_timeout, client=client)
                    )
                    self._names.append(name)
                    self._reg_ok += 1
                except LoadError:
                    self._reg_failed += 1
        if not self._keys:
            raise LoadError(
                f"expected to register {self.users} users at {url}, all failed; "
                "is the platform gated as ready? Check the report's bundle"
            )

    def _request_factory(self) -> Callable[[int], bytes]:
        if self._make_request is not None:
            return self._make_request
        self.flow = OrderFlow(
            keys=self._keys,
            run_id=self.order_prefix,
            host=f"{self.host}:{self.port}",
            mix=self.mix,
            seed=self.seed,
        )
        return self.flow.request

    def _thread_main(self, ready: threading.Event) -> None:
        import uvloop

        loop = uvloop.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            self._stop = asyncio.Event()
            ready.set()
            make_request = self._request_factory()
            spec = EngineSpec(
                host=self.host,
                port=self.port,
                make_request=make_request,
                on_answer=self.flow.on_answer if self.flow is not None else None,
                mode=self.mode,
                rate=self.rate,
                duration_s=self.duration,
                connections=self.connections,
                request_timeout_s=self.request_timeout,
                extra_cpu=self.extra_cpu,
            )
            self._result = loop.run_until_complete(run_engine(spec, self._stop, self._live))
        except BaseException as e:
            self._error = e
        finally:
            ready.set()
            loop.close()
            self._done.set()

    def _join(self, grace: float | None = None) -> None:
        assert self._thread is not None
        limit = time.monotonic() + (grace if grace is not None else self.deadline)
        next_note = time.monotonic() + 2.0
        self._last_ok = (time.monotonic(), self._live.ok)
        while not self._done.is_set() and time.monotonic() < limit:
            self._done.wait(timeout=0.2)
            if time.monotonic() >= next_note:
                next_note += 2.0
                self._progress(self._live_line())
        if not self._done.is_set():
            self.stop()
            self._done.wait(timeout=2.0)
            self._error = self._error or LoadError(f"load run exceeded its deadline of {self.deadline:.0f}s")

    def _live_line(self) -> str:
        now, live = time.monotonic(), self._live
        ok, errors = live.ok, sum(live.errors.values())
        then, ok_then = self._last_ok
        self._last_ok = (now, ok)
        rate = (ok - ok_then) / (now - then) if then else 0.0
        offered = f"offered {self.rate:g}/s, " if self.mode == "open" else ""
        return f"load {self.name}: {offered}current {rate:.0f}/s ok, {ok} ok, {errors} errors so far"

    def _finish(self) -> None:
        result = self._result or EngineResult()
        reasons = judge(result, mode=self.mode) if self._result else []
        if self._stopped_early:
            reasons.insert(0, "stopped early (the with-body raised, Ctrl-C or the deadline): a partial run")
        if self._error is not None:
            reasons.append(f"run failed: {type(self._error).__name__}: {self._error}")
        order_s = max(1e-9, result.ended - result.started) if result.started else 0.0
        flow = self.flow
        placements = (
            sum(c.scheduled for a, c in flow.actions.items() if a != "cancel")
            if flow is not None
            else result.scheduled
        )
        self.summary = LoadSummary(
            name=self.name,
            mode=self.mode,
            offered_rate=self.rate if self.mode == "open" else 0.0,
            duration_s=self.duration,
            window=Window(self._window_start, result.ended or time.time()),
            order_window=Window(result.started, result.ended),
            users=self.users if self._make_request is None else 0,
            registrations_ok=self._reg_ok,
            registrations_failed=self._reg_failed,
            scheduled=result.scheduled,
            sent=result.sent,
            completed=result.completed,
            ok=result.ok,
            achieved_rate=result.ok / order_s if order_s else 0.0,
            statuses={str(k): v for k, v in sorted(result.statuses.items())},
            errors=dict(result.errors),
            latency_ms=latency_summary(result),
            cpu={
                "seconds": result.cpu_s,
                "forwarding_seconds": result.extra_cpu_s,
                "utilization": (result.cpu_s + result.extra_cpu_s) / result.wall_s if result.wall_s else 0.0,
            },
            schedule={
                "ticks": result.ticks,
                "late_ticks": result.late_ticks,
                "max_lag_ms": result.max_lag_s * 1e3,
            },
            valid=not reasons,
            invalid_reasons=reasons,
            timeout_s=self.request_timeout,
            timed_out=result.timed_out,
            unanswered=result.unanswered,
            mix=dict(flow.mix) if flow is not None else {},
            actions=dict(flow.actions) if flow is not None else {},
            offered_order_rate=(
                placements / order_s if self.mode == "open" and order_s and result.scheduled else 0.0
            ),
            order_prefix=self.order_prefix,
            histogram=result.histogram.encode().decode() if result.histogram.get_total_count() else "",
            timeline=self._timeline(result),
            latency_timeline=latency_timeline(result),
            errors_timeline=errors_timeline(result),
        )
        if self.results_dir is not None:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            path = self.results_dir / f"{self.name}-{int(self._window_start)}.json"
            self.summary.results_file = str(path)
            path.write_text(json.dumps(self.as_dict(), indent=2))
        self._progress(
            f"load {self.name}: {self.summary.ok} ok at {self.summary.achieved_rate:.0f}/s"
            + ("" if self.summary.valid else " - INVALID: " + "; ".join(reasons))
        )

    def acked_orders(self) -> list[tuple[str, str]]:
        """``(user name, client_order_id)`` of every order placement the platform acknowledged (2xx).

        Empty for runs with a custom ``make_request`` (their bodies are not orders of known users).
        """
        if self.flow is None or not self._names:
            return []
        return self.flow.acked_orders(self._names)

    @staticmethod
    def _timeline(result: EngineResult) -> Series | None:
        """2xx answers per :data:`TIMELINE_BUCKET_S` of wall clock, gaps filled with 0."""
        counts = dict(result.timeline)
        if not counts:
            return None
        first, last = min(counts), max(counts)
        return Series(
            name="acknowledged",
            start=first * TIMELINE_BUCKET_S,
            step=TIMELINE_BUCKET_S,
            values=tuple(float(counts.get(k, 0)) for k in range(first, last + 1)),
            unit="answers per bucket",
        )

    def timeline(self) -> Series | None:
        """The run's acknowledgements per 100 ms so far (all of them once the run has ended)."""
        if self.summary is not None:
            return self.summary.timeline
        return self._timeline(self._live)

    def as_dict(self) -> dict[str, Any]:
        return to_dict(self.summary) if self.summary else {}


def register_user(url: str, *, name: str, timeout: float, client: Any = None) -> str:
    """Register one user at ``url`` (``POST /v1/users``) and return its API key; :class:`LoadError` says why not."""
    body = _register(url, name=name, timeout=timeout, client=client)
    try:
        return api.api_key_from(body)
    except KeyError as e:
        raise LoadError(f"POST {url}: {e}") from e


def _register(url: str, *, name: str, timeout: float, client: Any = None) -> Any:
    import httpx

    try:
        if client is None:
            response = httpx.post(url, json=api.registration_body(name), timeout=timeout)
        else:
            response = client.post(url, json=api.registration_body(name))
    except httpx.HTTPError as e:
        raise LoadError(f"POST {url} failed: {type(e).__name__}: {e}") from e
    if response.status_code // 100 != 2:
        raise LoadError(f"POST {url}: HTTP {response.status_code}: {response.text[:200]}")
    try:
        return response.json() if response.content else None
    except ValueError:
        return None
