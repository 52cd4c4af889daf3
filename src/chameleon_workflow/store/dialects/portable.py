"""Steps both databases run the same way (SQLAlchemy Core), shared by the dialects."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, insert, literal, null, select, update

from .. import memory, outcomes, uows
from ..maintenance.batch import BatchMove
from ..sql import ACTIVE, ATTRIBUTES, LOG, MEMORIES, UOWS, move_values
from ..work import (
    Claimed,
    ClaimRequest,
    FencedWrite,
    HeldRead,
    LogEntry,
    LostLease,
    Recorded,
    RoutedSubmit,
    UowState,
    latest_lease,
)


def checkout_log(uow: UowState, request: ClaimRequest) -> LogEntry:
    """The log row of a checkout (``uow`` as it was before the lease)."""
    return LogEntry(
        uow_id=uow.id,
        instance_id=uow.instance_id,
        actor_id=request.actor_id,
        role_id=request.role_id,
        event="checkout",
        from_interaction_id=uow.current_interaction_id,
        to_interaction_id=uow.current_interaction_id,
        from_status=uow.status,
        to_status=ACTIVE,
        at=request.now,
        details={"lease_id": str(request.lease_id)},
    )


def leased(uow: UowState, request: ClaimRequest) -> UowState:
    """``uow`` as it stands once leased by ``request``."""
    return replace(
        uow,
        status=ACTIVE,
        lease_id=request.lease_id,
        lease_holder_id=request.actor_id,
        current_role_id=request.role_id,
    )


def take_lease(conn: Connection, uow: UowState, request: ClaimRequest) -> dict[str, Any]:
    """Lease ``uow`` and log the checkout; its latest attributes (key -> (version, value))."""
    uows.take_lease(
        conn,
        uow.id,
        lease_id=request.lease_id,
        actor_id=request.actor_id,
        role_id=request.role_id,
        now=request.now,
    )
    uows.log(conn, [checkout_log(uow, request)])
    return uows.latest_attributes(conn, uow.id)


def claimed(
    uow: UowState,
    request: ClaimRequest,
    latest: dict[str, tuple[int, Any]],
    memory: tuple[dict[str, Any], list[dict[str, Any]]],
) -> Claimed:
    return Claimed(
        uow=leased(uow, request),
        previous_status=uow.status,
        latest=latest,
        context=memory[0],
        injected=memory[1],
    )


def read_held(
    conn: Connection,
    uow_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    lease_id: uuid.UUID | None,
    row: Any,
) -> HeldRead:
    """From the UOW's row (None: unknown): its attributes if held, else the lease's story."""
    if row is None:
        return HeldRead(None, {}, LostLease(exists=False, status=None))
    uow = UowState.from_row(row)
    if uow.held_by(actor_id, lease_id):
        return HeldRead(uow, uows.latest_attributes(conn, uow_id))
    return HeldRead(None, {}, lost_story(conn, uow, actor_id, lease_id))


def lost_story(
    conn: Connection, uow: UowState, actor_id: uuid.UUID, lease_id: uuid.UUID | None
) -> LostLease:
    """The UOW's log and the recorded use of the lease in question (``lease_id``, or the
    actor's latest checkout of the UOW)."""
    events = outcomes.lease_events(conn, uow.id)
    lease = lease_id or latest_lease(events, actor_id)
    recorded = outcomes.get(conn, lease) if lease is not None else None
    return LostLease(exists=True, status=uow.status, events=events, recorded=recorded)


def submit_routed(conn: Connection, s: RoutedSubmit) -> FencedWrite:
    """The fenced update, then (if it matched) the versions, log rows and outcome; inside
    the caller's transaction."""
    fence = (
        UOWS.c.id == s.uow.id,
        UOWS.c.status == ACTIVE,
        UOWS.c.lease_id == s.uow.lease_id,
        UOWS.c.lease_holder_id == s.actor_id,
    )
    moved = conn.execute(
        update(UOWS)
        .where(*fence)
        .values(**move_values(s.status, s.interaction_id, s.recorded.at, s.failure))
    ).rowcount
    if moved != 1:
        row = conn.execute(select(UOWS).where(UOWS.c.id == s.uow.id)).first()
        held = read_held(conn, s.uow.id, actor_id=s.actor_id, lease_id=s.uow.lease_id, row=row)
        return FencedWrite(applied=False, lost=held.lost)
    if s.versions:
        conn.execute(insert(ATTRIBUTES), s.versions)
    conn.execute(insert(LOG), [e.values() for e in s.logs])
    record_outcome(conn, s.recorded)
    return FencedWrite(applied=True)


def record_outcome(conn: Connection, recorded: Recorded) -> None:
    outcomes.record(conn, recorded)


def json_pairs(pairs: dict[str, Any] | Any) -> list[Any]:
    """``name, expression, ...`` arguments for an SQL JSON-object builder."""
    args: list[Any] = []
    for key, value in pairs.items():
        args += [literal(key, String()), value]
    return args


def batch_log(source: Any, batch: BatchMove, origin: Any, where: Any = None) -> Any:
    """``INSERT INTO interaction_log ... SELECT`` of one log row per UOW a batch moved, from
    ``source`` (the moved rows: ``uows`` or a ``RETURNING`` CTE); ``origin`` is the SQL for
    the interaction each came from; ``where`` picks the moved rows from ``source``. Columns
    not named here keep their default."""
    values = {
        "uow_id": source.c.id,
        "instance_id": source.c.instance_id,
        "actor_id": null(),
        "role_id": source.c.current_role_id,
        "event": literal(batch.event, String()),
        "from_interaction_id": origin,
        "to_interaction_id": source.c.current_interaction_id,
        "from_status": literal(batch.from_status.value, String()),
        "to_status": source.c.status,
        "at": literal(batch.now, LOG.c.at.type),
        "details": source.c.failure,
    }
    rows = select(*values.values())
    if where is not None:
        rows = rows.where(where)
    return insert(LOG).from_select(list(values), rows)


DECAY = "engine (memory decay)"


def archive_memories(
    conn: Connection,
    picked: ColumnElement[bool],
    cond: ColumnElement[bool],
    now: datetime,
    reason: str,
) -> int:
    """Archive the picked memories that still match ``cond`` (decay's archive mode): they
    stay in the table, out of the checkout's index, and each is audited."""
    archived = list(
        conn.scalars(
            update(MEMORIES)
            .where(picked, cond, memory.LIVE, memory.NOT_HELD)
            .values(archived_at=now, archived_by=DECAY, archive_reason=reason)
            .returning(MEMORIES.c.id)
        )
    )
    memory.record_events(conn, archived, memory.ARCHIVE, reason, DECAY, now)
    return len(archived)
