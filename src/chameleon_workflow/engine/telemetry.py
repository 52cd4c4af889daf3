"""The engine's own metrics: maintenance runs, reclaimed zombies and alerts, per process.

They are not registered anywhere: ``/metrics`` collects them from the engine it serves
(``api.metrics``), and tests read them through ``collect()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import Metric

from ..store import health
from ..store.database import Database

RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class Telemetry:
    """Counters, gauges and histograms the maintenance service and the alerts update."""

    def __init__(self) -> None:
        self.zombies_reclaimed = Counter(
            "chameleon_zombies_reclaimed",
            "UOWs reclaimed by zombie sweeps, by outcome (requeued: PENDING again; failed)",
            ["outcome"],
            registry=None,
        )
        self.run_seconds = Histogram(
            "chameleon_maintenance_run_seconds",
            "Duration of maintenance runs (dry runs excepted), by job and result",
            ["job", "result"],
            buckets=RUN_BUCKETS,
            registry=None,
        )
        self.last_success = Gauge(
            "chameleon_maintenance_last_success_timestamp_seconds",
            "When the latest successful run of a job by this process finished (Unix time)",
            ["job"],
            registry=None,
        )
        self.alerts = Counter(
            "chameleon_alerts", "Alerts raised (firing), by kind", ["kind"], registry=None
        )
        self.alert_delivery_failures = Counter(
            "chameleon_alert_delivery_failures",
            "Webhook deliveries given up after their retries, by reason",
            ["reason"],
            registry=None,
        )
        self.alerts_dropped = Counter(
            "chameleon_alerts_dropped",
            "Alerts not delivered because the delivery queue was full",
            registry=None,
        )

    def collect(self) -> Iterable[Metric]:
        for metric in (
            self.zombies_reclaimed,
            self.run_seconds,
            self.last_success,
            self.alerts,
            self.alert_delivery_failures,
            self.alerts_dropped,
        ):
            yield from metric.collect()

    def run_finished(
        self,
        job: str,
        parameters: Mapping[str, Any],
        counts: Mapping[str, Any],
        *,
        seconds: float,
        failed: bool,
        now: datetime,
    ) -> None:
        """Record one maintenance run (a dry run changes nothing and is not recorded)."""
        if parameters.get("dry_run"):
            return
        self.run_seconds.labels(job, "error" if failed else "ok").observe(seconds)
        if not failed:
            self.last_success.labels(job).set(now.timestamp())
        reclaimed = int(counts.get("reclaimed", 0))
        if reclaimed:
            requeued = int(counts.get("requeued", 0))
            self.zombies_reclaimed.labels("requeued").inc(requeued)
            self.zombies_reclaimed.labels("failed").inc(reclaimed - requeued)


def oldest_heartbeat_age(db: Database, now: datetime) -> float:
    """Seconds since the oldest heartbeat of an ACTIVE UOW (0 when nothing is ACTIVE)."""
    with db.connect() as conn:
        oldest = health.oldest_active_heartbeat(conn)
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
