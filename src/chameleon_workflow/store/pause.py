"""The kill switch's writes: an instance's status and its work paused or resumed, set-based.

Pausing moves every PENDING, ACTIVE and FAILED UOW of an instance to PAUSED in one
statement (plus one log row each, from the same statement on PostgreSQL), whatever their
number; ``paused_from`` keeps what resume restores (an ACTIVE UOW loses its lease and comes
back PENDING). ``entered_at`` is never touched, so resumed work keeps its place in line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, case, func, literal, null, select, update

from ..domain.enums import InstanceStatus, UowStatus
from . import dialects
from .sql import CLEAR_LEASE, LOG, UOWS
from .tables import Instance, table

I = table(Instance)  # noqa: E741

# What the kill switch pauses (PENDING_PILOT_APPROVAL work is left as it is).
PAUSABLE = (UowStatus.PENDING.value, UowStatus.ACTIVE.value, UowStatus.FAILED.value)
PAUSED = UowStatus.PAUSED.value
PAUSE_EVENT = "paused"
RESUME_EVENT = "resumed"


@dataclass(frozen=True)
class InstanceState:
    id: uuid.UUID
    status: str
    paused_at: datetime | None
    paused_by: str | None
    pause_reason: str | None


def lock_instance(
    conn: Connection, instance_id: uuid.UUID, *, share: bool = False
) -> InstanceState | None:
    """The instance's status, its row locked until the transaction ends (None: unknown).

    ``share`` (genesis): many may hold it at once, but not while a pilot changes the
    status. Otherwise (kill switch, resume) ``FOR NO KEY UPDATE``: it excludes ``share``
    holders but not the ``FOR KEY SHARE`` lock every insert of a UOW takes through its
    foreign key, so a decomposing submit never waits on the kill switch for its children.
    On SQLite the write lock of ``BEGIN IMMEDIATE`` already serializes them.
    """
    stmt = select(I.c.id, I.c.status, I.c.paused_at, I.c.paused_by, I.c.pause_reason).where(
        I.c.id == instance_id
    )
    stmt = stmt.with_for_update(read=True) if share else stmt.with_for_update(key_share=True)
    row = conn.execute(stmt).first()
    return InstanceState(*row) if row is not None else None


def set_paused(
    conn: Connection, instance_id: uuid.UUID, *, at: datetime, by: str, reason: str
) -> None:
    conn.execute(
        update(I)
        .where(I.c.id == instance_id)
        .values(status=InstanceStatus.PAUSED.value, paused_at=at, paused_by=by, pause_reason=reason)
    )


def set_active(conn: Connection, instance_id: uuid.UUID) -> None:
    conn.execute(
        update(I)
        .where(I.c.id == instance_id)
        .values(
            status=InstanceStatus.ACTIVE.value, paused_at=None, paused_by=None, pause_reason=None
        )
    )


@dataclass(frozen=True)
class PauseMove:
    """Pause (or resume) an instance's work: who, why, when."""

    instance_id: uuid.UUID
    by: str
    reason: str
    now: datetime

    @property
    def pausable(self) -> Any:
        return and_(UOWS.c.instance_id == self.instance_id, UOWS.c.status.in_(PAUSABLE))

    @property
    def paused(self) -> Any:
        return and_(UOWS.c.instance_id == self.instance_id, UOWS.c.status == PAUSED)

    def details(self, conn: Connection, lease_id: Any = None) -> Any:
        """The log row's details in SQL: the pilot, the reason, the instance and (pause
        only) the lease the kill switch ended."""
        d = dialects.of(conn)
        pairs: dict[str, Any] = {
            "pilot": literal(self.by, String()),
            "reason": literal(self.reason, String()),
            "instance_id": literal(str(self.instance_id), String()),
        }
        if lease_id is not None:
            pairs["lease_id"] = d.uuid_text(lease_id)
        return d.json_object(pairs)


def paused_from(status: Any) -> Any:
    """What resume restores: an ACTIVE UOW's lease ends, so it comes back PENDING."""
    return case((status == UowStatus.ACTIVE.value, UowStatus.PENDING.value), else_=status)


def pause_values(move: PauseMove, status: Any) -> dict[str, Any]:
    """The columns a pause sets (``status``: the SQL of the status the UOW had)."""
    return {
        "status": PAUSED,
        "paused_from": paused_from(status),
        "updated_at": move.now,
        **CLEAR_LEASE,
    }


def resume_values(move: PauseMove) -> dict[str, Any]:
    return {
        "status": restored(UOWS.c.paused_from),
        "paused_from": None,
        "updated_at": move.now,
    }


def restored(column: Any) -> Any:
    return func.coalesce(column, UowStatus.PENDING.value)


def log_values(
    source: Any,
    *,
    event: str,
    from_status: Any,
    to_status: Any,
    at: datetime,
    details: Any,
) -> dict[str, Any]:
    """One interaction-log row per UOW of ``source`` (``uows`` or a RETURNING CTE)."""
    return {
        "uow_id": source.c.id,
        "instance_id": source.c.instance_id,
        "actor_id": null(),  # the pilot is no actor: details name them
        "role_id": source.c.current_role_id,
        "event": literal(event, String()),
        "from_interaction_id": source.c.current_interaction_id,
        "to_interaction_id": source.c.current_interaction_id,
        "from_status": from_status,
        "to_status": to_status,
        "at": literal(at, LOG.c.at.type),
        "details": details,
    }


def pause_uows(conn: Connection, move: PauseMove) -> int:
    """Pause the instance's PENDING, ACTIVE and FAILED work not locked by another
    transaction (PostgreSQL skips rows a running submit or checkout holds; the caller comes
    back for them), with a log row each; how many were paused."""
    return dialects.of(conn).pause_uows(conn, move)


def resume_uows(conn: Connection, move: PauseMove) -> int:
    """Put every PAUSED UOW of the instance back to the status it had, with a log row
    each; how many."""
    return dialects.of(conn).resume_uows(conn, move)


def live_count(conn: Connection, instance_id: uuid.UUID) -> int:
    """How many of the instance's UOWs are still PENDING, ACTIVE or FAILED."""
    cond = and_(UOWS.c.instance_id == instance_id, UOWS.c.status.in_(PAUSABLE))
    return int(conn.scalar(select(func.count()).select_from(UOWS).where(cond)) or 0)
