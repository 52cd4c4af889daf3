"""Aggregates read at scrape time and by the alerts: each one indexed statement."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, func, select

from ..domain.enums import Direction, RoleType, UowStatus
from .tables import Component, Role, Uow

U = cast(Table, Uow.__table__)
C = cast(Table, Component.__table__)
R = cast(Table, Role.__table__)

WAITING_FOR_EPSILON = (UowStatus.PENDING.value, UowStatus.FAILED.value)


def oldest_active_heartbeat(conn: Connection) -> datetime | None:
    """The oldest heartbeat of an ACTIVE UOW (None: nothing is ACTIVE).

    One probe of ``ix_uows_active_heartbeat`` (status, last_heartbeat) on both databases.
    """
    stmt = select(func.min(U.c.last_heartbeat)).where(U.c.status == UowStatus.ACTIVE.value)
    return conn.scalar(stmt)


def epsilon_queue_depth(conn: Connection) -> int:
    """UOWs waiting (PENDING or FAILED) in the interactions EPSILON roles read from.

    Counted per interaction in ``ix_uows_waiting`` (current_interaction_id, status, ...).
    """
    read_by_epsilon = (
        select(C.c.interaction_id)
        .join(R, R.c.id == C.c.role_id)
        .where(R.c.role_type == RoleType.EPSILON.value, C.c.direction == Direction.INBOUND.value)
    )
    stmt = select(func.count()).where(
        U.c.current_interaction_id.in_(read_by_epsilon), U.c.status.in_(WAITING_FOR_EPSILON)
    )
    return int(conn.scalar(stmt) or 0)
