"""The one Prometheus client of the project (prometheus-api-client, imported lazily).

Instant and range queries at given times, and a bounded wait until Prometheus has scraped past a
time (so a window's last samples are in). Errors come back as ``PromError`` with the URL and query;
it never raises library exceptions and never judges results (that is ``evaluate``'s job).
"""

from __future__ import annotations

import math
import time
from typing import Any

from pytest_hftk8s.errors import HftError
from pytest_hftk8s.slo import queries


class PromError(HftError):
    """Prometheus could not answer a query (unreachable, bad PromQL, timeout)."""


class PromClient:
    """A thin, bounded wrapper over ``PrometheusConnect``."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        # No retries on the library side: every call here is bounded by one timeout.
        self._scrape_interval: float | None = None
        self._conn = PrometheusConnect(
            url=self.url, disable_ssl=True, timeout=timeout_s, retry=Retry(total=0)
        )

    def close(self) -> None:
        self._conn.close()

    def query(self, expr: str, *, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """Instant query; returns (labels, value) pairs - empty when there is no data."""
        params = {"time": f"{at:.3f}"} if at is not None else {}
        try:
            data: Any = self._conn.custom_query(expr, params=params)
        except Exception as e:
            raise PromError(f"Prometheus at {self.url} failed on {expr!r}: {type(e).__name__}: {e}") from e
        if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
            return [({}, float(data[1]))]  # a scalar result: [ts, "value"]
        out = []
        for series in data or []:
            value = series.get("value")
            if value is not None:
                out.append((dict(series.get("metric", {})), float(value[1])))
        return out

    def query_range(
        self, expr: str, *, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Range query; returns (labels, [(time, value)]) per series - empty when there is no data."""
        import datetime

        def stamp(t: float) -> datetime.datetime:
            return datetime.datetime.fromtimestamp(t, tz=datetime.UTC)

        # The library rounds start and end to whole seconds; the params override keeps milliseconds.
        exact = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
        try:
            data: Any = self._conn.custom_query_range(
                expr, start_time=stamp(start), end_time=stamp(end), step=f"{step:g}", params=exact
            )
        except Exception as e:
            raise PromError(f"Prometheus at {self.url} failed on {expr!r}: {type(e).__name__}: {e}") from e
        return [
            (dict(series.get("metric", {})), [(float(t), float(v)) for t, v in series.get("values", [])])
            for series in data or []
        ]

    def scalar(self, expr: str, *, at: float | None = None) -> float | None:
        rows = self.query(expr, at=at)
        if not rows:
            return None
        return rows[0][1]

    def wait_scraped_past(self, when: float, *, timeout_s: float) -> bool:
        """Wait until every live target's latest sample is newer than ``when``; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            latest = self.scalar(queries.LATEST_SCRAPE.expr)
            if latest is not None and not math.isnan(latest) and latest >= when:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def scrape_interval(self) -> float:
        """The global scrape interval from Prometheus' loaded config (seconds; 60 if unset/unknown)."""
        if self._scrape_interval is None:
            import re

            self._scrape_interval = 60.0
            try:
                response = self._conn._session.get(f"{self.url}/api/v1/status/config", timeout=self.timeout_s)
                text = response.json()["data"]["yaml"]
                match = re.search(r"^global:\n(?:[ ].*\n)*?[ ]+scrape_interval: (\d+)(ms|s|m)$", text, re.M)
                if match:
                    self._scrape_interval = int(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match[2]]
            except Exception:  # an unknown interval only widens the look-back to a safe 60 s
                pass
        return self._scrape_interval

    def ready(self) -> bool:
        try:
            return self._conn.check_prometheus_connection()
        except Exception:
            return False
