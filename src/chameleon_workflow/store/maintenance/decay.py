"""Memory decay: deleting (or archiving) memories not injected for a long time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    func,
    select,
)

from .. import dialects
from ..tables import Memory

M = cast(Table, Memory.__table__)


def is_stale(cutoff: datetime, instance_id: uuid.UUID | None) -> ColumnElement[bool]:
    """Last accessed before ``cutoff``; rows without a timestamp never match."""
    cond = M.c.last_accessed_at < cutoff
    if instance_id is not None:
        cond = cond & (M.c.instance_id == instance_id)
    return cond


def count(conn: Connection, cond: ColumnElement[bool]) -> int:
    return conn.scalar(select(func.count()).select_from(M).where(cond)) or 0


def sample(conn: Connection, cond: ColumnElement[bool], n: int) -> list[uuid.UUID]:
    stmt = select(M.c.id).where(cond).order_by(M.c.last_accessed_at, M.c.id).limit(n)
    return list(conn.scalars(stmt))


def delete_batch(conn: Connection, cond: ColumnElement[bool], limit: int) -> int:
    """Delete at most ``limit`` matching memories in one conditional statement."""
    return dialects.of(conn).delete_memories(conn, cond, limit)


def archive_batch(conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime) -> int:
    """Move at most ``limit`` matching memories to ``memory_archive``."""
    return dialects.of(conn).archive_memories(conn, cond, limit, now)
