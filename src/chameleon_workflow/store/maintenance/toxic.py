"""Toxic marks on memories, each change audited in ``memory_events``."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, insert, select, update

from ..pagination import Key, Keyset, Page
from ..tables import Memory, MemoryEvent

M = cast(Table, Memory.__table__)
ME = cast(Table, MemoryEvent.__table__)

MARK = "mark_toxic"
UNMARK = "unmark_toxic"
# A memory's events in the order they happened (ids only grow).
EVENTS = Keyset("toxic-history", (ME.c.id,))


def existing(conn: Connection, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    return set(conn.scalars(select(M.c.id).where(M.c.id.in_(list(ids)))))


def set_toxic(
    conn: Connection,
    ids: Collection[uuid.UUID],
    *,
    toxic: bool,
    reason: str,
    by: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Flip the mark on the memories not already in that state; audit each one changed."""
    values = (
        {"is_toxic": True, "toxic_reason": reason, "toxic_by": by, "toxic_at": now}
        if toxic
        else {"is_toxic": False, "toxic_reason": None, "toxic_by": None, "toxic_at": None}
    )
    changed = list(
        conn.scalars(
            update(M)
            .where(M.c.id.in_(list(ids)), M.c.is_toxic.is_(not toxic))
            .values(**values)
            .returning(M.c.id)
        )
    )
    if changed:
        action = MARK if toxic else UNMARK
        conn.execute(
            insert(ME),
            [
                {"memory_id": m, "action": action, "reason": reason, "by": by, "at": now}
                for m in changed
            ],
        )
    return changed


def events(
    conn: Connection, memory_id: uuid.UUID, after: Key | None, limit: int
) -> Page[dict[str, object]]:
    stmt = select(ME).where(ME.c.memory_id == memory_id)
    return EVENTS.fetch(conn, stmt, after, limit, lambda r: dict(r._mapping))
