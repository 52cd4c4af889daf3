"""Runs the background services on a schedule, one replica per job.

The engine composes it (``Engine.scheduler()``); the server's lifespan runs it, and so does
``chameleon scheduler run`` in a process without HTTP. It uses only the maintenance service's
public interface: the jobs, ``last_scheduled_run``, and its database, clock and replica.

Each job has a leader lease in the database. Every tick, each replica takes or renews the
lease of every job; only the holder runs the job when it is due. A replica that stops
releases its leases, so another takes over at its next tick; one that dies stops renewing,
and another takes over once the lease has expired.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..domain.enums import Trigger
from ..settings import Settings
from ..store import faults, leader
from .alerts import Alerts
from .maintenance import (
    INTERVENTION_EXPIRY,
    MEMORY_DECAY,
    STALE_TOKEN_SWEEP,
    ZOMBIE_SWEEP,
    MaintenanceService,
)

logger = logging.getLogger(__name__)

# A daily job whose scheduled run failed is retried at most this often.
DAILY_RETRY_SECONDS = 900.0


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[threading.Event], object]
    interval_seconds: float | None = None  # an interval job ...
    daily_at: tuple[int, int] | None = None  # ... or a daily one at (hour, minute) UTC

    @property
    def min_gap_seconds(self) -> float:
        return self.interval_seconds if self.interval_seconds else DAILY_RETRY_SECONDS

    @property
    def period_seconds(self) -> float:
        return self.interval_seconds if self.interval_seconds else 86_400.0


def latest_slot(now: datetime, hour: int, minute: int) -> datetime:
    """The most recent daily slot at ``hour:minute`` UTC not after ``now``."""
    slot = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def jobs_for(maintenance: MaintenanceService, settings: Settings) -> list[Job]:
    def zombies(cancel: threading.Event) -> object:
        return maintenance.zombie_sweep(
            settings.zombie_timeout_seconds, trigger=Trigger.SCHEDULE, cancel=cancel
        )

    def stale_tokens(cancel: threading.Event) -> object:
        return maintenance.stale_token_sweep(trigger=Trigger.SCHEDULE, cancel=cancel)

    def memory_decay(cancel: threading.Event) -> object:
        return maintenance.memory_decay(
            settings.memory_retention_days, trigger=Trigger.SCHEDULE, cancel=cancel
        )

    def intervention_expiry(cancel: threading.Event) -> object:
        return maintenance.intervention_expiry(trigger=Trigger.SCHEDULE, cancel=cancel)

    daily = (settings.memory_decay_hour_utc, settings.memory_decay_minute_utc)
    return [
        Job(ZOMBIE_SWEEP, zombies, interval_seconds=settings.zombie_interval_seconds),
        Job(
            STALE_TOKEN_SWEEP, stale_tokens, interval_seconds=settings.stale_token_interval_seconds
        ),
        Job(MEMORY_DECAY, memory_decay, daily_at=daily),
        Job(
            INTERVENTION_EXPIRY,
            intervention_expiry,
            interval_seconds=settings.intervention_expiry_interval_seconds,
        ),
    ]


class Scheduler:
    def __init__(
        self,
        maintenance: MaintenanceService,
        settings: Settings,
        *,
        jobs: list[Job] | None = None,
        tick_seconds: float | None = None,
    ) -> None:
        self.maintenance = maintenance
        self.db = maintenance.db
        self.clock = maintenance.clock
        self.replica = maintenance.replica
        self.lease_seconds = settings.leader_lease_seconds
        self.tick_seconds = tick_seconds or min(self.lease_seconds / 3, 5.0)
        self.jobs = jobs if jobs is not None else jobs_for(maintenance, settings)
        self.alerts = Alerts(settings, maintenance, {j.name: j.period_seconds for j in self.jobs})
        self._leading_until: dict[str, float] = {}  # job -> time.monotonic() deadline
        self._last_start: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel = threading.Event()  # tells running jobs to stop after their batch
        self._stopping = asyncio.Event()  # tells the loop to stop after its tick
        self._task: asyncio.Task[None] | None = None
        self._started_at = self.clock()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._started_at = self.clock()
        self._stopping = asyncio.Event()  # bound to the running event loop
        self._task = asyncio.create_task(self._loop(), name="chameleon-scheduler")
        logger.info("scheduler started", extra={"replica": self.replica})

    async def stop(self, *, release_leases: bool = True) -> None:
        """Stop ticking, let running jobs finish their current batch, release our leases.

        ``release_leases=False`` leaves the leases to expire, as a crashed replica would.
        """
        self._cancel.set()
        self._stopping.set()
        if self._task is not None:
            # The loop finishes its tick rather than being cancelled: a cancelled await on
            # a worker thread would leave the thread renewing leases after they are released.
            with suppress(asyncio.CancelledError):
                await self._task
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        if release_leases:
            try:
                await asyncio.to_thread(self._release_all)
            except faults.FAULTS as exc:  # the leases then expire on their own
                self._log_failure("could not release the leases", exc)
        self._leading_until.clear()
        await asyncio.to_thread(self.alerts.close)
        logger.info("scheduler stopped", extra={"replica": self.replica})

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, wait until ``stop`` is set, then stop cleanly (our leases released)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def leads(self, job: str) -> bool:
        return time.monotonic() < self._leading_until.get(job, 0.0)

    @property
    def running(self) -> list[str]:
        return sorted(self._running)

    # --- the loop ---------------------------------------------------------------------------

    async def _loop(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 (logged by _log_failure)
                # The database may be briefly unreachable: leadership then lapses on its
                # own (see leads()) and the next tick tries again. The loop must outlive it.
                failing = True
                self._log_failure("scheduler tick failed", exc)
            else:
                if failing:
                    logger.info("scheduler recovered", extra={"replica": self.replica})
                failing = False
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_seconds)

    def _log_failure(self, what: str, exc: Exception, **extra: str) -> None:
        """One line for a database fault (it repeats every tick); a traceback for anything else."""
        fault = faults.unavailable(exc, self.db.url, "the database")
        extra = {"replica": self.replica, **extra}
        if fault is not None:
            logger.warning("%s: %s", what, fault.message, extra=extra)
        else:
            logger.exception(what, extra=extra)

    async def _tick(self) -> None:
        await asyncio.to_thread(self._renew_leases)
        for job in self.jobs:
            if job.name in self._running or not self.leads(job.name):
                continue
            if await self._due(job):
                self._running[job.name] = asyncio.create_task(self._run(job))

    def _renew_leases(self) -> None:
        for job in self.jobs:
            if self._cancel.is_set():  # stopping: stop() releases the leases after this tick
                return
            self._renew(job)

    def _renew(self, job: Job) -> None:
        asked_at = time.monotonic()
        now = self.clock()
        with self.db.begin() as conn:
            ours = leader.acquire(
                conn, job.name, self.replica,
                now=now, expires_at=now + timedelta(seconds=self.lease_seconds),
            )  # fmt: skip
        if ours:
            if not self.leads(job.name):
                logger.info("took the lead", extra={"job": job.name, "replica": self.replica})
            self._leading_until[job.name] = asked_at + self.lease_seconds
        else:
            self._leading_until.pop(job.name, None)

    def _release_all(self) -> None:
        with self.db.begin() as conn:
            for job in self.jobs:
                leader.release(conn, job.name, self.replica)

    async def _due(self, job: Job) -> bool:
        last = self._last_start.get(job.name)
        if last is not None and time.monotonic() - last < job.min_gap_seconds:
            return False
        if job.daily_at is None:
            return True
        slot = latest_slot(self.clock(), *job.daily_at)
        done = await asyncio.to_thread(self.maintenance.last_scheduled_run, job.name)
        if done is None:
            return slot >= self._started_at  # a new database waits for its first slot
        return bool(done < slot)

    async def _run(self, job: Job) -> None:
        self._last_start[job.name] = time.monotonic()
        outcome: object
        try:
            try:
                outcome = await asyncio.to_thread(job.run, self._cancel)
            except Exception as exc:  # noqa: BLE001 (logged by _log_failure)
                # Whatever failed (the service records a failed run with its error, unless the
                # database itself is down), the schedule must go on: log it and carry on.
                self._log_failure("scheduled run failed", exc, job=job.name)
                outcome = exc
            await asyncio.to_thread(self.alerts.after_run, job.name, outcome)  # never raises
        finally:
            self._running.pop(job.name, None)
