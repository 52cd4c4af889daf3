"""The pilot's side of intervention requests: the inbox, resolving, expiry and metrics.

Lock order (every writer): the UOW first, then its request. A pilot's answer and the expiry
job both hold the UOW's row before they read the request's status, so of two answers racing
on one request the second sees the first's outcome.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from ..domain.enums import InterventionStatus
from . import dialects, uows
from .interventions import INBOX, I
from .pagination import Key, Page
from .tables import Instance, Uow, table
from .work import UowState

U = table(Uow)
INST = table(Instance)

PENDING = InterventionStatus.PENDING.value


@dataclass(frozen=True)
class InstanceState:
    """What resolving a request needs of its instance: its Ate queue and whether paused."""

    ate_interaction_id: uuid.UUID | None
    status: str


def instance_state(conn: Connection, instance_id: uuid.UUID) -> InstanceState:
    """The instance's Ate interaction and status, its row share-locked until the transaction
    ends: a kill switch (which locks it exclusively) either finishes first, and this answer
    sees PAUSED, or waits for this answer and then pauses what it put back in line."""
    row = conn.execute(
        select(INST.c.ate_interaction_id, INST.c.status)
        .where(INST.c.id == instance_id)
        .with_for_update(read=True)
    ).one()
    return InstanceState(row.ate_interaction_id, row.status)


def lock_uow(conn: Connection, uow_id: uuid.UUID) -> UowState | None:
    """The UOW, locked for this transaction (None: no such UOW)."""
    row = uows.get(conn, uow_id, for_update=True)
    return UowState.from_row(row) if row is not None else None


def pending_of(conn: Connection, uow_id: uuid.UUID, *, lock: bool = False) -> Any:
    """The UOW's pending request, newest first (None: it has none)."""
    stmt = (
        select(I)
        .where(I.c.uow_id == uow_id, I.c.status == PENDING)
        .order_by(I.c.created_at.desc(), I.c.id)
        .limit(1)
    )
    return conn.execute(dialects.of(conn).lock(stmt) if lock else stmt).first()


def resolve(
    conn: Connection,
    request_id: uuid.UUID,
    *,
    status: InterventionStatus,
    by: str,
    resolution: str | None,
    now: datetime,
) -> bool:
    """Close a pending request; False if it was no longer pending."""
    done = conn.execute(
        update(I)
        .where(I.c.id == request_id, I.c.status == PENDING)
        .values(status=status.value, resolved_at=now, resolved_by=by[:200], resolution=resolution)
    )
    return done.rowcount == 1


def expired_uows(conn: Connection, now: datetime, limit: int) -> list[UowState]:
    """Up to ``limit`` UOWs whose pending request is past its expiry, oldest expiry first,
    locked (skipping UOWs another transaction holds: another replica, or a pilot)."""
    due = select(I.c.uow_id).where(I.c.status == PENDING, I.c.expires_at <= now)
    oldest = (
        select(I.c.uow_id, func.min(I.c.expires_at).label("due"))
        .where(I.c.status == PENDING, I.c.expires_at <= now)
        .group_by(I.c.uow_id)
        .order_by(func.min(I.c.expires_at))
        .limit(limit)
    )
    ids = [r.uow_id for r in conn.execute(oldest)]
    if not ids:
        return []
    stmt = select(U).where(U.c.id.in_(ids), U.c.id.in_(due)).order_by(U.c.id)
    rows = conn.execute(dialects.of(conn).lock_skipping(stmt))
    return [UowState.from_row(r) for r in rows]


def inbox_page(
    conn: Connection,
    *,
    instance_id: uuid.UUID | None,
    type: str | None,
    after: Key | None,
    limit: int,
) -> Page[Any]:
    """Pending requests: critical first, then oldest."""
    stmt = select(I).where(I.c.status == PENDING)
    if instance_id is not None:
        stmt = stmt.where(I.c.instance_id == instance_id)
    if type is not None:
        stmt = stmt.where(I.c.type == type)
    return INBOX.fetch(conn, stmt, after, limit, lambda r: r)


@dataclass(frozen=True)
class Metrics:
    total: int
    by_status: dict[str, int]
    average_resolution_seconds: float | None
    by_type: dict[str, int]
    by_priority: dict[str, int]


def metrics(conn: Connection, now: datetime) -> Metrics:
    """Counts by status, type and priority and the average time to resolve, in SQL."""
    d = dialects.of(conn)
    # Whole seconds from creation to resolution, as the difference of two ages at ``now``.
    took = d.seconds_between(now, I.c.created_at) - d.seconds_between(now, I.c.resolved_at)
    statuses = [s.value for s in InterventionStatus]
    row = conn.execute(
        select(
            func.count(),
            func.avg(case((I.c.resolved_at.is_not(None), took))),
            *(func.sum(case((I.c.status == s, 1), else_=0)) for s in statuses),
        )
    ).one()
    total, average, *counts = row
    by_type: dict[str, int] = {
        t: int(n) for t, n in conn.execute(select(I.c.type, func.count()).group_by(I.c.type))
    }
    by_priority: dict[str, int] = {
        p: int(n)
        for p, n in conn.execute(select(I.c.priority, func.count()).group_by(I.c.priority))
    }
    return Metrics(
        total=int(total or 0),
        by_status={s: int(n or 0) for s, n in zip(statuses, counts, strict=True)},
        average_resolution_seconds=float(average) if average is not None else None,
        by_type=by_type,
        by_priority=by_priority,
    )
