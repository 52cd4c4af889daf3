"""Alerts: thresholds checked after each scheduled maintenance run.

Kinds (each switched off by a threshold of 0, see ``Settings``):

- ``zombies_reclaimed``: one zombie sweep reclaimed at least ``alert_zombies_reclaimed``;
- ``epsilon_queue_depth``: at least ``alert_epsilon_queue_depth`` UOWs wait (PENDING or
  FAILED) in the interactions EPSILON roles read from;
- ``heartbeat_age``: the oldest ACTIVE heartbeat is ``alert_heartbeat_age_seconds`` old;
- ``maintenance_failed``: a scheduled run of a job failed (``alert_maintenance_failures``);
- ``maintenance_overdue``: a job has had no successful scheduled run for
  ``alert_maintenance_missed_intervals`` of its intervals (a day for the daily job).

No storms: an alert fires once when its condition starts (per kind, and per job for the
maintenance kinds), and once more as ``resolved`` when the condition is next seen clear;
it can then fire again. The state is per process. Each firing alert is a WARNING log line,
one more in ``chameleon_alerts_total{kind}`` and, with webhooks configured, a signed POST
from a background thread (``webhooks``): nothing here blocks or fails a maintenance run.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..settings import Settings
from ..store import faults, health
from .maintenance import ZOMBIE_SWEEP, MaintenanceService, RunOutcome
from .telemetry import oldest_heartbeat_age
from .webhooks import WebhookSender

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Alert:
    """One change of an alert's state, as logged and posted (``payload``)."""

    kind: str
    status: str  # "firing" or "resolved"
    subject: str | None  # the job, for the maintenance kinds
    value: float
    threshold: float
    message: str
    at: datetime
    replica: str
    id: str

    def payload(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, **asdict(self), "at": self.at.isoformat()}


class Alerts:
    """The alert conditions of one scheduler and where their alerts go."""

    def __init__(
        self,
        settings: Settings,
        maintenance: MaintenanceService,
        periods: Mapping[str, float],
    ) -> None:
        """``periods``: each scheduled job and the seconds between its runs."""
        self.settings = settings
        self.maintenance = maintenance
        self.periods = dict(periods)
        self.telemetry = maintenance.telemetry
        secret = settings.alert_webhook_secret
        self.sender = WebhookSender(
            settings.alert_webhook_urls,
            secret.get_secret_value().encode() if secret else b"",
            self.telemetry,
            timeout_seconds=settings.alert_timeout_seconds,
            retries=settings.alert_retries,
            backoff_seconds=settings.alert_backoff_seconds,
            queue_size=settings.alert_queue_size,
        )
        self._firing: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()
        self._since = maintenance.clock()

    def after_run(self, job: str, outcome: object) -> None:
        """Check every condition after a run of ``job`` (``outcome``: its RunOutcome, or the
        exception it raised). Never raises: a failed check is logged and skipped."""
        try:
            with self._lock:
                self._check_run(job, outcome)
                for check in (self._check_heartbeat, self._check_epsilon, self._check_overdue):
                    self._safely(check)
        except Exception:  # noqa: BLE001 (an alert must never break the scheduler)
            logger.exception("alert check failed", extra={"job": job})

    def close(self) -> None:
        """Stop the delivery thread (what is queued gets one more attempt, briefly)."""
        self.sender.close()

    # --- conditions --------------------------------------------------------------------------

    def _check_run(self, job: str, outcome: object) -> None:
        s = self.settings
        if s.alert_maintenance_failures:
            failed = isinstance(outcome, BaseException)
            message = (
                f"scheduled run of {job} failed: {self._describe(outcome)}"
                if isinstance(outcome, BaseException)
                else f"scheduled run of {job} succeeded"
            )
            self._observe("maintenance_failed", failed, failed, 1, message, subject=job)
        if s.alert_zombies_reclaimed and job == ZOMBIE_SWEEP and isinstance(outcome, RunOutcome):
            n = int(outcome.counts.get("reclaimed", 0))
            self._observe(
                "zombies_reclaimed", n >= s.alert_zombies_reclaimed, n, s.alert_zombies_reclaimed,
                f"one zombie sweep reclaimed {n} UOWs",
            )  # fmt: skip

    def _check_heartbeat(self) -> None:
        limit = self.settings.alert_heartbeat_age_seconds
        if limit:
            age = oldest_heartbeat_age(self.maintenance.db, self.maintenance.clock())
            self._observe(
                "heartbeat_age", age >= limit, age, limit,
                f"the oldest ACTIVE heartbeat is {age:.0f} s old",
            )  # fmt: skip

    def _check_epsilon(self) -> None:
        limit = self.settings.alert_epsilon_queue_depth
        if limit:
            with self.maintenance.db.connect() as conn:
                depth = health.epsilon_queue_depth(conn)
            self._observe(
                "epsilon_queue_depth", depth >= limit, depth, limit,
                f"{depth} UOWs wait for EPSILON roles",
            )  # fmt: skip

    def _check_overdue(self) -> None:
        missed = self.settings.alert_maintenance_missed_intervals
        if not missed:
            return
        now = self.maintenance.clock()
        for job, period in self.periods.items():
            last = self.maintenance.last_scheduled_run(job)
            since = max(last, self._since) if last is not None else self._since
            silent = (now - since).total_seconds()
            self._observe(
                "maintenance_overdue", silent > missed * period, silent, missed * period,
                f"no successful scheduled run of {job} for {silent:.0f} s", subject=job,
            )  # fmt: skip

    # --- machinery ---------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        """One line on a failure for the alert, which leaves the system: no SQL, parameters
        or password (SQLAlchemy puts those on the lines after the first)."""
        fault = faults.unavailable(exc, self.maintenance.db.url, "the database")
        text = fault.message if fault is not None else f"{type(exc).__name__}: {exc}"
        first = text.splitlines()[0] if text else type(exc).__name__
        return faults.scrub(first, self.maintenance.db.url)[:300]

    def _safely(self, check: Callable[[], None]) -> None:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 (the database may be down: the next run checks again)
            fault = faults.unavailable(exc, self.maintenance.db.url, "the database")
            if fault is not None:  # one line: it repeats after every run while it lasts
                logger.warning("alert check %s skipped: %s", check.__name__, fault.message)
            else:
                logger.warning("alert check %s failed", check.__name__, exc_info=True)

    def _observe(
        self,
        kind: str,
        condition: bool,
        value: float,
        threshold: float,
        message: str,
        *,
        subject: str | None = None,
    ) -> None:
        """Fire when ``condition`` starts, resolve when it clears; nothing while it lasts."""
        key = (kind, subject)
        if condition == (key in self._firing):
            return
        if condition:
            self._firing.add(key)
        else:
            self._firing.discard(key)
        alert = Alert(
            kind=kind,
            status="firing" if condition else "resolved",
            subject=subject,
            value=float(value),
            threshold=float(threshold),
            message=message,
            at=self.maintenance.clock(),
            replica=self.maintenance.replica,
            id=uuid.uuid4().hex,
        )
        self._emit(alert)

    def _emit(self, alert: Alert) -> None:
        payload = alert.payload()
        if alert.status == "firing":
            self.telemetry.alerts.labels(alert.kind).inc()
            logger.warning("alert %s: %s", alert.kind, alert.message, extra={"alert": payload})
        else:
            logger.info(
                "alert %s resolved: %s", alert.kind, alert.message, extra={"alert": payload}
            )
        self.sender.submit(payload)
