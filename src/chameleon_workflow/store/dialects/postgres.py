"""PostgreSQL: each operation on leased work is one statement (data-modifying CTEs), so it
is its own transaction and costs one round trip; batches lock with ``SKIP LOCKED``.

The statements are in :mod:`.postgres_sql`, built once at import from the catalogue
(:mod:`..sql`): column lists, the log row's shape and status values are never spelled by hand.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Integer,
    Row,
    Select,
    String,
    Table,
    Uuid,
    any_,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .. import pause, uows
from ..maintenance.batch import ORIGIN_PATH, BatchMove, Moved
from ..sql import LOG, MEMORIES, UOWS, json_value
from ..types import UtcDateTime
from ..work import (
    Claimed,
    ClaimRequest,
    FencedWrite,
    HeldRead,
    LeaseEvent,
    LogEntry,
    LostLease,
    Recorded,
    RoutedSubmit,
    UowState,
)
from . import portable
from . import postgres_sql as statements
from .base import SqlDialect

# A transaction-scoped advisory lock on a name (64-bit hash; a collision only serializes).
_ADVISORY = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
# Delivered to listeners when the transaction commits (never if it rolls back).
_NOTIFY = text("SELECT pg_notify(:channel, :message)")


class PostgresDialect(SqlDialect):
    name = "postgresql"
    single_statement_writes = True

    def lock(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update()

    def lock_skipping(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update(skip_locked=True)

    # --- leased work -------------------------------------------------------------------

    notifies = True

    def notify(self, conn: Connection, channel: str, message: str) -> None:
        conn.execute(_NOTIFY, {"channel": channel, "message": message})

    def serialize(self, conn: Connection, name: str) -> None:
        conn.execute(_ADVISORY, {"name": name})

    def claim(self, conn: Connection, request: ClaimRequest) -> Claimed | None:
        row = conn.execute(
            statements.CLAIMS[request.cerberus],
            {
                "ix": list(request.interaction_ids),
                "st": list(request.statuses),
                "actor": request.actor_id,
                "role": request.role_id,
                "lease": request.lease_id,
                "now": request.now,
                "touch_before": request.touch_before,
                "details": json.dumps({"lease_id": str(request.lease_id)}),
            },
        ).first()
        if row is None:
            return None
        return Claimed(
            uow=UowState.from_row(row),
            previous_status=row.prev_status,
            latest=_versions(row.latest),
            context=dict(row.context or {}),
            injected=_injected(row),
        )

    def inject_memory(
        self,
        conn: Connection,
        *,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        role_id: uuid.UUID,
        now: datetime,
        touch_before: datetime,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        params = {"uow": uow_id, "actor": actor_id, "role": role_id, "now": now}
        row = conn.execute(statements.INJECT, params | {"touch_before": touch_before}).one()
        return dict(row.context or {}), _injected(row)

    def read_held(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        lock: bool,
    ) -> HeldRead:
        params = {"id": uow_id, "actor": actor_id, "lease": lease_id}
        row = conn.execute(statements.READ_HELD_STATEMENTS[lock], params).first()
        if row is None:
            return HeldRead(None, {}, LostLease(exists=False, status=None))
        if row.held:
            return HeldRead(UowState.from_row(row), _versions(row.latest))
        return HeldRead(None, {}, _lost(row))

    def submit_routed(self, conn: Connection, s: RoutedSubmit) -> FencedWrite:
        attrs = [{c: v[c] for c in statements.ATTRIBUTE_COLUMNS} for v in s.versions]
        r = s.recorded
        params = {
            "id": s.uow.id,
            "lease": s.uow.lease_id,
            "actor": s.actor_id,
            "reasoning": s.reasoning,
            "status": s.status,
            "interaction_id": s.interaction_id,
            "failure": json.dumps(s.failure) if s.failure is not None else None,
            "attrs": json.dumps(attrs),
            "logs": _log_json(s.logs),
            "operation": r.operation,
            "digest": r.request_hash,
            "outcome": json.dumps(r.outcome),
            "now": r.at,
        }
        row = conn.execute(statements.SUBMIT_ROUTED, params).one()
        if row.moved:
            return FencedWrite(applied=True)
        if row.id is None:
            return FencedWrite(applied=False, lost=LostLease(exists=False, status=None))
        if row.held:  # changed hands while the statement ran: the caller reads again
            return FencedWrite(applied=False)
        return FencedWrite(applied=False, lost=_lost(row))

    def move(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        values: Mapping[str, Any],
        logs: Sequence[LogEntry],
    ) -> None:
        if logs and set(values) == statements.MOVE_COLUMNS:
            failure = values["failure"]
            params = {
                "id": uow_id,
                "status": values["status"],
                "interaction_id": values["current_interaction_id"],
                "now": values["updated_at"],
                "failure": json.dumps(failure) if failure is not None else None,
                "logs": _log_json(logs),
            }
            conn.execute(statements.MOVE_AND_LOG, params)
            return
        conn.execute(update(UOWS).where(UOWS.c.id == uow_id).values(**values))
        uows.log(conn, logs)

    # --- maintenance batches -----------------------------------------------------------

    def move_batch(self, conn: Connection, b: BatchMove) -> Moved:
        # One statement: the ids picked and locked (SKIP LOCKED), the UPDATE that re-checks
        # the condition, and the INSERT of the log rows from its RETURNING. RETURNING sees
        # only the new row, so the interaction a UOW came from travels in its failure record.
        picked = self.locked_ids(UOWS.c.id, b.condition, b.order_by, b.limit)
        moved = (
            update(UOWS)
            .where(UOWS.c.id == any_(picked), b.condition)
            .values(dict(b.values))
            .returning(
                UOWS.c.id, UOWS.c.instance_id, UOWS.c.parent_id, UOWS.c.current_role_id,
                UOWS.c.status, UOWS.c.current_interaction_id, UOWS.c.failure,
            )
            .cte("moved")
        )  # fmt: skip
        origin = cast(moved.c.failure[ORIGIN_PATH].as_string(), Uuid())
        logged = portable.batch_log(moved, b, origin)
        rows = conn.execute(
            select(moved.c.parent_id, moved.c.status).add_cte(logged.cte("logged"))
        ).all()
        return Moved.of(rows)

    def locked_ids(
        self, id_column: Any, condition: Any, order_by: Sequence[Any], limit: int
    ) -> Any:
        # As an uncorrelated scalar subquery it runs once (an InitPlan), so the rows it
        # locked are the rows the enclosing statement gets, through the primary key.
        locked = (
            select(id_column)
            .where(condition)
            .order_by(*order_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .subquery("locked")
        )
        agg = select(func.array_agg(locked.c[id_column.name])).scalar_subquery()
        return cast(agg, ARRAY(Uuid()))

    def delete_memories(self, conn: Connection, cond: ColumnElement[bool], limit: int) -> int:
        picked = self._picked_memories(cond, limit)
        return conn.execute(delete(MEMORIES).where(MEMORIES.c.id == any_(picked), cond)).rowcount

    def archive_memories(
        self, conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime, reason: str
    ) -> int:
        picked = self._picked_memories(cond, limit)
        return portable.archive_memories(conn, MEMORIES.c.id == any_(picked), cond, now, reason)

    def _picked_memories(self, cond: ColumnElement[bool], limit: int) -> Any:
        # Rows a checkout is touching right now are skipped, so decay never waits on work.
        # In index order, each batch starts where the last one ended instead of scanning
        # past the dead rows that earlier batches left at the start of the table.
        return self.locked_ids(MEMORIES.c.id, cond, (MEMORIES.c.last_accessed_at,), limit)

    # --- the kill switch -----------------------------------------------------------------

    def pause_uows(self, conn: Connection, move: pause.PauseMove) -> int:
        # One statement: lock the instance's live rows no one else holds (SKIP LOCKED: a
        # running submit or checkout is never waited for, so no deadlock with a submit that
        # holds a child and wants its parent), update them joined to the locked rows (the
        # status and lease they had travel from there to RETURNING), and log each.
        old = (
            select(UOWS.c.id, UOWS.c.status, UOWS.c.lease_id)
            .where(move.pausable)
            .with_for_update(skip_locked=True, key_share=True)
            .cte("old")
        )
        moved = (
            update(UOWS)
            .where(UOWS.c.id == old.c.id)
            .values(pause.pause_values(move, old.c.status))
            .returning(
                UOWS.c.id, UOWS.c.instance_id, UOWS.c.current_role_id,
                UOWS.c.current_interaction_id, old.c.status.label("from_status"),
                old.c.lease_id.label("ended_lease"),
            )
            .cte("moved")
        )  # fmt: skip
        values = pause.log_values(
            moved,
            event=pause.PAUSE_EVENT,
            from_status=moved.c.from_status,
            to_status=literal(pause.PAUSED, String()),
            at=move.now,
            details=move.details(conn, moved.c.ended_lease),
        )
        logged = insert(LOG).from_select(list(values), select(*values.values()))
        count = select(func.count()).select_from(moved).add_cte(logged.cte("logged"))
        return int(conn.scalar(count) or 0)

    def resume_uows(self, conn: Connection, move: pause.PauseMove) -> int:
        moved = (
            update(UOWS)
            .where(move.paused)
            .values(pause.resume_values(move))
            .returning(
                UOWS.c.id, UOWS.c.instance_id, UOWS.c.current_role_id,
                UOWS.c.current_interaction_id, UOWS.c.status,
            )
            .cte("moved")
        )  # fmt: skip
        values = pause.log_values(
            moved,
            event=pause.RESUME_EVENT,
            from_status=literal(pause.PAUSED, String()),
            to_status=moved.c.status,
            at=move.now,
            details=move.details(conn),
        )
        logged = insert(LOG).from_select(list(values), select(*values.values()))
        count = select(func.count()).select_from(moved).add_cte(logged.cte("logged"))
        return int(conn.scalar(count) or 0)

    # --- expressions -------------------------------------------------------------------

    def json_object(self, pairs: Mapping[str, Any]) -> Any:
        return func.jsonb_build_object(*portable.json_pairs(pairs))

    def uuid_text(self, column: Any) -> Any:
        return cast(column, String())

    def time_text(self, column: Any) -> Any:
        return func.to_char(
            func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )

    def seconds_between(self, now: datetime, column: Any) -> Any:
        bound = literal(now, UtcDateTime())
        return cast(func.round(func.extract("epoch", bound - column)), Integer())

    def json_path_text(self, column: Any, path: Sequence[str]) -> Any:
        return column[tuple(path)].as_string()

    def uuid_list(self, ids: Sequence[uuid.UUID | str]) -> Any:
        return [uuid.UUID(str(i)) for i in ids]

    def list_contains(self, column: Any, value: uuid.UUID) -> ColumnElement[bool]:
        return type_coerce(column, ARRAY(Uuid())).contains([value])

    def insert_ignoring_conflict(self, t: Table, values: Mapping[str, Any]) -> Insert:
        return pg_insert(t).values(**values).on_conflict_do_nothing()


def _versions(agg: dict[str, list[Any]] | None) -> dict[str, tuple[int, Any]]:
    return {k: (int(v[0]), v[1]) for k, v in (agg or {}).items()}


def _injected(row: Row[Any]) -> list[dict[str, Any]]:
    triples = zip(row.ids or (), row.versions or (), row.keys or (), strict=True)
    return [{"memory_id": str(i), "version": v, "key": k} for i, v, k in triples]


def _log_json(logs: Sequence[LogEntry]) -> str:
    """Log rows as a JSON array for ``jsonb_to_recordset``."""
    return json.dumps([{k: json_value(v) for k, v in e.values().items()} for e in logs])


def _lost(row: Row[Any]) -> LostLease:
    """The lease's story from the ``events`` and ``recorded`` columns of ``row``."""
    events = [
        LeaseEvent(
            event=e,
            actor_id=uuid.UUID(actor) if actor else None,
            at=datetime.fromisoformat(at),
            details=details,
        )
        for e, actor, at, details in row.events or ()
    ]
    recorded = None
    if row.recorded:
        r = dict(row.recorded)
        recorded = Recorded(
            lease_id=uuid.UUID(r["lease_id"]),
            uow_id=uuid.UUID(r["uow_id"]),
            actor_id=uuid.UUID(r["actor_id"]),
            operation=r["operation"],
            request_hash=r["request_hash"],
            outcome=r["outcome"],
            at=datetime.fromisoformat(r["at"]),
        )
    return LostLease(exists=True, status=row.status, events=events, recorded=recorded)
