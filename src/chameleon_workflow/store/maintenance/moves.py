"""Moving a batch of UOWs in one conditional statement, with a log row for each.

PostgreSQL: one statement (a ``FOR UPDATE SKIP LOCKED`` pick, the conditional ``UPDATE``
and the ``INSERT`` of the log rows as data-modifying CTEs). SQLite: the conditional
``UPDATE ... RETURNING`` then one bulk ``INSERT`` of the log rows, both inside the
transaction's ``BEGIN IMMEDIATE`` write lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    update,
)

from ...domain.enums import UowStatus
from ..tables import Instance, InteractionLog, Uow
from ..types import UtcDateTime

U = Uow.__table__
L = InteractionLog.__table__
I = Instance.__table__  # noqa: E741

LOG_COLUMNS = [
    "uow_id", "instance_id", "actor_id", "role_id", "event", "from_interaction_id",
    "to_interaction_id", "from_status", "to_status", "at", "details",
]  # fmt: skip


@dataclass(frozen=True)
class BatchMove:
    """One batch to move: which UOWs (``condition`` on ``uows``) and what they become."""

    condition: ColumnElement[bool]
    values: Mapping[str, Any]
    event: str
    from_status: UowStatus
    now: datetime
    limit: int


@dataclass(frozen=True)
class Moved:
    count: int
    parent_ids: list[uuid.UUID]


def move_batch(conn: Connection, batch: BatchMove) -> Moved:
    """Move at most ``batch.limit`` UOWs still matching the condition; log each move."""
    if conn.dialect.name == "postgresql":
        return _move_batch_pg(conn, batch)
    return _move_batch_returning(conn, batch)


def _move_batch_pg(conn: Connection, b: BatchMove) -> Moved:
    picked = (
        select(U.c.id, U.c.current_interaction_id.label("from_ix"))
        .where(b.condition)
        .limit(b.limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")  # evaluated once: the rows locked are the rows moved
    )
    moved = (
        update(U)
        .where(U.c.id == picked.c.id, b.condition)
        .values(dict(b.values))
        .returning(
            U.c.id, U.c.instance_id, U.c.parent_id, U.c.current_role_id, U.c.status,
            U.c.current_interaction_id, U.c.failure, picked.c.from_ix,
        )  # fmt: skip
        .cte("moved")
    )
    logged = insert(L).from_select(
        LOG_COLUMNS,
        select(
            moved.c.id, moved.c.instance_id, null(), moved.c.current_role_id,
            literal(b.event, String()), moved.c.from_ix, moved.c.current_interaction_id,
            literal(b.from_status.value, String()), moved.c.status,
            literal(b.now, L.c.at.type), moved.c.failure,
        ),  # fmt: skip
    )
    rows = conn.execute(select(moved.c.parent_id).add_cte(logged.cte("logged"))).all()
    return Moved(len(rows), sorted({r.parent_id for r in rows if r.parent_id is not None}))


def _move_batch_returning(conn: Connection, b: BatchMove) -> Moved:
    # SQLite: the write lock taken by BEGIN IMMEDIATE is held from the UPDATE to the log
    # INSERT, and the INSERT reads exactly the rows the UPDATE returned (by rowid).
    # RETURNING sees only the new row, so the old interaction travels in the failure
    # record the statement writes (``from_interaction_id``).
    rowid = literal_column("uows.rowid")
    picked = select(rowid).where(b.condition).limit(b.limit)
    rows = conn.execute(
        update(U)
        .where(rowid.in_(picked), b.condition)
        .values(dict(b.values))
        .returning(rowid, U.c.parent_id)
    ).all()
    if rows:
        ids = literal(json.dumps([r[0] for r in rows]), String())
        moved = select(func.json_each(ids).table_valued("value").alias("moved").c.value)
        origin = func.replace(func.json_extract(U.c.failure, "$.from_interaction_id"), "-", "")
        conn.execute(
            insert(L).from_select(
                LOG_COLUMNS,
                select(
                    U.c.id, U.c.instance_id, null(), U.c.current_role_id,
                    literal(b.event, String()), origin, U.c.current_interaction_id,
                    literal(b.from_status.value, String()), U.c.status,
                    literal(b.now, L.c.at.type), U.c.failure,
                ).where(rowid.in_(moved)),
            ),  # fmt: skip
        )
    return Moved(len(rows), sorted({r.parent_id for r in rows if r.parent_id is not None}))


# --- portable SQL pieces ------------------------------------------------------------------


def chronos_of_instance() -> Any:
    """The Chronos interaction of each UOW's instance (correlated to ``uows``)."""
    return select(I.c.chronos_interaction_id).where(I.c.id == U.c.instance_id).scalar_subquery()


def before(column: Any, cutoffs: Mapping[int, datetime], seconds: Any) -> ColumnElement[bool]:
    """``column`` is older than ``now - seconds``, given the cutoff of every possible value.

    Cutoffs are bound parameters computed by the caller, so no date arithmetic happens in
    SQL and a single possible value keeps the comparison index-friendly.
    """
    if len(cutoffs) == 1:
        return column < next(iter(cutoffs.values()))  # type: ignore[no-any-return]
    by_value = case(
        *((seconds == s, literal(c, UtcDateTime())) for s, c in cutoffs.items())
    )
    latest = max(cutoffs.values())
    return (column < latest) & (column < by_value)  # type: ignore[no-any-return]


def json_object(conn: Connection, pairs: Mapping[str, Any]) -> Any:
    """A JSON object built in SQL from ``name -> SQL expression`` pairs."""
    args: list[Any] = []
    for key, value in pairs.items():
        args += [literal(key, String()), value]
    if conn.dialect.name == "postgresql":
        return func.jsonb_build_object(*args)
    return func.json_object(*args)


def uuid_text(conn: Connection, column: Any) -> Any:
    """A UUID column as its canonical hyphenated text (SQLite stores 32 hex digits)."""
    if conn.dialect.name == "postgresql":
        return cast(column, String())
    parts = [func.substr(column, start, length) for start, length in _UUID_PARTS]
    text = parts[0]
    for part in parts[1:]:
        text = text + "-" + part
    return text


_UUID_PARTS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def time_text(conn: Connection, column: Any) -> Any:
    """A UTC timestamp column as ISO-8601 text."""
    if conn.dialect.name == "postgresql":
        return func.to_char(
            func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )
    return func.replace(column, " ", "T") + "+00:00"


def seconds_between(conn: Connection, now: datetime, column: Any) -> Any:
    """Whole seconds from ``column`` to ``now``."""
    bound = literal(now, UtcDateTime())
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", bound - column), Integer())
    return cast((func.julianday(bound) - func.julianday(column)) * 86400, Integer())
