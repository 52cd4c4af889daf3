"""Parking work for a pilot: the one way a UOW enters PENDING_PILOT_APPROVAL.

An approval gate (at submit), an agent's request (for work it holds) and the loop guard all
park through :func:`park`: the UOW stays in its interaction with its lease ended, the move is
logged, a pending intervention request names where the work goes when approved, and the live
stream is told — all in the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection

from ..domain.enums import UowStatus
from ..store import interventions, pilot_events, uows
from ..store.interventions import NewIntervention
from ..store.work import UowState
from .records import log_row

PARKED = "parked_for_pilot"  # the log event of a park


def park(
    conn: Connection,
    row: UowState,
    new: NewIntervention,
    *,
    now: datetime,
    actor_id: uuid.UUID | None = None,
    role_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Park ``row`` (locked by the caller) in PENDING_PILOT_APPROVAL with a new request; the
    request's id."""
    request_id = interventions.insert_request(
        conn, new, instance_id=row.instance_id, uow_id=row.id, now=now
    )
    details = {
        "intervention_id": str(request_id),
        "type": new.type.value,
        "source": new.source,
        "title": new.title,
        "resume_interaction_id": (
            str(new.resume_interaction_id) if new.resume_interaction_id else None
        ),
    }
    if new.guardian_name:
        details["guardian"] = new.guardian_name
    logs = [
        log_row(
            row,
            PARKED,
            now,
            actor_id=actor_id,
            role_id=role_id,
            to_interaction_id=row.current_interaction_id,
            to_status=UowStatus.PENDING_PILOT_APPROVAL.value,
            details=details,
        )
    ]
    uows.move(
        conn,
        row.id,
        status=UowStatus.PENDING_PILOT_APPROVAL,
        interaction_id=row.current_interaction_id,
        now=now,
        failure=row.failure,
        logs=logs,
    )
    pilot_events.publish(
        conn,
        pilot_events.INTERVENTION_CREATED,
        details | {"uow_id": str(row.id), "priority": new.priority.value},
        now=now,
        instance_id=row.instance_id,
        uow_id=row.id,
        intervention_id=request_id,
    )
    return request_id
