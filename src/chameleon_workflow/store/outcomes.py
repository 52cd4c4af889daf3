"""The recorded outcome of each lease's submit or failure report, for replays.

A row is written by the same transaction (on PostgreSQL's one-statement submit, the same
statement) as the submit or failure itself, so it exists exactly when that write landed;
the lease id is the key, so a lease can land at most once. Rows are kept like the
interaction log: nothing prunes them.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from .tables import LeaseOutcome, table
from .uows import L

O = table(LeaseOutcome)  # noqa: E741


@dataclass(frozen=True)
class Recorded:
    """What a lease was used for, as the row that records it."""

    lease_id: uuid.UUID
    uow_id: uuid.UUID
    actor_id: uuid.UUID
    operation: str
    request_hash: str
    outcome: dict[str, Any]
    at: datetime


def record(conn: Connection, recorded: Recorded) -> None:
    conn.execute(insert(O).values(**asdict(recorded)))


def get(conn: Connection, lease_id: uuid.UUID) -> Recorded | None:
    row = conn.execute(select(O).where(O.c.lease_id == lease_id)).first()
    return Recorded(**row._mapping) if row is not None else None


def lease_events(conn: Connection, uow_id: uuid.UUID) -> list[Row[Any]]:
    """The UOW's log rows, oldest first (event, actor, time, details): a lease's story."""
    stmt = (
        select(L.c.event, L.c.actor_id, L.c.at, L.c.details)
        .where(L.c.uow_id == uow_id)
        .order_by(L.c.id)
    )
    return list(conn.execute(stmt))
