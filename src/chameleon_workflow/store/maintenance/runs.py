"""The record of maintenance runs: what ran, when, why, with which outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update

from ..pagination import Key, Keyset, Page
from ..records import MaintenanceRunRecord
from ..tables import MaintenanceRun

MR = cast(Table, MaintenanceRun.__table__)
# Newest first; the id breaks ties between runs started in the same instant.
RUNS = Keyset("maintenance-runs", (MR.c.started_at, MR.c.id), descending=True)


def start(
    conn: Connection,
    *,
    job: str,
    trigger: str,
    parameters: Mapping[str, Any],
    replica: str,
    now: datetime,
) -> int:
    stmt = (
        insert(MR)
        .values(
            job=job, trigger=trigger, parameters=dict(parameters), replica=replica, started_at=now
        )
        .returning(MR.c.id)
    )
    return int(conn.execute(stmt).scalar_one())


def finish(
    conn: Connection,
    run_id: int,
    *,
    counts: Mapping[str, Any] | None,
    error: str | None,
    now: datetime,
) -> None:
    conn.execute(
        update(MR)
        .where(MR.c.id == run_id)
        .values(counts=dict(counts) if counts is not None else None, error=error, finished_at=now)
    )


def recent(
    conn: Connection, *, job: str | None, after: Key | None, limit: int
) -> Page[MaintenanceRunRecord]:
    """Runs (of ``job``, or of every job) newest first, from after ``after``."""
    stmt = select(MR)
    if job is not None:
        stmt = stmt.where(MR.c.job == job)
    return RUNS.fetch(conn, stmt, after, limit, MaintenanceRunRecord.from_row)


def get(conn: Connection, run_id: int) -> MaintenanceRunRecord | None:
    row = conn.execute(select(MR).where(MR.c.id == run_id)).first()
    return MaintenanceRunRecord.from_row(row) if row is not None else None


def last_completed(conn: Connection, job: str, *, trigger: str) -> datetime | None:
    """When the latest run of ``job`` by ``trigger`` that finished without error started."""
    stmt = select(func.max(MR.c.started_at)).where(
        MR.c.job == job,
        MR.c.trigger == trigger,
        MR.c.finished_at.is_not(None),
        MR.c.error.is_(None),
    )
    return conn.scalar(stmt)
