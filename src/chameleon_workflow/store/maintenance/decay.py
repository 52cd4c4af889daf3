"""Memory decay: deleting (or archiving) memories not injected for a long time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    any_,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
)

from ..tables import Memory, MemoryArchive
from .moves import locked_ids

M = cast(Table, Memory.__table__)
MA = cast(Table, MemoryArchive.__table__)
COLUMNS = [c.name for c in M.columns]


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
    if conn.dialect.name == "postgresql":
        picked = _picked_pg(cond, limit)
        return conn.execute(delete(M).where(M.c.id == any_(picked), cond)).rowcount
    rowid: ColumnElement[int] = literal_column("memories.rowid")
    picked_rows = select(rowid).where(cond).limit(limit)
    return conn.execute(delete(M).where(rowid.in_(picked_rows), cond)).rowcount


def archive_batch(conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime) -> int:
    """Move at most ``limit`` matching memories to ``memory_archive``."""
    if conn.dialect.name == "postgresql":
        picked = _picked_pg(cond, limit)
        gone = (
            delete(M)
            .where(M.c.id == any_(picked), cond)
            .returning(*(M.c[c] for c in COLUMNS))
            .cte("gone")
        )
        stmt = insert(MA).from_select(
            [*COLUMNS, "archived_at"],
            select(*(gone.c[c] for c in COLUMNS), literal(now, MA.c.archived_at.type)),
        )
        return len(conn.execute(stmt.returning(MA.c.id)).all())
    # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so the copy and the
    # delete below see the same rows; the delete re-checks the condition all the same.
    rowid: ColumnElement[int] = literal_column("memories.rowid")
    picked_rows = select(rowid).where(cond).order_by(rowid).limit(limit)
    copied = conn.execute(
        insert(MA).from_select(
            [*COLUMNS, "archived_at"],
            select(*(M.c[c] for c in COLUMNS), literal(now, MA.c.archived_at.type)).where(
                rowid.in_(picked_rows)
            ),
        )
    ).rowcount
    deleted = conn.execute(delete(M).where(rowid.in_(picked_rows), cond)).rowcount
    if copied != deleted:  # pragma: no cover - impossible under the write lock
        raise RuntimeError(f"archive copied {copied} memories but deleted {deleted}")
    return deleted


def _picked_pg(cond: ColumnElement[bool], limit: int) -> Any:
    # Rows a checkout is touching right now are skipped, so decay never waits on work. In
    # index order, each batch starts where the last one ended instead of scanning past the
    # dead rows that earlier batches left at the start of the table.
    return locked_ids(M.c.id, cond, (M.c.last_accessed_at,), limit)
