"""Prometheus metrics: request counts and latency per route, and work by status from the DB.

Request metrics are per process. The UOW gauges are read from the database at scrape time,
so every replica reports the same, whole picture.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.core import Engine


class _WorkCollector(Collector):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        engine: Engine | None = getattr(self.app.state, "engine", None)
        if engine is None:
            return
        gauge = GaugeMetricFamily(
            "chameleon_uows", "Units of work by status (all instances)", labels=["status"]
        )
        for status, count in engine.instances.counts_by_status().items():
            gauge.add_metric([status], count)
        yield gauge


class _RequestMetrics:
    """Pure ASGI middleware: counts and times requests by route template and status."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.requests.labels(method, path, str(status)).inc()
            self.latency.labels(method, path).observe(time.perf_counter() - start)


def install(app: FastAPI) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "chameleon_http_requests",
        "HTTP requests by method, route and status",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "chameleon_http_request_seconds",
        "HTTP request latency by method and route",
        ["method", "route"],
        registry=registry,
    )
    registry.register(_WorkCollector(app))
    app.add_middleware(_RequestMetrics, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.metrics_registry = registry
