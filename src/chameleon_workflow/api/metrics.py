"""Prometheus metrics at ``/metrics`` (docs/operations.md lists every family).

Request metrics (counts and latency per route, checkout latency, lease conflicts, auth
failures) and the engine's own (maintenance runs, reclaimed zombies, alerts) are per
process. The gauges on work (UOWs by status, the oldest ACTIVE heartbeat) are read from the
database at scrape time, so every replica reports the same, whole picture.
"""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.core import Engine
from ..engine.telemetry import oldest_heartbeat_age
from ..store import faults

logger = logging.getLogger(__name__)

CHECKOUT_ROUTE = "/workflow/checkout"
CHECKOUT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LEASE_LOST = "LeaseLost"
# The reasons the auth layer reports; any other (well-formed) reason is counted as given.
AUTH_FAILURE_REASONS = ("missing", "malformed", "unknown", "revoked", "expired", "forbidden")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CONFLICT_BODY_MAX = 8192  # a 409 body is a small JSON error; larger ones are not read

_AUTH_FAILURES: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


class _WorkCollector(Collector):
    """Gauges read from the database (and the engine's own metrics) at scrape time."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        engine: Engine | None = getattr(self.app.state, "engine", None)
        if engine is None:
            return
        yield from engine.maintenance.telemetry.collect()
        try:
            counts = engine.instances.counts_by_status()
            age = oldest_heartbeat_age(engine.db, engine.clock())
        except faults.FAULTS as exc:
            # The process's own metrics still answer; the database gauges are left out.
            fault = faults.unavailable(exc, engine.db.url, "the database")
            if fault is None:
                raise
            logger.warning("metrics: database gauges skipped: %s", fault.message)
            return
        gauge = GaugeMetricFamily(
            "chameleon_uows",
            "Live units of work by status: PENDING, ACTIVE, FAILED, PAUSED, "
            "PENDING_PILOT_APPROVAL (all instances)",
            labels=["status"],
        )
        for status, count in counts.items():
            gauge.add_metric([status], count)
        yield gauge
        yield GaugeMetricFamily(
            "chameleon_oldest_active_heartbeat_age_seconds",
            "Seconds since the oldest heartbeat of an ACTIVE UOW (0: nothing is ACTIVE)",
            value=age,
        )


class _RequestMetrics:
    """Pure ASGI middleware: counts and times requests by route template and status; times
    checkouts; counts 409 answers whose error is ``LeaseLost`` by route."""

    def __init__(
        self,
        app: ASGIApp,
        requests: Counter,
        latency: Histogram,
        checkout: Histogram,
        conflicts: Counter,
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.checkout = checkout
        self.conflicts = conflicts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        conflict_body = bytearray()

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status == 409 and len(conflict_body) <= _CONFLICT_BODY_MAX:
                conflict_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.requests.labels(method, path, str(status)).inc()
            self.latency.labels(method, path).observe(elapsed)
            if path == CHECKOUT_ROUTE:
                self.checkout.labels(str(status)).observe(elapsed)
            if status == 409 and _error_name(conflict_body) == LEASE_LOST:
                self.conflicts.labels(method, path).inc()


def _error_name(body: bytes | bytearray) -> str | None:
    """The ``error`` field of a JSON error body (None if there is none)."""
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        return None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, str) else None


def record_auth_failure(app_or_registry: Any, reason: str) -> None:
    """Count one failed authentication (``reason``: missing, malformed, unknown, revoked,
    expired, forbidden, or another short lower-case word; anything else counts as "other").

    ``app_or_registry``: the FastAPI app (``request.app``) or its metrics registry.
    """
    registry = app_or_registry
    if not isinstance(registry, CollectorRegistry):
        registry = app_or_registry.state.metrics_registry
    label = reason if _REASON.fullmatch(reason) else "other"
    _AUTH_FAILURES[registry].labels(label).inc()


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
    checkout = Histogram(
        "chameleon_checkout_seconds",
        f"Latency of POST {CHECKOUT_ROUTE} by status (200: leased, 204: no work)",
        ["status"],
        buckets=CHECKOUT_BUCKETS,
        registry=registry,
    )
    conflicts = Counter(
        "chameleon_lease_conflicts",
        "Requests answered 409 LeaseLost (lease lost, taken over or already used), by route",
        ["method", "route"],
        registry=registry,
    )
    auth_failures = Counter(
        "chameleon_auth_failures",
        "Failed authentications, by reason",
        ["reason"],
        registry=registry,
    )
    for reason in AUTH_FAILURE_REASONS:
        auth_failures.labels(reason)  # every known reason starts at 0
    _AUTH_FAILURES[registry] = auth_failures
    registry.register(_WorkCollector(app))
    app.add_middleware(
        _RequestMetrics,
        requests=requests,
        latency=latency,
        checkout=checkout,
        conflicts=conflicts,
    )

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Open by default; with CHAMELEON_METRICS_PUBLIC=false a key that may read."""
        if not request.app.state.settings.metrics_public:
            from .auth import require_reader  # auth counts its failures here: no cycle at import

            require_reader(request)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.metrics_registry = registry
