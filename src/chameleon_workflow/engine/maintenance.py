"""The background services: zombie reclaim, stale tokens, memory decay and intervention
expiry, each run recorded."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import Trigger, UowStatus
from ..domain.errors import InvalidInput, UnknownInstance
from ..settings import Settings
from ..store import instances, leader, uows
from ..store.database import Database
from ..store.maintenance import decay, runs, stale, zombies
from ..store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Key, Page, check_limit, every
from ..store.records import MaintenanceRunRecord, ZombieCandidate
from .clock import Clock, utcnow
from .interventions import expire_batch
from .telemetry import Telemetry

logger = logging.getLogger(__name__)

ZOMBIE_SWEEP = "zombie_sweep"
STALE_TOKEN_SWEEP = "stale_token_sweep"
MEMORY_DECAY = "memory_decay"
INTERVENTION_EXPIRY = "intervention_expiry"
JOBS = (ZOMBIE_SWEEP, STALE_TOKEN_SWEEP, MEMORY_DECAY, INTERVENTION_EXPIRY)
SAMPLE_SIZE = 100
MAX_LIST = 1000
MAX_TIMEOUT_SECONDS = 10 * 365 * 86_400  # ten years
MAX_RETENTION_DAYS = 36_500
MAX_BATCH = 100_000


def default_replica_id() -> str:
    """Unique per process: host, pid and a random suffix (pids repeat across containers)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def positive_int(value: Any, name: str, *, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) above zero (and within ``maximum``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r:.40}", field=name)
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name} must be at most {maximum}, got {value}", field=name)
    return value


@dataclass(frozen=True)
class RunOutcome:
    """One recorded run: its id, what it did (``counts``) and, for a dry run, a sample."""

    run_id: int
    job: str
    dry_run: bool
    parameters: dict[str, Any]
    counts: dict[str, Any]
    sample: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ZombieListing:
    """The current zombies (up to a limit), how many there are, and the timeout applied
    where no role or workflow sets its own."""

    timeout_seconds: int
    count: int
    zombies: list[ZombieCandidate]
    next_key: Key | None = None


@dataclass(frozen=True)
class JobLeader:
    """Who holds the leader lease of a scheduled job, until when, and whether it is current."""

    job: str
    holder: str
    expires_at: datetime
    active: bool


@dataclass(frozen=True)
class Leadership:
    """The leader leases as seen from this replica at ``now``."""

    replica: str
    now: datetime
    leases: list[JobLeader]


_Body = Callable[[dict[str, Any]], list[Any]]


