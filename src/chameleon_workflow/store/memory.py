"""Role memories: global blueprints and personal playbooks, their versions and lifecycle,
and the audit of their influence.

A memory row holds the current version (and its provenance); ``memory_versions`` keeps every
version. Archived memories stay in the table, out of the checkout's index, until restored or
hard-deleted by retention; a held memory is never archived or deleted. Every lifecycle change
is a row in ``memory_events``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from ..domain.enums import MemoryScope
from . import dialects
from .pagination import Key, Keyset, Page
from .records import InjectionRecord, MemoryEntry, MemoryVersionRecord
from .tables import Memory, MemoryEvent, MemoryInjection, MemoryVersion, Uow, table

M = table(Memory)
MV = table(MemoryVersion)
MI = table(MemoryInjection)
ME = table(MemoryEvent)
U = table(Uow)

# A role's memories by scope and key (the id tells apart the same key of several actors);
# an upsert changes the value and version, never these.
ROLE_MEMORIES = Keyset("role-memories", (M.c.scope, M.c.key, M.c.id))
# A memory's versions, oldest first.
VERSIONS = Keyset("memory-versions", (MV.c.version,))
# Injection rows in the order they were written (one per checkout).
INFLUENCE = Keyset("memory-influence", (MI.c.id,))
INJECTIONS = Keyset("memory-injections", (MI.c.id,))

# last_accessed_at is refreshed at most this often, so that concurrent checkouts of one
# role do not all rewrite (and lock) the same memory rows; decay works in days.
TOUCH_GRANULARITY = timedelta(minutes=1)

# memory_events.action values.
ARCHIVE = "archive"
RESTORE = "restore"
HOLD = "hold"
RELEASE = "release"
PURGE = "purge"

LIVE = M.c.archived_at.is_(None)
NOT_HELD = M.c.held_at.is_(None)

# Built once: these run on every checkout.
_VISIBLE = and_(
    M.c.role_id == bindparam("p_role"),
    LIVE,
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
# A global entry the actor's own entry of the same key replaces is not injected, so its
# clock does not move.
_OWN = M.alias("own")
_SHADOWED = and_(
    M.c.scope == MemoryScope.GLOBAL.value,
    select(_OWN.c.id)
    .where(
        _OWN.c.role_id == bindparam("p_role"),
        _OWN.c.scope == MemoryScope.ACTOR.value,
        _OWN.c.actor_id == bindparam("p_actor"),
        _OWN.c.key == M.c.key,
        _OWN.c.archived_at.is_(None),
        _OWN.c.is_toxic.is_(False),
    )
    .exists(),
)
_TOUCH = (
    update(M)
    .where(
        _VISIBLE,
        ~_SHADOWED,
        or_(M.c.last_accessed_at.is_(None), M.c.last_accessed_at < bindparam("touch_before")),
    )
    .values(last_accessed_at=bindparam("p_now"))
)


def for_injection(conn: Connection, role_id: uuid.UUID, actor_id: uuid.UUID) -> list[Row[Any]]:
    """Live, non-toxic global and personal memories of the role, globals first."""
    return list(conn.execute(_FOR_INJECTION, {"p_role": role_id, "p_actor": actor_id}))


def touch(
    conn: Connection,
    role_id: uuid.UUID,
    actor_id: uuid.UUID,
    now: datetime,
    touch_before: datetime,
) -> None:
    """Mark the memories just injected as accessed (one statement): the role's live,
    non-toxic ones the actor sees, less the global entries its own replace; a memory stamped
    since ``touch_before`` is left alone."""
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
            keys=[str(e["key"]) for e in entries],
        )
    )


@dataclass(frozen=True)
class Provenance:
    """Who wrote a version, why, and from which UOW and actor."""

    written_by: str
    reasoning: str | None = None
    source_uow_id: uuid.UUID | None = None
    source_actor_id: uuid.UUID | None = None


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
    provenance: Provenance,
    confidence: float | None = None,
) -> MemoryEntry:
    """Create the memory, or write a new version of the existing one with that key (an
    archived one comes back: what is written again is meant to be used)."""
    # Two first writes of one key must not both insert: writers of a key take turns.
    dialects.of(conn).serialize(conn, f"memory:{role_id}:{scope.value}:{actor_id}:{key}")
    # The live memory of that key, else the newest archived one (a decay archive restored
    # by migration 0008 may stand beside a live twin).
    stmt = (
        select(M.c.id, M.c.version, M.c.confidence, M.c.archived_at)
        .where(_same_key(role_id, scope.value, actor_id, key))
        .order_by(M.c.archived_at.is_not(None), M.c.created_at.desc())
        .limit(1)
    )
    existing = conn.execute(dialects.of(conn).lock(stmt)).first()
    written = {
        "value": value,
        "updated_at": now,
        "reasoning": provenance.reasoning,
        "written_by": provenance.written_by,
        "source_uow_id": provenance.source_uow_id,
        "source_actor_id": provenance.source_actor_id,
    }
    if existing is None:
        memory_id, version = uuid.uuid4(), 1
        kept = 1.0 if confidence is None else confidence
        conn.execute(
            insert(M).values(
                id=memory_id,
                instance_id=instance_id,
                role_id=role_id,
                scope=scope.value,
                actor_id=actor_id,
                key=key,
                version=version,
                confidence=kept,
                is_toxic=False,
                created_at=now,
                last_accessed_at=now,
                **written,
            )
        )
    else:
        memory_id, version = existing.id, existing.version + 1
        kept = existing.confidence if confidence is None else confidence
        values = written | {"version": version, "confidence": kept}
        if existing.archived_at is not None:
            values |= {"archived_at": None, "archived_by": None, "archive_reason": None}
            values["last_accessed_at"] = now
            reason = f"written again (version {version})"
            record_events(conn, [memory_id], RESTORE, reason, provenance.written_by, now)
        conn.execute(update(M).where(M.c.id == memory_id).values(**values))
    conn.execute(
        insert(MV).values(
            memory_id=memory_id,
            version=version,
            value=value,
            confidence=kept,
            reasoning=provenance.reasoning,
            written_by=provenance.written_by,
            source_uow_id=provenance.source_uow_id,
            source_actor_id=provenance.source_actor_id,
            written_at=now,
        )
    )
    entry = get(conn, memory_id)
    assert entry is not None
    return entry


def _same_key(
    role_id: uuid.UUID, scope: str, actor_id: uuid.UUID | None, key: str
) -> ColumnElement[bool]:
    owner = M.c.actor_id == actor_id if actor_id is not None else M.c.actor_id.is_(None)
    return and_(M.c.role_id == role_id, M.c.scope == scope, owner, M.c.key == key)


def live_twin(conn: Connection, entry: MemoryEntry) -> uuid.UUID | None:
    """Another, live memory with the entry's role, scope, actor and key (None: none)."""
    same = _same_key(entry.role_id, entry.scope, entry.actor_id, entry.key)
    stmt = select(M.c.id).where(same, LIVE, M.c.id != entry.id).limit(1)
    return conn.scalar(stmt)


