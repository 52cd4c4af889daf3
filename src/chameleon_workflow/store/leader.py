"""Leader leases: which replica may run a scheduled job, until when.

Portable across SQLite and PostgreSQL: a conditional ``UPDATE`` takes over a lease that is
ours or has expired; failing that, an ``INSERT ... ON CONFLICT DO NOTHING`` creates it.
Whichever statement changed a row decides who leads.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, delete, or_, select, update

from . import dialects
from .records import LeaderLeaseRecord
from .tables import LeaderLease

LL = cast(Table, LeaderLease.__table__)


def acquire(
    conn: Connection, job: str, holder: str, *, now: datetime, expires_at: datetime
) -> bool:
    """Take or renew the lease on ``job``; True when ``holder`` now leads it."""
    renewed = conn.execute(
        update(LL)
        .where(LL.c.job == job, or_(LL.c.holder == holder, LL.c.expires_at < now))
        .values(holder=holder, expires_at=expires_at)
    )
    if renewed.rowcount == 1:
        return True
    values = {"job": job, "holder": holder, "expires_at": expires_at}
    created = conn.execute(dialects.of(conn).insert_ignoring_conflict(LL, values))
    return created.rowcount == 1


def release(conn: Connection, job: str, holder: str) -> bool:
    """Give up the lease if we hold it, so another replica can take over at once."""
    result = conn.execute(delete(LL).where(LL.c.job == job, LL.c.holder == holder))
    return result.rowcount == 1


def current(conn: Connection) -> list[LeaderLeaseRecord]:
    return [LeaderLeaseRecord.from_row(r) for r in conn.execute(select(LL).order_by(LL.c.job))]