class MaintenanceService:
    def __init__(
        self, db: Database, settings: Settings, clock: Clock = utcnow, replica: str | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.replica = replica or settings.replica_id or default_replica_id()
        self.telemetry = Telemetry()

    # --- zombie protocol -------------------------------------------------------------------

    def _zombie_plan(self, timeout_seconds: int | None) -> zombies.ZombiePlan:
        timeout = self.settings.zombie_timeout_seconds
        if timeout_seconds is not None:
            timeout = positive_int(timeout_seconds, "timeout_seconds", maximum=MAX_TIMEOUT_SECONDS)
        rules = zombies.ZombieRules(
            timeout, self.settings.zombie_policy, self.settings.zombie_max_reclaims
        )
        with self.db.connect() as conn:
            return zombies.plan(conn, rules)

    def zombie_sweep(
        self,
        timeout_seconds: int | None = None,
        *,
        dry_run: bool = False,
        batch_size: int | None = None,
        trigger: Trigger = Trigger.ADMIN,
        cancel: threading.Event | None = None,
    ) -> RunOutcome:
        """Reclaim every zombie (dry run: list them); returns the recorded run."""
        plan = self._zombie_plan(timeout_seconds)
        batch = self._batch_size(batch_size)
        params = {
            "timeout_seconds": plan.rules.timeout_seconds,
            "dry_run": dry_run,
            "batch_size": batch,
        }

        def reclaim(counts: dict[str, Any]) -> list[Any]:
            counts.update(reclaimed=0, requeued=0, batches=0)
            step = partial(_reclaim, plan=plan, limit=batch, counts=counts)
            self._in_batches(counts, "reclaimed", batch, step, cancel)
            return []

        def listing(counts: dict[str, Any]) -> list[Any]:
            now = self.clock()
            with self.db.connect() as conn:
                counts["candidates"] = zombies.count(conn, plan, now)
                return _candidates(conn, plan, now, SAMPLE_SIZE)

        return self._record(ZOMBIE_SWEEP, trigger, params, listing if dry_run else reclaim)

    def zombie_candidates(
        self,
        timeout_seconds: int | None = None,
        *,
        limit: int = SAMPLE_SIZE,
        after: Key | None = None,
    ) -> ZombieListing:
        """A page of the current zombies (longest silent first) and how many there are in
        all; changes nothing."""
        plan = self._zombie_plan(timeout_seconds)
        check_limit(limit)
        now = self.clock()
        with self.db.connect() as conn:
            total = zombies.count(conn, plan, now)
            found = zombies.candidates(conn, plan, now, after, limit)
        items = [ZombieCandidate.from_row(r) for r in found.items]
        return ZombieListing(plan.rules.timeout_seconds, total, items, found.next_key)

    # --- stale token protocol ---------------------------------------------------------------

    def stale_token_sweep(
        self,
        *,
        dry_run: bool = False,
        batch_size: int | None = None,
        trigger: Trigger = Trigger.ADMIN,
        cancel: threading.Event | None = None,
    ) -> RunOutcome:
        """Move every UOW waiting past its interaction's limit to Chronos (dry run: count)."""
        batch = self._batch_size(batch_size)
        with self.db.connect() as conn:
            limits = stale.limits(conn)
        params = {"dry_run": dry_run, "batch_size": batch, "limits": sorted(limits)}

        def move(counts: dict[str, Any]) -> list[Any]:
            counts.update(moved=0, batches=0)
            if limits:
                step = partial(_stale, limits=limits, limit=batch)
                self._in_batches(counts, "moved", batch, step, cancel)
            return []

        def listing(counts: dict[str, Any]) -> list[Any]:
            now = self.clock()
            if not limits:
                counts["candidates"] = 0
                return []
            with self.db.connect() as conn:
                counts["candidates"] = stale.count(conn, limits, now)
                return stale.sample(conn, limits, now, SAMPLE_SIZE)

        return self._record(STALE_TOKEN_SWEEP, trigger, params, listing if dry_run else move)

    # --- memory decay -------------------------------------------------------------------------

    def memory_decay(
        self,
        retention_days: int | None = None,
        *,
        dry_run: bool = False,
        archive: bool = False,
        instance_id: uuid.UUID | None = None,
        batch_size: int | None = None,
        trigger: Trigger = Trigger.ADMIN,
        cancel: threading.Event | None = None,
    ) -> RunOutcome:
        """Delete (or archive) memories not accessed within the retention period."""
        days = self.settings.memory_retention_days
        if retention_days is not None:
            days = positive_int(retention_days, "retention_days", maximum=MAX_RETENTION_DAYS)
        batch = self._batch_size(batch_size)
        self._check_instance(instance_id)
        params = {
            "retention_days": days, "dry_run": dry_run, "archive": archive, "batch_size": batch,
            "instance_id": str(instance_id) if instance_id else None,
        }  # fmt: skip
        cutoff = self.clock() - timedelta(days=days)
        cond = decay.is_stale(cutoff, instance_id, archive=archive)
        reason = f"not injected for {days} days (memory decay)"

        def remove(counts: dict[str, Any]) -> list[Any]:
            counts.update(deleted=0, batches=0)
            if archive:
                counts["archived"] = True
            step = partial(_decay, cond=cond, limit=batch, archive=archive, reason=reason)
            self._in_batches(counts, "deleted", batch, step, cancel)
            return []

        def listing(counts: dict[str, Any]) -> list[Any]:
            with self.db.connect() as conn:
                counts["candidates"] = decay.count(conn, cond)
                return decay.sample(conn, cond, SAMPLE_SIZE)

        return self._record(MEMORY_DECAY, trigger, params, listing if dry_run else remove)

    # --- intervention expiry ------------------------------------------------------------------

    def intervention_expiry(
        self,
        *,
        batch_size: int | None = None,
        trigger: Trigger = Trigger.ADMIN,
        cancel: threading.Event | None = None,
    ) -> RunOutcome:
        """Expire every pending intervention request past its ``expires_at``; each UOW
        follows its request's ``on_expiry`` (approve, or cancel into Ate)."""
        batch = self._batch_size(batch_size)
        params = {"dry_run": False, "batch_size": batch}

        def expire(counts: dict[str, Any]) -> list[Any]:
            counts.update(expired=0, approved=0, cancelled=0, batches=0)
            step = partial(_expire, limit=batch, counts=counts)
            self._in_batches(counts, "expired", batch, step, cancel)
            return []

        return self._record(INTERVENTION_EXPIRY, trigger, params, expire)

    # --- history -------------------------------------------------------------------------------

    def run_page(
        self, *, job: str | None = None, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[MaintenanceRunRecord]:
        """A page of recorded runs, newest first."""
        if job is not None and job not in JOBS:
            raise InvalidInput(f"unknown job {job!r}; jobs are {', '.join(JOBS)}", field="job")
        with self.db.connect() as conn:
            return runs.recent(conn, job=job, after=after, limit=limit)

    def runs(self, *, job: str | None = None, limit: int = 50) -> list[MaintenanceRunRecord]:
        """The latest ``limit`` recorded runs, newest first."""
        limit = positive_int(limit, "limit", maximum=MAX_LIST)
        return every(lambda a: self.run_page(job=job, after=a, limit=MAX_LIMIT), limit=limit)

    def last_scheduled_run(self, job: str) -> Any:
        """When the latest scheduled, completed run of ``job`` started (None: never)."""
        with self.db.connect() as conn:
            return runs.last_completed(conn, job, trigger=Trigger.SCHEDULE.value)

    def leadership(self) -> Leadership:
        """Who leads each scheduled job, until when, as seen from this replica."""
        now = self.clock()
        with self.db.connect() as conn:
            leases = leader.current(conn)
        return Leadership(
            self.replica,
            now,
            [JobLeader(x.job, x.holder, x.expires_at, x.expires_at > now) for x in leases],
        )

    # --- machinery -----------------------------------------------------------------------------

    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.settings.maintenance_batch_size
        return positive_int(batch_size, "batch_size", maximum=MAX_BATCH)

    def _check_instance(self, instance_id: uuid.UUID | None) -> None:
        if instance_id is None:
            return
        with self.db.connect() as conn:
            if instances.get_instance(conn, instance_id) is None:
                raise UnknownInstance(f"instance {instance_id} does not exist", id=str(instance_id))

    def _in_batches(
        self,
        counts: dict[str, Any],
        key: str,
        batch: int,
        step: Callable[[Connection, datetime], int],
        cancel: threading.Event | None,
    ) -> None:
        """Run ``step`` (a transaction each) until a batch comes back short or we must stop."""
        pause = self.settings.maintenance_batch_pause_seconds
        while True:
            with self.db.begin() as conn:
                done = step(conn, self.clock())
            counts[key] += done
            counts["batches"] += 1
            if done < batch:
                return
            if cancel is not None and cancel.wait(pause):
                counts["interrupted"] = True
                return
            if cancel is None and pause:
                time.sleep(pause)

    def _record(
        self, job: str, trigger: Trigger, params: dict[str, Any], body: _Body
    ) -> RunOutcome:
        """Record the run around ``body``; a failure is recorded with its error and re-raised."""
        started = time.perf_counter()
        with self.db.begin() as conn:
            run_id = runs.start(
                conn, job=job, trigger=trigger.value, parameters=params, replica=self.replica,
                now=self.clock(),
            )  # fmt: skip
        counts: dict[str, Any] = {}
        extra = {"job": job, "run_id": run_id, "trigger": trigger.value}
        try:
            sample = body(counts)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            with self.db.begin() as conn:
                runs.finish(conn, run_id, counts=counts, error=error, now=self.clock())
            logger.exception("maintenance run failed", extra=extra)
            self._observe(job, params, counts, started, failed=True)
            raise
        with self.db.begin() as conn:
            runs.finish(conn, run_id, counts=counts, error=None, now=self.clock())
        logger.info("maintenance run finished", extra={**extra, "counts": counts})
        self._observe(job, params, counts, started, failed=False)
        return RunOutcome(run_id, job, bool(params.get("dry_run")), params, counts, sample)

    def _observe(
        self, job: str, params: dict[str, Any], counts: dict[str, Any], started: float, failed: bool
    ) -> None:
        seconds = time.perf_counter() - started
        self.telemetry.run_finished(
            job, params, counts, seconds=seconds, failed=failed, now=self.clock()
        )


def _candidates(
    conn: Connection, plan: zombies.ZombiePlan, now: datetime, limit: int
) -> list[ZombieCandidate]:
    found = zombies.candidates(conn, plan, now, None, limit)
    return [ZombieCandidate.from_row(r) for r in found.items]


def _reclaim(
    conn: Connection, now: datetime, *, plan: zombies.ZombiePlan, limit: int, counts: dict[str, Any]
) -> int:
    moved = zombies.reclaim_batch(conn, plan, now, limit)
    uows.refresh_finished_children(conn, moved.parent_ids)
    counts["requeued"] += moved.by_status.get(UowStatus.PENDING.value, 0)
    return moved.count


def _stale(conn: Connection, now: datetime, *, limits: frozenset[int], limit: int) -> int:
    moved = stale.move_batch_to_chronos(conn, limits, now, limit)
    uows.refresh_finished_children(conn, moved.parent_ids)
    return moved.count


def _expire(conn: Connection, now: datetime, *, limit: int, counts: dict[str, Any]) -> int:
    return expire_batch(conn, now, limit=limit, counts=counts)


def _decay(
    conn: Connection, now: datetime, *, cond: Any, limit: int, archive: bool, reason: str
) -> int:
    if archive:
        return decay.archive_batch(conn, cond, limit, now, reason)
    return decay.delete_batch(conn, cond, limit)
