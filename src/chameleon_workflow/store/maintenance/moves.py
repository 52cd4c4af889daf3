"""Moving a batch of UOWs in one conditional statement, with a log row for each, and the
portable SQL pieces the zombie and stale-token sweeps build their conditions from.

How a batch is moved is the dialect's (``store.dialects``): on PostgreSQL one statement
(ids picked and locked with ``FOR UPDATE SKIP LOCKED``, the conditional ``UPDATE`` and the
log ``INSERT`` from its ``RETURNING``); on SQLite the conditional ``UPDATE ... RETURNING``
then one ``INSERT ... SELECT`` of the log rows, under the transaction's write lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    case,
    literal,
    null,
    select,
)

from ...domain.failures import FIELDS, SQL_FILLED, FailureRecord
from .. import dialects
from ..sql import LOG_COLUMNS
from ..tables import Instance, InteractionLog, Uow
from ..types import UtcDateTime
from .batch import ORIGIN_PATH, BatchMove, Moved

__all__ = ["LOG_COLUMNS", "ORIGIN_PATH", "BatchMove", "Moved", "move_batch"]

U = typing_cast(Table, Uow.__table__)
L = typing_cast(Table, InteractionLog.__table__)
I = typing_cast(Table, Instance.__table__)  # noqa: E741


def move_batch(conn: Connection, batch: BatchMove) -> Moved:
    """Move at most ``batch.limit`` UOWs still matching the condition; log each move."""
    return dialects.of(conn).move_batch(conn, batch)


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
    return dialects.of(conn).json_object(pairs)


def uuid_text(conn: Connection, column: Any) -> Any:
    """A UUID column as its canonical hyphenated text."""
    return dialects.of(conn).uuid_text(column)


def time_text(conn: Connection, column: Any) -> Any:
    """A UTC timestamp column as ISO-8601 text."""
    return dialects.of(conn).time_text(column)


def seconds_between(conn: Connection, now: datetime, column: Any) -> Any:
    """Seconds from ``column`` to ``now``, rounded to a whole number."""
    return dialects.of(conn).seconds_between(now, column)