def get(conn: Connection, memory_id: uuid.UUID, *, lock: bool = False) -> MemoryEntry | None:
    stmt = select(M).where(M.c.id == memory_id)
    row = conn.execute(dialects.of(conn).lock(stmt) if lock else stmt).first()
    return MemoryEntry.from_row(row) if row is not None else None


def list_for_role(
    conn: Connection,
    role_id: uuid.UUID,
    *,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    visible_to: uuid.UUID | None = None,
    include_toxic: bool = True,
    archived: bool = False,
    after: Key | None = None,
    limit: int,
) -> Page[MemoryEntry]:
    """A page of the role's live (or, with ``archived``, archived) memories; ``visible_to``
    keeps the global blueprint and that actor's playbook."""
    stmt = select(M).where(
        M.c.role_id == role_id, M.c.archived_at.is_not(None) if archived else LIVE
    )
    if scope is not None:
        stmt = stmt.where(M.c.scope == scope.value)
    if actor_id is not None:
        stmt = stmt.where(M.c.actor_id == actor_id)
    if visible_to is not None:
        stmt = stmt.where(or_(M.c.scope == MemoryScope.GLOBAL.value, M.c.actor_id == visible_to))
    if not include_toxic:
        stmt = stmt.where(M.c.is_toxic.is_(False))
    return ROLE_MEMORIES.fetch(conn, stmt, after, limit, MemoryEntry.from_row)


def versions(
    conn: Connection, memory_id: uuid.UUID, after: Key | None, limit: int
) -> Page[MemoryVersionRecord]:
    stmt = select(MV).where(MV.c.memory_id == memory_id)
    return VERSIONS.fetch(conn, stmt, after, limit, MemoryVersionRecord.from_row)


