"""SQLite: every write runs inside one ``BEGIN IMMEDIATE`` transaction, which holds the
database's single write lock from its first statement, so the steps of an operation are
separate statements that no other writer can interleave with."""

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
    Select,
    String,
    Table,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .. import actors, memory, pause, uows
from ..maintenance.batch import ORIGIN_PATH, BatchMove, Moved
from ..sql import LOG, MEMORIES, UOWS
from ..types import UtcDateTime
from ..work import Claimed, ClaimRequest, FencedWrite, HeldRead, LogEntry, RoutedSubmit
from . import portable
from .base import SqlDialect

_UUID_PARTS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


class SqliteDialect(SqlDialect):
    name = "sqlite"
    single_statement_writes = False

    def lock(self, stmt: Select[Any]) -> Select[Any]:
        return stmt  # the transaction already holds the write lock (BEGIN IMMEDIATE)

    def lock_skipping(self, stmt: Select[Any]) -> Select[Any]:
        return stmt

    # --- leased work -------------------------------------------------------------------

    def notify(self, conn: Connection, channel: str, message: str) -> None:
        """Nothing to do: SQLite has no notifications; listeners poll."""

    def serialize(self, conn: Connection, name: str) -> None:
        """Nothing to do: a writing transaction holds the database's write lock (BEGIN
        IMMEDIATE), so writers already take turns."""

    def claim(self, conn: Connection, request: ClaimRequest) -> Claimed | None:
        if not actors.is_assigned(conn, request.actor_id, request.role_id):
            return None
        row = uows.next_candidate(
            conn,
            interaction_ids=request.interaction_ids,
            statuses=request.statuses,
            cerberus=request.cerberus,
        )
        return self.lease(conn, row, request) if row is not None else None

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
        rows = memory.for_injection(conn, role_id, actor_id)
        if not rows:
            return {}, []
        effective: dict[str, Any] = {}
        for r in rows:  # globals come first, so a personal entry replaces its global twin
            effective[r.key] = r
        picked = sorted(effective.items())
        context = {key: r.value for key, r in picked}
        injected = [{"memory_id": str(r.id), "version": r.version, "key": k} for k, r in picked]
        memory.touch(conn, role_id, actor_id, now, touch_before)
        memory.record_injection(
            conn, uow_id=uow_id, actor_id=actor_id, role_id=role_id, entries=injected, now=now
        )
        return context, injected

    def read_held(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        *,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        lock: bool,
    ) -> HeldRead:
        row = conn.execute(select(UOWS).where(UOWS.c.id == uow_id)).first()
        return portable.read_held(conn, uow_id, actor_id=actor_id, lease_id=lease_id, row=row)

    def submit_routed(self, conn: Connection, submit: RoutedSubmit) -> FencedWrite:
        return portable.submit_routed(conn, submit)

    def move(
        self,
        conn: Connection,
        uow_id: uuid.UUID,
        values: Mapping[str, Any],
        logs: Sequence[LogEntry],
    ) -> None:
        conn.execute(update(UOWS).where(UOWS.c.id == uow_id).values(**values))
        uows.log(conn, logs)

    # --- maintenance batches -----------------------------------------------------------

    def move_batch(self, conn: Connection, b: BatchMove) -> Moved:
        # The write lock taken by BEGIN IMMEDIATE is held from the UPDATE to the log INSERT,
        # which reads exactly the rows the UPDATE returned (by rowid). RETURNING sees only
        # the new row, so the interaction a UOW came from travels in its failure record.
        rowid: ColumnElement[int] = literal_column("uows.rowid")
        picked = select(rowid).where(b.condition).limit(b.limit)
        rows = conn.execute(
            update(UOWS)
            .where(rowid.in_(picked), b.condition)
            .values(dict(b.values))
            .returning(rowid, UOWS.c.parent_id, UOWS.c.status)
        ).all()
        if rows:
            ids = literal(json.dumps([r[0] for r in rows]), String())
            moved = select(func.json_each(ids).table_valued("value").alias("moved").c.value)
            origin = func.replace(self.json_path_text(UOWS.c.failure, ORIGIN_PATH), "-", "")
            conn.execute(portable.batch_log(UOWS, b, origin, where=rowid.in_(moved)))
        return Moved.of(rows)

    def locked_ids(
        self, id_column: Any, condition: Any, order_by: Sequence[Any], limit: int
    ) -> Any:
        return select(id_column).where(condition).order_by(*order_by).limit(limit)

    def delete_memories(self, conn: Connection, cond: ColumnElement[bool], limit: int) -> int:
        rowid: ColumnElement[int] = literal_column("memories.rowid")
        picked = select(rowid).where(cond).limit(limit)
        return conn.execute(delete(MEMORIES).where(rowid.in_(picked), cond)).rowcount

    def archive_memories(
        self, conn: Connection, cond: ColumnElement[bool], limit: int, now: datetime, reason: str
    ) -> int:
        rowid: ColumnElement[int] = literal_column("memories.rowid")
        picked = select(rowid).where(cond).order_by(rowid).limit(limit)
        return portable.archive_memories(conn, rowid.in_(picked), cond, now, reason)

    # --- the kill switch -----------------------------------------------------------------

    def pause_uows(self, conn: Connection, move: pause.PauseMove) -> int:
        # Log, then update, the same rows: BEGIN IMMEDIATE holds the write lock throughout.
        values = pause.log_values(
            UOWS,
            event=pause.PAUSE_EVENT,
            from_status=UOWS.c.status,
            to_status=literal(pause.PAUSED, String()),
            at=move.now,
            details=move.details(conn, UOWS.c.lease_id),
        )
        rows = select(*values.values()).where(move.pausable)
        conn.execute(insert(LOG).from_select(list(values), rows))
        stmt = update(UOWS).where(move.pausable).values(pause.pause_values(move, UOWS.c.status))
        return conn.execute(stmt).rowcount

    def resume_uows(self, conn: Connection, move: pause.PauseMove) -> int:
        values = pause.log_values(
            UOWS,
            event=pause.RESUME_EVENT,
            from_status=literal(pause.PAUSED, String()),
            to_status=pause.restored(UOWS.c.paused_from),
            at=move.now,
            details=move.details(conn),
        )
        rows = select(*values.values()).where(move.paused)
        conn.execute(insert(LOG).from_select(list(values), rows))
        return conn.execute(
            update(UOWS).where(move.paused).values(pause.resume_values(move))
        ).rowcount

    # --- expressions -------------------------------------------------------------------

    def json_object(self, pairs: Mapping[str, Any]) -> Any:
        return func.json_object(*portable.json_pairs(pairs))

    def uuid_text(self, column: Any) -> Any:
        # SQLite stores a UUID as 32 hex digits.
        parts = [func.substr(column, start, length) for start, length in _UUID_PARTS]
        text: Any = parts[0]
        for part in parts[1:]:
            text = text + "-" + part
        return text

    def time_text(self, column: Any) -> Any:
        return func.replace(column, " ", "T") + "+00:00"

    def seconds_between(self, now: datetime, column: Any) -> Any:
        bound = literal(now, UtcDateTime())
        return cast(func.round((func.julianday(bound) - func.julianday(column)) * 86400), Integer())

    def json_path_text(self, column: Any, path: Sequence[str]) -> Any:
        return func.json_extract(column, "$." + ".".join(path))

    def uuid_list(self, ids: Sequence[uuid.UUID | str]) -> Any:
        return [str(i) for i in ids]

    def list_contains(self, column: Any, value: uuid.UUID) -> ColumnElement[bool]:
        each = func.json_each(column).table_valued("value").alias("e")
        return select(1).select_from(each).where(each.c.value == str(value)).exists()

    def insert_ignoring_conflict(self, t: Table, values: Mapping[str, Any]) -> Insert:
        return sqlite_insert(t).values(**values).on_conflict_do_nothing()
