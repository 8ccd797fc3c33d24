"""Prometheus metrics at ``/metrics``: verdicts, holds, the monitor's newest run, the
store's writer, HTTP requests.

Counts come from the store (so ``typogate web`` on its own reports what the gateway
recorded), the writer's queue from this process's :class:`Store`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPMethod

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from typogate.web.context import WebContext


class StoreCollector(Collector):
    """Reads the store at each scrape (the incidents table: small, whatever the traffic)."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        store = self.ctx.store
        up = GaugeMetricFamily("typogate_store_up", "1 when the store answers, else 0")
        verdicts = CounterMetricFamily(
            "typogate_verdicts", "Verdicts recorded in the store", labels=["action"]
        )
        holds = GaugeMetricFamily("typogate_holds", "Held messages by state", labels=["state"])
        monitor: list[Metric] = []
        try:
            for action, count in self.ctx.history.verdicts_by_action().items():
                verdicts.add_metric([action.value], float(count))
            for state, count in self.ctx.store.holds.count_by_state().items():
                holds.add_metric([state.value], count)
            # Only once a run is kept: a watch whose cron job stopped shows as an old time,
            # one that never ran as no series (Prometheus's absent()).
            for run in store.look_alikes.runs(limit=1):
                monitor.append(
                    GaugeMetricFamily(
                        "typogate_monitor_last_run_timestamp_seconds",
                        "When the monitor's newest run kept in the store finished",
                        value=run.finished.timestamp(),
                    )
                )
                monitor.append(
                    GaugeMetricFamily(
                        "typogate_monitor_last_run_changes",
                        "Look-alikes the monitor's newest run found new, changed or gone",
                        value=run.changes,
                    )
                )
            up.add_metric([], 1)
        except SQLAlchemyError:
            up.add_metric([], 0)
        yield up
        yield verdicts
        yield holds
        yield from monitor
        yield GaugeMetricFamily(
            "typogate_store_queued_events",
            "Events waiting for the store's writer in this process",
            value=store.queued,
        )
        yield CounterMetricFamily(
            "typogate_store_written_events",
            "Events this process's writer stored",
            value=store.written,
        )
        yield CounterMetricFamily(
            "typogate_store_dropped_events",
            "Events dropped because the database stayed unreachable",
            value=store.dropped,
        )


class RequestMetrics:
    """ASGI middleware: requests by method and status, and their latency."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "typogate_http_requests",
            "HTTP requests answered",
            ["method", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "typogate_http_request_seconds", "Time to answer an HTTP request", registry=registry
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.requests.labels(_method(scope["method"]), str(status)).inc()
            self.seconds.observe(time.perf_counter() - started)


def _method(word: str) -> str:
    """The method's label: one HTTP defines, else "other". The server takes any token as a
    method, and a label per word a stranger sends would grow the series without bound."""
    return word if word in HTTPMethod.__members__ else "other"
