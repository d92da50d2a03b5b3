"""Prometheus metrics of one front-end, plus the supervisor's ``status`` figures at scrape time.

Each app has its own ``CollectorRegistry`` (no process globals), so tests can build many apps.
Request latency is measured to the start of the response: for an SSE stream that is the time to its
headers, not its whole life.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SupervisorCollector(Collector):
    """Exposes every numeric figure of the last ``status`` reply as ``fswatch_supervisor_<name>``."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, value in sorted(self.latest.items()):
            if isinstance(value, bool | int | float):
                yield GaugeMetricFamily(f"fswatch_supervisor_{name}", f"supervisor status: {name}",
                                        value=float(value))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fswatch_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("fswatch_http_request_seconds", "Time to the response's start",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60))
        self.sse_clients = Gauge("fswatch_sse_clients", "Open SSE streams on this front-end",
                                 registry=self.registry)
        self.supervisor = SupervisorCollector()
        self.registry.register(self.supervisor)

    def render(self, status: dict[str, Any]) -> bytes:
        self.supervisor.latest = status
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts requests by route template (not raw path, which would explode the label set)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    def route_of(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", "other"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = self.route_of(scope)
        method = scope["method"]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
                self.metrics.requests.labels(method, route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, timed_send)
