"""The catalogue the hand-written statements are built from.

Table and column names come from the table definitions (:mod:`.tables`), status values
from the domain's enum, and the shape of a log row from the ``interaction_log`` table. A
raw statement never spells a column list or a status by hand, so adding a column to a
table (and to the record that carries it, e.g. :class:`.work.LogEntry`) reaches every
statement at once; ``tests/unit/test_sql_catalogue.py`` fails if they disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from ..domain.enums import UowStatus
from .tables import (
    InteractionLog,
    LeaseOutcome,
    Memory,
    MemoryInjection,
    RoleAssignment,
    Uow,
    UowAttribute,
    table,
)

UOWS = table(Uow)
ATTRIBUTES = table(UowAttribute)
LOG = table(InteractionLog)
OUTCOMES = table(LeaseOutcome)
MEMORIES = table(Memory)
INJECTIONS = table(MemoryInjection)
ASSIGNMENTS = table(RoleAssignment)


def data_columns(t: Table) -> tuple[str, ...]:
    """The columns a row is written with: all but a generated (autoincrement) key."""
    return tuple(c.name for c in t.columns if not (c.primary_key and c.autoincrement is True))


# The shape of a log row: what every statement that writes one fills.
LOG_COLUMNS = data_columns(LOG)

# Statuses as SQL literals (values of the enum, so a rename cannot miss a statement).
ACTIVE = UowStatus.ACTIVE.value
PENDING = UowStatus.PENDING.value
TERMINAL = (UowStatus.COMPLETED.value, UowStatus.ABANDONED.value)


def literal(value: str) -> str:
    """A string constant from the catalogue as an SQL literal."""
    if "'" in value:  # pragma: no cover - catalogue values are identifiers
        raise ValueError(f"not a catalogue constant: {value!r}")
    return f"'{value}'"


def literals(values: Iterable[str]) -> str:
    return ", ".join(literal(v) for v in values)


def column_list(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{n}" for n in names)


def pg_recordset(t: Table, names: Sequence[str]) -> str:
    """``name type, ...`` of ``t``'s columns, for PostgreSQL's ``jsonb_to_recordset``."""
    dialect = postgresql.dialect()
    return ", ".join(f"{n} {t.c[n].type.compile(dialect=dialect)}" for n in names)


def insert_select(t: Table, values: Mapping[str, str], source: str) -> str:
    """``INSERT INTO t (columns) SELECT expressions FROM source``, from a column -> SQL map.

    Columns of ``t`` not in ``values`` are left to their default; a name ``t`` does not
    have is a programming error caught when the module is imported.
    """
    unknown = set(values) - set(t.c.keys())
    if unknown:
        raise ValueError(f"{t.name} has no column {sorted(unknown)}")
    return (
        f"INSERT INTO {t.name} ({column_list(values)})\n"
        f"  SELECT {', '.join(values.values())} FROM {source}"
    )


def log_rows_from_json(param: str, guard: str | None = None) -> str:
    """Insert the log rows that travel as one JSON array in ``:param`` (PostgreSQL).

    With ``guard`` (a CTE name), rows are written only if that CTE returned a row.
    """
    source = f"jsonb_to_recordset(CAST(:{param} AS jsonb)) AS r({pg_recordset(LOG, LOG_COLUMNS)})"
    if guard is not None:
        source = f"{guard}, {source}"
    return insert_select(LOG, {c: f"r.{c}" for c in LOG_COLUMNS}, source)


def json_value(value: Any) -> Any:
    """A Python value as JSON for a statement parameter (UUIDs and times as text)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# What releasing a lease writes.
CLEAR_LEASE: dict[str, Any] = {
    "lease_id": None,
    "lease_holder_id": None,
    "leased_at": None,
    "last_heartbeat": None,
}


def move_values(
    status: str,
    interaction_id: uuid.UUID | None,
    now: datetime | None,
    failure: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The columns a move sets: where the UOW goes, its failure record, no lease."""
    return {
        **CLEAR_LEASE,
        "status": status,
        "current_interaction_id": interaction_id,
        "entered_at": now,
        "updated_at": now,
        "failure": dict(failure) if failure is not None else None,
    }
