"""What the pilot's guards read and write: a UOW's visits to a role (the loop guard) and
waivers (a guard lets one UOW pass once)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from .tables import InteractionLog, PilotWaiver, table

L = table(InteractionLog)
W = table(PilotWaiver)

# Log events that bring a UOW into an interaction as a new visit: starting it, a submit's
# route and a decomposition's children. A move back where it already was (a zombie requeue,
# a waiver, a pilot's answer) is not a new visit.
ENTRY_EVENTS = ("genesis", "route", "spawn")


def visits(conn: Connection, uow_id: uuid.UUID, interaction_ids: Collection[uuid.UUID]) -> int:
    """How often the UOW entered one of ``interaction_ids`` (its own log rows, by index)."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(L)
            .where(
                L.c.uow_id == uow_id,
                L.c.event.in_(ENTRY_EVENTS),
                L.c.to_interaction_id.in_(list(interaction_ids)),
            )
        ).scalar_one()
    )


def grant(
    conn: Connection,
    uow_id: uuid.UUID,
    guardian_name: str,
    *,
    reason: str,
    granted_by: str,
    now: datetime,
) -> int:
    """Write a waiver; its id."""
    return int(
        conn.execute(
            insert(W)
            .values(
                uow_id=uow_id,
                guardian_name=guardian_name,
                reason=reason,
                granted_by=granted_by,
                granted_at=now,
            )
            .returning(W.c.id)
        ).scalar_one()
    )


def use(conn: Connection, uow_id: uuid.UUID, guardian_name: str, now: datetime) -> int | None:
    """Spend the UOW's oldest unused waiver of ``guardian_name``; its id (None: there is none)."""
    waiver = (
        select(W.c.id)
        .where(W.c.uow_id == uow_id, W.c.guardian_name == guardian_name, W.c.used_at.is_(None))
        .order_by(W.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return conn.execute(
        update(W)
        .where(W.c.id == waiver, W.c.used_at.is_(None))
        .values(used_at=now)
        .returning(W.c.id)
    ).scalar()
