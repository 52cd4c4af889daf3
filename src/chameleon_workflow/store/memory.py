"""Role memories: global blueprints and personal playbooks, and the audit of their influence."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)

from ..domain.enums import MemoryScope
from . import dialects
from .pagination import Key, Keyset, Page
from .records import InjectionRecord, MemoryEntry
from .tables import Memory, MemoryEvent, MemoryInjection, table

M = table(Memory)
MI = table(MemoryInjection)
ME = table(MemoryEvent)

# A role's memories by scope and key (the id tells apart the same key of several actors);
# an upsert changes the value and version, never these.
ROLE_MEMORIES = Keyset("role-memories", (M.c.scope, M.c.key, M.c.id))
# Injection rows in the order they were written (one per checkout).
INFLUENCE = Keyset("memory-influence", (MI.c.id,))
INJECTIONS = Keyset("memory-injections", (MI.c.id,))

# last_accessed_at is refreshed at most this often, so that concurrent checkouts of one
# role do not all rewrite (and lock) the same memory rows; decay works in days.
TOUCH_GRANULARITY = timedelta(minutes=1)


# Built once: these run on every checkout.
_VISIBLE = and_(
    M.c.role_id == bindparam("p_role"),
    M.c.is_toxic.is_(False),
    or_(
        M.c.scope == MemoryScope.GLOBAL.value,
        and_(M.c.scope == MemoryScope.ACTOR.value, M.c.actor_id == bindparam("p_actor")),
    ),
)
_FOR_INJECTION = (
    select(M.c.id, M.c.scope, M.c.key, M.c.value, M.c.version)
    .where(_VISIBLE)
    .order_by(M.c.scope.desc(), M.c.key)  # 'GLOBAL' > 'ACTOR': globals first
)
_TOUCH = (
    update(M)
    .where(
        _VISIBLE,
        or_(M.c.last_accessed_at.is_(None), M.c.last_accessed_at < bindparam("touch_before")),
    )
    .values(last_accessed_at=bindparam("p_now"))
)


def for_injection(conn: Connection, role_id: uuid.UUID, actor_id: uuid.UUID) -> list[Row[Any]]:
    """Non-toxic global and personal memories of the role, globals first."""
    return list(conn.execute(_FOR_INJECTION, {"p_role": role_id, "p_actor": actor_id}))


def touch(
    conn: Connection,
    role_id: uuid.UUID,
    actor_id: uuid.UUID,
    now: datetime,
    touch_before: datetime,
) -> None:
    """Mark the memories just injected as accessed (one statement); a memory stamped since
    ``touch_before`` is left alone."""
    params = {"p_role": role_id, "p_actor": actor_id, "p_now": now, "touch_before": touch_before}
    conn.execute(_TOUCH, params)


def record_injection(
    conn: Connection,
    *,
    uow_id: uuid.UUID,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    entries: Sequence[Mapping[str, Any]],
    now: datetime,
) -> None:
    ids = dialects.of(conn).uuid_list([e["memory_id"] for e in entries])
    conn.execute(
        insert(MI).values(
            uow_id=uow_id,
            actor_id=actor_id,
            role_id=role_id,
            injected_at=now,
            memory_ids=ids,
            versions=[int(e["version"]) for e in entries],
        )
    )


def upsert(
    conn: Connection,
    *,
    instance_id: uuid.UUID,
    role_id: uuid.UUID,
    scope: MemoryScope,
    actor_id: uuid.UUID | None,
    key: str,
    value: Any,
    now: datetime,
    confidence: float | None = None,
    source_uow_id: uuid.UUID | None = None,
) -> MemoryEntry:
    """Create the memory, or write a new version of the existing one with that key."""
    owner = M.c.actor_id == actor_id if actor_id is not None else M.c.actor_id.is_(None)
    stmt = select(M.c.id, M.c.version).where(
        M.c.role_id == role_id, M.c.scope == scope.value, owner, M.c.key == key
    )
    existing = conn.execute(dialects.of(conn).lock(stmt)).first()
    if existing is None:
        memory_id = uuid.uuid4()
        conn.execute(
            insert(M).values(
                id=memory_id,
                instance_id=instance_id,
                role_id=role_id,
                scope=scope.value,
                actor_id=actor_id,
                key=key,
                value=value,
                version=1,
                confidence=1.0 if confidence is None else confidence,
                is_toxic=False,
                source_uow_id=source_uow_id,
                created_at=now,
                updated_at=now,
                last_accessed_at=now,
            )
        )
    else:
        memory_id = existing.id
        values: dict[str, Any] = {
            "value": value,
            "version": existing.version + 1,
            "updated_at": now,
        }
        if confidence is not None:
            values["confidence"] = confidence
        if source_uow_id is not None:
            values["source_uow_id"] = source_uow_id
        conn.execute(update(M).where(M.c.id == memory_id).values(**values))
    entry = get(conn, memory_id)
    assert entry is not None
    return entry


def get(conn: Connection, memory_id: uuid.UUID) -> MemoryEntry | None:
    row = conn.execute(select(M).where(M.c.id == memory_id)).first()
    return MemoryEntry.from_row(row) if row is not None else None


def list_for_role(
    conn: Connection,
    role_id: uuid.UUID,
    *,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    include_toxic: bool = True,
    after: Key | None = None,
    limit: int,
) -> Page[MemoryEntry]:
    stmt = select(M).where(M.c.role_id == role_id)
    if scope is not None:
        stmt = stmt.where(M.c.scope == scope.value)
    if actor_id is not None:
        stmt = stmt.where(M.c.actor_id == actor_id)
    if not include_toxic:
        stmt = stmt.where(M.c.is_toxic.is_(False))
    return ROLE_MEMORIES.fetch(conn, stmt, after, limit, MemoryEntry.from_row)


def purge_learned_from(conn: Connection, base_uow_id: uuid.UUID, now: datetime) -> int:
    """Delete memories learned from a base UOW (experience validation), auditing each."""
    learned = M.c.source_uow_id == base_uow_id
    conn.execute(
        insert(ME).from_select(
            ["memory_id", "action", "reason", "by", "at"],
            select(
                M.c.id,
                literal("purge", ME.c.action.type),
                literal(f"learned from abandoned UOW {base_uow_id}", ME.c.reason.type),
                literal("engine", ME.c.by.type),
                literal(now, ME.c.at.type),
            ).where(learned),
        )
    )
    return conn.execute(delete(M).where(learned)).rowcount


def injections_of_uow(
    conn: Connection, uow_id: uuid.UUID, after: Key | None, limit: int
) -> Page[InjectionRecord]:
    stmt = select(MI).where(MI.c.uow_id == uow_id)
    return INJECTIONS.fetch(conn, stmt, after, limit, InjectionRecord.from_row)


def uows_influenced_by(
    conn: Connection, memory_id: uuid.UUID, after: Key | None, limit: int
) -> Page[InjectionRecord]:
    """Injection rows whose memory ids include the memory."""
    stmt = select(MI).where(dialects.of(conn).list_contains(MI.c.memory_ids, memory_id))
    return INFLUENCE.fetch(conn, stmt, after, limit, InjectionRecord.from_row)
