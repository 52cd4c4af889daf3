"""The pilot's live events: written in the transaction of the change they announce.

Each row is one event of ``GET /api/interventions/stream``; its id is the stream's event id,
so a reconnecting client resumes after the last id it saw (``Last-Event-ID``). On PostgreSQL
the insert also notifies :data:`CHANNEL` (delivered at commit) so every server process wakes
at once; on SQLite listeners poll.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from . import dialects
from .tables import PilotEvent, table

E = table(PilotEvent)

CHANNEL = "chameleon_pilot_events"

# Event kinds.
INTERVENTION_CREATED = "intervention.created"
INTERVENTION_RESOLVED = "intervention.resolved"
INTERVENTION_EXPIRED = "intervention.expired"
INSTANCE_PAUSED = "instance.paused"
INSTANCE_RESUMED = "instance.resumed"
KINDS = (
    INTERVENTION_CREATED,
    INTERVENTION_RESOLVED,
    INTERVENTION_EXPIRED,
    INSTANCE_PAUSED,
    INSTANCE_RESUMED,
)


def publish(
    conn: Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    instance_id: uuid.UUID | None = None,
    uow_id: uuid.UUID | None = None,
    intervention_id: uuid.UUID | None = None,
) -> int:
    """Record one event (seen by the stream once this transaction commits); its id."""
    assert kind in KINDS, kind
    event_id = conn.scalar(
        insert(E)
        .values(
            kind=kind,
            instance_id=instance_id,
            uow_id=uow_id,
            intervention_id=intervention_id,
            payload=payload,
            at=now,
        )
        .returning(E.c.id)
    )
    assert event_id is not None
    dialects.of(conn).notify(conn, CHANNEL, str(event_id))
    return int(event_id)


def after(conn: Connection, last_id: int, limit: int) -> list[dict[str, Any]]:
    """Events with an id above ``last_id``, oldest first."""
    stmt = select(E).where(E.c.id > last_id).order_by(E.c.id).limit(limit)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def latest_id(conn: Connection) -> int:
    """The id of the newest event (0: none yet)."""
    return int(conn.scalar(select(E.c.id).order_by(E.c.id.desc()).limit(1)) or 0)


def prune(conn: Connection, before: datetime) -> int:
    """Forget events older than ``before`` (a client gone that long starts afresh), but never
    the newest: SQLite hands an id out again once the table is empty, and a client's
    ``Last-Event-ID`` would then skip the new events."""
    newest = select(func.max(E.c.id)).scalar_subquery()
    return conn.execute(delete(E).where(E.c.at < before, E.c.id < newest)).rowcount