# --- lifecycle ------------------------------------------------------------------------------


def record_events(
    conn: Connection,
    ids: Collection[uuid.UUID],
    action: str,
    reason: str,
    by: str,
    now: datetime,
) -> None:
    if ids:
        rows = [
            {"memory_id": m, "action": action, "reason": reason, "by": by, "at": now} for m in ids
        ]
        conn.execute(insert(ME), rows)


def archive(
    conn: Connection, ids: Collection[uuid.UUID], *, reason: str, by: str, now: datetime
) -> list[uuid.UUID]:
    """Archive the live, unheld memories among ``ids``; the ones archived, each audited."""
    if not ids:
        return []
    changed = list(
        conn.scalars(
            update(M)
            .where(M.c.id.in_(list(ids)), LIVE, NOT_HELD)
            .values(archived_at=now, archived_by=by, archive_reason=reason)
            .returning(M.c.id)
        )
    )
    record_events(conn, changed, ARCHIVE, reason, by, now)
    return changed


def restore(conn: Connection, memory_id: uuid.UUID, *, reason: str, by: str, now: datetime) -> bool:
    """Bring an archived memory back, its decay clock restarted; False if it was not archived."""
    done = conn.execute(
        update(M)
        .where(M.c.id == memory_id, M.c.archived_at.is_not(None))
        .values(archived_at=None, archived_by=None, archive_reason=None, last_accessed_at=now)
    ).rowcount
    if done:
        record_events(conn, [memory_id], RESTORE, reason, by, now)
    return bool(done)


def set_hold(
    conn: Connection, memory_id: uuid.UUID, *, held: bool, reason: str, by: str, now: datetime
) -> bool:
    """Put the memory under legal hold (or release it); False if it already was (was not)."""
    values: dict[str, Any] = (
        {"held_at": now, "held_by": by, "hold_reason": reason}
        if held
        else {"held_at": None, "held_by": None, "hold_reason": None}
    )
    state = NOT_HELD if held else M.c.held_at.is_not(None)
    done = conn.execute(update(M).where(M.c.id == memory_id, state).values(**values)).rowcount
    if done:
        record_events(conn, [memory_id], HOLD if held else RELEASE, reason, by, now)
    return bool(done)


def playbook(conn: Connection, role_id: uuid.UUID, actor_id: uuid.UUID) -> list[Row[Any]]:
    """The live personal memories of the actor for the role (id and hold), locked."""
    stmt = select(M.c.id, M.c.held_at).where(
        M.c.role_id == role_id,
        M.c.scope == MemoryScope.ACTOR.value,
        M.c.actor_id == actor_id,
        LIVE,
    )
    return list(conn.execute(dialects.of(conn).lock(stmt.order_by(M.c.key))))


def _learned_from(base_uow_id: uuid.UUID) -> ColumnElement[bool]:
    """Memories whose current version was learned from the base UOW or one of its children."""
    family = select(U.c.id).where(or_(U.c.id == base_uow_id, U.c.parent_id == base_uow_id))
    return M.c.source_uow_id.in_(family.scalar_subquery())


def learned_from(conn: Connection, base_uow_id: uuid.UUID) -> list[Row[Any]]:
    """Live memories learned from the base UOW's family (id and hold)."""
    stmt = select(M.c.id, M.c.held_at).where(_learned_from(base_uow_id), LIVE)
    return list(conn.execute(stmt))


def purge(
    conn: Connection, ids: Collection[uuid.UUID], *, reason: str, by: str, now: datetime
) -> int:
    """Hard-delete the unheld memories among ``ids`` (their versions go with them); each one
    deleted is audited."""
    if not ids:
        return 0
    gone = list(conn.scalars(delete(M).where(M.c.id.in_(list(ids)), NOT_HELD).returning(M.c.id)))
    record_events(conn, gone, PURGE, reason, by, now)
    return len(gone)


# --- the audit of influence -----------------------------------------------------------------


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


def ever_existed(conn: Connection, memory_id: uuid.UUID) -> bool:
    """Whether the memory exists now or has an audit trail (it was deleted)."""
    if get(conn, memory_id) is not None:
        return True
    return conn.scalar(select(ME.c.id).where(ME.c.memory_id == memory_id).limit(1)) is not None
