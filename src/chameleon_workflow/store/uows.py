"""Units of work, their versioned attributes and the interaction log."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from ..domain.enums import UowStatus
from . import dialects, sql
from .records import AttributeVersion, TransitionRecord, UowRecord
from .tables import InteractionLog, Uow, UowAttribute, table
from .work import LogEntry, UowState

U = table(Uow)
A = table(UowAttribute)
L = table(InteractionLog)

TERMINAL = (UowStatus.COMPLETED.value, UowStatus.ABANDONED.value)
_CLEAR_LEASE = sql.CLEAR_LEASE


def insert_uows(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(U), list(rows))


def insert_attributes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        conn.execute(insert(A), list(rows))


def log(conn: Connection, entries: Sequence[LogEntry]) -> None:
    """Append interaction-log rows (one statement)."""
    if entries:
        conn.execute(insert(L), [e.values() for e in entries])


def latest_attributes(conn: Connection, uow_id: uuid.UUID) -> dict[str, tuple[int, Any]]:
    """Key -> (version, value) of the newest version of every attribute."""
    latest: dict[str, tuple[int, Any]] = {}
    rows = conn.execute(
        select(A.c.key, A.c.version, A.c.value).where(A.c.uow_id == uow_id).order_by(A.c.version)
    )
    for key, version, value in rows:
        latest[key] = (version, value)
    return latest


def attribute_history(conn: Connection, uow_id: uuid.UUID) -> list[AttributeVersion]:
    """Every version of every attribute of the UOW, in the order they were written."""
    rows = conn.execute(
        select(A.c.key, A.c.version, A.c.value, A.c.actor_id, A.c.reasoning, A.c.created_at)
        .where(A.c.uow_id == uow_id)
        .order_by(A.c.created_at, A.c.id)
    )
    return [AttributeVersion.from_row(r) for r in rows]


def log_history(conn: Connection, uow_id: uuid.UUID) -> list[TransitionRecord]:
    """The UOW's interaction-log rows, in the order they were written."""
    rows = conn.execute(select(L).where(L.c.uow_id == uow_id).order_by(L.c.id))
    return [TransitionRecord.from_row(r) for r in rows]


def get(conn: Connection, uow_id: uuid.UUID, *, for_update: bool = False) -> Row[Any] | None:
    stmt = select(U).where(U.c.id == uow_id)
    if for_update:
        stmt = dialects.of(conn).lock(stmt)
    return conn.execute(stmt).first()


LIVE = (
    UowStatus.PENDING.value,
    UowStatus.ACTIVE.value,
    UowStatus.FAILED.value,
    UowStatus.PAUSED.value,
    UowStatus.PENDING_PILOT_APPROVAL.value,
)


def counts_by_status(conn: Connection) -> dict[str, int]:
    """How many UOWs are waiting, leased, failed, paused or parked for a pilot (each live
    status, zeros included).

    Finished UOWs are not counted: their number grows with all history, and counting them
    would make every scrape cost more as time goes by; this reads only live rows (through
    the index that starts with ``status``).
    """
    counts = dict.fromkeys(LIVE, 0)
    rows = conn.execute(
        select(U.c.status, func.count()).where(U.c.status.in_(LIVE)).group_by(U.c.status)
    )
    counts.update({status: n for status, n in rows})
    return counts


def record(conn: Connection, uow_id: uuid.UUID) -> UowRecord | None:
    """The UOW as a record (reads only; ``get`` is the row the write paths lock)."""
    row = conn.execute(select(U).where(U.c.id == uow_id)).first()
    return UowRecord.from_row(row) if row is not None else None


def children(conn: Connection, parent_id: uuid.UUID) -> list[UowRecord]:
    """The UOWs decomposed from ``parent_id``, oldest first."""
    rows = conn.execute(select(U).where(U.c.parent_id == parent_id).order_by(U.c.created_at))
    return [UowRecord.from_row(r) for r in rows]


def children_with_attributes(
    conn: Connection, parent_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, dict[str, Any]]]:
    """Every child of ``parent_id`` (oldest first) with its status and the latest value of
    each of its attributes, in one statement (newest version per key via the unique index)."""
    newer = aliased(A)
    is_latest = and_(
        A.c.uow_id == U.c.id,
        ~exists().where(
            newer.c.uow_id == A.c.uow_id, newer.c.key == A.c.key, newer.c.version > A.c.version
        ),
    )
    rows = conn.execute(
        select(U.c.id, U.c.status, A.c.key, A.c.value)
        .select_from(U.outerjoin(A, is_latest))
        .where(U.c.parent_id == parent_id)
        .order_by(U.c.created_at, U.c.id)
    )
    found: dict[uuid.UUID, tuple[uuid.UUID, str, dict[str, Any]]] = {}
    for child_id, status, key, value in rows:
        _, _, attributes = found.setdefault(child_id, (child_id, status, {}))
        if key is not None:
            attributes[key] = value
    return list(found.values())


