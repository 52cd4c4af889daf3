"""The recorded outcome of each lease's submit or failure report, for replays.

A row is written by the same transaction (on PostgreSQL's one-statement submit, the same
statement) as the submit or failure itself, so it exists exactly when that write landed;
the lease id is the key, so a lease can land at most once. Rows are kept like the
interaction log: nothing prunes them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, insert, select

from .sql import LOG, OUTCOMES
from .work import LeaseEvent, Recorded

__all__ = ["Recorded", "get", "lease_events", "record"]


def record(conn: Connection, recorded: Recorded) -> None:
    conn.execute(insert(OUTCOMES).values(**recorded.values()))


def get(conn: Connection, lease_id: uuid.UUID) -> Recorded | None:
    row = conn.execute(select(OUTCOMES).where(OUTCOMES.c.lease_id == lease_id)).first()
    return Recorded.from_row(row) if row is not None else None


def lease_events(conn: Connection, uow_id: uuid.UUID) -> list[LeaseEvent]:
    """The UOW's log rows, oldest first (event, actor, time, details): a lease's story."""
    stmt = (
        select(LOG.c.event, LOG.c.actor_id, LOG.c.at, LOG.c.details)
        .where(LOG.c.uow_id == uow_id)
        .order_by(LOG.c.id)
    )
    return [LeaseEvent(*row) for row in conn.execute(stmt)]
