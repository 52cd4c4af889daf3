"""Memory decay: deleting (or archiving) memories not injected for a long time.

A memory under legal hold is never a candidate; in archive mode, neither is one already
archived (in delete mode an archived memory whose clock ran out is deleted: retention).
"""

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


def is_stale(
    cutoff: datetime, instance_id: uuid.UUID | None, *, archive: bool = False
) -> ColumnElement[bool]:
    """Last accessed before ``cutoff`` and not held (in archive mode: and not archived);
    rows without a timestamp never match."""
    cond = (M.c.last_accessed_at < cutoff) & M.c.held_at.is_(None)
    if archive:
        cond = cond & M.c.archived_at.is_(None)
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


def archive_batch(
    conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime, reason: str
) -> int:
    """Archive at most ``limit`` matching memories, each audited with ``reason``."""
    return dialects.of(conn).archive_memories(conn, cond, limit, now, reason)