def next_candidate(
    conn: Connection,
    *,
    interaction_ids: Collection[uuid.UUID],
    statuses: Collection[str],
    cerberus: bool,
    skip: Collection[uuid.UUID] = (),
) -> UowState | None:
    """Lock and return the oldest eligible UOW, skipping rows other transactions hold.

    With ``cerberus`` only base UOWs whose every child has returned to the same
    interaction (or ended) qualify; otherwise parked parents are never handed out.
    """
    stmt = select(U).where(
        U.c.current_interaction_id.in_(interaction_ids), U.c.status.in_(statuses)
    )
    if cerberus:
        child = aliased(U)
        unfinished = exists().where(
            child.c.parent_id == U.c.id,
            child.c.status.not_in(TERMINAL),
            or_(
                child.c.status != UowStatus.PENDING.value,
                child.c.current_interaction_id != U.c.current_interaction_id,
            ),
        )
        stmt = stmt.where(U.c.parent_id.is_(None), ~unfinished)
    else:
        stmt = stmt.where(or_(U.c.child_count == 0, U.c.status != UowStatus.PENDING.value))
    if skip:
        stmt = stmt.where(U.c.id.not_in(skip))
    stmt = dialects.of(conn).lock_skipping(stmt.order_by(U.c.entered_at).limit(1))
    row = conn.execute(stmt).first()
    return UowState.from_row(row) if row is not None else None


def take_lease(
    conn: Connection,
    uow_id: uuid.UUID,
    *,
    lease_id: uuid.UUID,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    now: datetime,
) -> None:
    conn.execute(
        update(U)
        .where(U.c.id == uow_id)
        .values(
            status=UowStatus.ACTIVE.value,
            lease_id=lease_id,
            lease_holder_id=actor_id,
            current_role_id=role_id,
            leased_at=now,
            last_heartbeat=now,
            updated_at=now,
        )
    )


def heartbeat(
    conn: Connection,
    uow_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    lease_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Refresh the heartbeat if the caller holds the lease; False otherwise."""
    cond = [U.c.id == uow_id, U.c.status == UowStatus.ACTIVE.value, U.c.lease_holder_id == actor_id]
    if lease_id is not None:
        cond.append(U.c.lease_id == lease_id)
    result = conn.execute(update(U).where(*cond).values(last_heartbeat=now))
    return result.rowcount == 1


def move(
    conn: Connection,
    uow_id: uuid.UUID,
    *,
    status: UowStatus,
    interaction_id: uuid.UUID | None,
    now: datetime,
    failure: Mapping[str, Any] | None = None,
    logs: Sequence[LogEntry] = (),
    **extra: Any,
) -> None:
    """Put a UOW in a new interaction and status, releasing the lease, and log the move
    (in one statement where the database allows)."""
    values = sql.move_values(status.value, interaction_id, now, failure) | extra
    dialects.of(conn).move(conn, uow_id, values, logs)


def finalize_set(
    conn: Connection, base_id: uuid.UUID, *, actor_id: uuid.UUID, role_id: uuid.UUID, now: datetime
) -> int:
    """Mark a base UOW and its unfinished children COMPLETED, with a log row each."""
    members = or_(U.c.id == base_id, and_(U.c.parent_id == base_id, U.c.status.not_in(TERMINAL)))
    return _end(conn, members, UowStatus.COMPLETED, "finalize", actor_id, role_id, now)


def abandon_children(
    conn: Connection, parent_id: uuid.UUID, *, actor_id: uuid.UUID | None, now: datetime
) -> None:
    """End every unfinished child of an abandoned base, with a log row each."""
    members = and_(U.c.parent_id == parent_id, U.c.status.not_in(TERMINAL))
    _end(conn, members, UowStatus.ABANDONED, "abandon", actor_id, None, now)


def _end(
    conn: Connection,
    members: Any,
    status: UowStatus,
    event: str,
    actor_id: uuid.UUID | None,
    role_id: uuid.UUID | None,
    now: datetime,
) -> int:
    """Set-based: log, then move every UOW matching ``members`` to a terminal status."""
    conn.execute(
        insert(L).from_select(
            ["uow_id", "instance_id", "actor_id", "role_id", "event", "from_interaction_id",
             "from_status", "to_status", "at"],
            select(
                U.c.id, U.c.instance_id, literal(actor_id, U.c.lease_holder_id.type),
                literal(role_id, U.c.current_role_id.type), literal(event),
                U.c.current_interaction_id, U.c.status, literal(status.value),
                literal(now, U.c.updated_at.type),
            ).where(members),
        )
    )  # fmt: skip
    result = conn.execute(
        update(U).where(members).values(status=status.value, updated_at=now, **_CLEAR_LEASE)
    )
    return result.rowcount


def refresh_finished_children(conn: Connection, parent_ids: Iterable[uuid.UUID]) -> None:
    """Recount, for each parent, the children that have returned to it or ended."""
    ids = list({p for p in parent_ids if p is not None})
    if not ids:
        return
    child = aliased(U)
    finished = (
        select(func.count())
        .where(
            child.c.parent_id == U.c.id,
            or_(
                child.c.status.in_(TERMINAL),
                and_(
                    child.c.status == UowStatus.PENDING.value,
                    child.c.current_interaction_id == U.c.current_interaction_id,
                ),
            ),
        )
        .scalar_subquery()
    )
    conn.execute(update(U).where(U.c.id.in_(ids)).values(finished_child_count=finished))


def held_by(conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID) -> bool:
    """Whether ``actor_id`` holds the UOW's lease now or ever checked it out (by the log)."""
    holds = select(U.c.id).where(U.c.id == uow_id, U.c.lease_holder_id == actor_id)
    checked_out = select(L.c.id).where(
        L.c.uow_id == uow_id, L.c.actor_id == actor_id, L.c.event == "checkout"
    )
    return bool(conn.execute(select(exists(holds) | exists(checked_out))).scalar())
