"""Requests for a pilot (``interventions``): the rows, and the inbox's order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from ..domain.enums import InterventionStatus, InterventionType, Priority
from . import dialects
from .pagination import Keyset
from .tables import Intervention, table

I = table(Intervention)  # noqa: E741 - the table's usual one-letter alias

# critical first; the inbox index orders by this rank, then age.
RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}
# The inbox: pending requests by priority, then oldest first.
INBOX = Keyset("interventions-pending", (I.c.priority_rank, I.c.created_at, I.c.id))


@dataclass(frozen=True)
class NewIntervention:
    """What raises a request: who, why, and where the work goes when approved."""

    type: InterventionType
    title: str
    source: str  # guardian | agent | loop_guard
    requested_by: str
    priority: Priority = Priority.NORMAL
    description: str | None = None
    guardian_name: str | None = None
    actor_id: uuid.UUID | None = None
    resume_interaction_id: uuid.UUID | None = None
    on_expiry: str | None = None  # cancel | approve (None: never expires)
    expires_at: datetime | None = None
    details: dict[str, Any] | None = None


def insert_request(
    conn: Connection,
    new: NewIntervention,
    *,
    instance_id: uuid.UUID,
    uow_id: uuid.UUID,
    now: datetime,
) -> uuid.UUID:
    """Write a pending request; its id."""
    request_id = uuid.uuid4()
    conn.execute(
        insert(I).values(
            id=request_id,
            instance_id=instance_id,
            uow_id=uow_id,
            type=new.type.value,
            status=InterventionStatus.PENDING.value,
            priority=new.priority.value,
            priority_rank=RANK[new.priority],
            title=new.title,
            description=new.description,
            source=new.source,
            guardian_name=new.guardian_name,
            requested_by=new.requested_by,
            actor_id=new.actor_id,
            resume_interaction_id=new.resume_interaction_id,
            on_expiry=new.on_expiry,
            details=new.details,
            created_at=now,
            expires_at=new.expires_at,
        )
    )
    return request_id


def get(conn: Connection, request_id: uuid.UUID, *, lock: bool = False) -> Any:
    """The request's row (None: no such request); ``lock`` holds it for this transaction."""
    stmt = select(I).where(I.c.id == request_id)
    return conn.execute(dialects.of(conn).lock(stmt) if lock else stmt).first()
