"""Moving a batch of UOWs in one conditional statement, with a log row for each.

PostgreSQL: one statement — the ids picked and locked with ``FOR UPDATE SKIP LOCKED``, the
``UPDATE`` that re-checks the condition, and the ``INSERT`` of the log rows from its
``RETURNING`` (a data-modifying CTE). SQLite: the conditional ``UPDATE ... RETURNING`` then
one ``INSERT ... SELECT`` of the log rows for exactly the rows returned, both under the
transaction's ``BEGIN IMMEDIATE`` write lock. ``RETURNING`` sees only the new row, so the
interaction a UOW came from travels in the failure record the statement writes.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    Table,
    Uuid,
    any_,
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
from sqlalchemy.dialects.postgresql import ARRAY

from ...domain.enums import UowStatus
from ...domain.failures import FIELDS, SQL_FILLED, FailureRecord
from ..tables import Instance, InteractionLog, Uow
from ..types import UtcDateTime

U = typing_cast(Table, Uow.__table__)
L = typing_cast(Table, InteractionLog.__table__)
I = typing_cast(Table, Instance.__table__)  # noqa: E741

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
    order_by: tuple[Any, ...] = ()  # the order of an index the condition can use


@dataclass(frozen=True)
class Moved:
    count: int
    parent_ids: list[uuid.UUID]
    by_status: dict[str, int]

    @classmethod
    def of(cls, rows: Sequence[Any]) -> Moved:
        """From rows of (parent_id, status), one per UOW moved."""
        parents = sorted({r.parent_id for r in rows if r.parent_id is not None})
        return cls(len(rows), parents, dict(Counter(r.status for r in rows)))


def move_batch(conn: Connection, batch: BatchMove) -> Moved:
    """Move at most ``batch.limit`` UOWs still matching the condition; log each move."""
    if conn.dialect.name == "postgresql":
        return _move_batch_pg(conn, batch)
    return _move_batch_returning(conn, batch)


def locked_ids(id_column: Any, condition: Any, order_by: Sequence[Any], limit: int) -> Any:
    """PostgreSQL: an array of up to ``limit`` matching ids, locked, skipping locked rows.

    As an uncorrelated scalar subquery it runs once (an InitPlan), so the rows it locked
    are the rows the enclosing statement gets, and finds through the primary key.
    """
    locked = (
        select(id_column)
        .where(condition)
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .subquery("locked")
    )
    return cast(select(func.array_agg(locked.c[id_column.name])).scalar_subquery(), ARRAY(Uuid()))


def _move_batch_pg(conn: Connection, b: BatchMove) -> Moved:
    picked = locked_ids(U.c.id, b.condition, b.order_by, b.limit)
    moved = (
        update(U)
        .where(U.c.id == any_(picked), b.condition)
        .values(dict(b.values))
        .returning(
            U.c.id,
            U.c.instance_id,
            U.c.parent_id,
            U.c.current_role_id,
            U.c.status,
            U.c.current_interaction_id,
            U.c.failure,
        )
        .cte("moved")
    )
    origin = cast(moved.c.failure[ORIGIN_PATH].as_string(), Uuid())
    logged = insert(L).from_select(
        LOG_COLUMNS,
        select(
            moved.c.id,
            moved.c.instance_id,
            null(),
            moved.c.current_role_id,
            literal(b.event, String()),
            origin,
            moved.c.current_interaction_id,
            literal(b.from_status.value, String()),
            moved.c.status,
            literal(b.now, L.c.at.type),
            moved.c.failure,
        ),
    )
    rows = conn.execute(
        select(moved.c.parent_id, moved.c.status).add_cte(logged.cte("logged"))
    ).all()
    return Moved.of(rows)


def _move_batch_returning(conn: Connection, b: BatchMove) -> Moved:
    # The write lock taken by BEGIN IMMEDIATE is held from the UPDATE to the log INSERT,
    # which reads exactly the rows the UPDATE returned (by rowid).
    rowid: ColumnElement[int] = literal_column("uows.rowid")
    picked = select(rowid).where(b.condition).limit(b.limit)
    rows = conn.execute(
        update(U)
        .where(rowid.in_(picked), b.condition)
        .values(dict(b.values))
        .returning(rowid, U.c.parent_id, U.c.status)
    ).all()
    if rows:
        ids = literal(json.dumps([r[0] for r in rows]), String())
        moved = select(func.json_each(ids).table_valued("value").alias("moved").c.value)
        path = "$." + ".".join(ORIGIN_PATH)
        origin = func.replace(func.json_extract(U.c.failure, path), "-", "")
        conn.execute(
            insert(L).from_select(
                LOG_COLUMNS,
                select(
                    U.c.id,
                    U.c.instance_id,
                    null(),
                    U.c.current_role_id,
                    literal(b.event, String()),
                    origin,
                    U.c.current_interaction_id,
                    literal(b.from_status.value, String()),
                    U.c.status,
                    literal(b.now, L.c.at.type),
                    U.c.failure,
                ).where(rowid.in_(moved)),
            ),  # fmt: skip
        )
    return Moved.of(rows)


# Far enough back that no row is older, near enough for date arithmetic to stay in range
# (a workflow may set any positive number of seconds).
LONGEST_SECONDS = 1000 * 365 * 86_400


def cutoff(now: datetime, seconds: int) -> datetime:
    """``now`` minus ``seconds``, however large ``seconds`` is."""
    return now - timedelta(seconds=min(seconds, LONGEST_SECONDS))


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
        return column < next(iter(cutoffs.values()))
    by_value = case(*((seconds == s, literal(c, UtcDateTime())) for s, c in cutoffs.items()))
    latest = max(cutoffs.values())
    return (column < latest) & (column < by_value)


# Where the failure record a batch writes keeps the interaction the UOW came from.
ORIGIN_PATH = ("details", "from_interaction_id")


def failure_sql(conn: Connection, record: FailureRecord, **per_row: Any) -> Any:
    """``record`` as a JSON object built in SQL, for a batch that writes one per row.

    Every field comes from ``record.as_json()`` (the constant part: kind, reason, code,
    ``at``...) except those in ``per_row``, SQL expressions; ``details`` is given as a
    mapping of name -> SQL expression. The fields and detail names filled in SQL must be
    exactly those :data:`~chameleon_workflow.domain.failures.SQL_FILLED` lists for the kind.
    """
    filled, detail_names = SQL_FILLED[record.kind]
    details = per_row.get("details", {})
    if set(per_row) != filled or set(details) != detail_names:
        raise ValueError(
            f"a {record.kind} record fills {sorted(filled)} and details {sorted(detail_names)} "
            f"in SQL (got {sorted(per_row)} and {sorted(details)})"
        )
    constant = record.as_json()
    pairs: dict[str, Any] = {}
    for name in FIELDS:
        if name == "details":
            pairs[name] = json_object(conn, details)
        elif name in per_row:
            pairs[name] = per_row[name]
        else:
            value = constant[name]
            pairs[name] = null() if value is None else literal(value, String())
    return json_object(conn, pairs)


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
    text: Any = parts[0]
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
    """Seconds from ``column`` to ``now``, rounded to a whole number."""
    bound = literal(now, UtcDateTime())
    if conn.dialect.name == "postgresql":
        return cast(func.round(func.extract("epoch", bound - column)), Integer())
    return cast(func.round((func.julianday(bound) - func.julianday(column)) * 86400), Integer())
