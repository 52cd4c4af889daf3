"""Listing units of work, newest-updated first, one keyset page at a time.

Two indexes serve every filter: ``(status, updated_at, id)`` and
``(instance_id, status, updated_at, id)``. Without a status filter the query is one
index range per status (the statuses are a closed set of five), merged and cut to the
page, so no listing sorts the table. Statuses that cannot match are left out first: only
ACTIVE UOWs have a lease holder, and an interaction's statuses are probed on the
checkout index ``(current_interaction_id, status, ...)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, exists, literal, select, tuple_, union_all

from ..domain.enums import UowStatus
from .pagination import Keyset
from .tables import Interaction, Uow, table

U = table(Uow)
X = table(Interaction)

# The listing's order, for its cursors (the SQL of a page is ``page`` below: a merge of one
# index range per status).
UOWS = Keyset("uows", (U.c.updated_at, U.c.id), descending=True)

COLUMNS = (
    U.c.id,
    U.c.instance_id,
    U.c.parent_id,
    U.c.status,
    U.c.current_interaction_id,
    U.c.current_role_id,
    U.c.lease_holder_id,
    U.c.created_at,
    U.c.updated_at,
    U.c.entered_at,
    U.c.reclaim_count,
    U.c.failure,
)


@dataclass(frozen=True)
class Position:
    """Where a page ended: the (updated_at, id) of its last row."""

    updated_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class UowFilter:
    instance_id: uuid.UUID | None = None
    status: UowStatus | None = None
    role_id: uuid.UUID | None = None
    interaction_id: uuid.UUID | None = None
    lease_holder_id: uuid.UUID | None = None
    updated_before: datetime | None = None
    updated_after: datetime | None = None


def instance_of_interaction(conn: Connection, interaction_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = conn.execute(
        select(X.c.instance_id).where(X.c.id == interaction_id)
    ).scalar()
    return found


def _branch(f: UowFilter, status: UowStatus, after: Position | None, limit: int) -> Select[Any]:
    query = select(*COLUMNS).where(U.c.status == status.value)
    equal = {
        U.c.instance_id: f.instance_id,
        U.c.current_role_id: f.role_id,
        U.c.current_interaction_id: f.interaction_id,
        U.c.lease_holder_id: f.lease_holder_id,
    }
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if f.updated_before is not None:
        query = query.where(U.c.updated_at < f.updated_before)
    if f.updated_after is not None:
        query = query.where(U.c.updated_at > f.updated_after)
    if after is not None:
        # A row value compares (updated_at, id) as one key: an index range on both databases.
        query = query.where(
            tuple_(U.c.updated_at, U.c.id)
            < tuple_(literal(after.updated_at, U.c.updated_at.type), literal(after.id, U.c.id.type))
        )
    return query.order_by(U.c.updated_at.desc(), U.c.id.desc()).limit(limit)


def _statuses(conn: Connection, f: UowFilter) -> list[UowStatus]:
    """The statuses worth an index range: an empty range still costs a scan of the rest."""
    statuses = [f.status] if f.status is not None else list(UowStatus)
    if f.lease_holder_id is not None:
        statuses = [s for s in statuses if s is UowStatus.ACTIVE]
    if f.interaction_id is not None and len(statuses) > 1:
        probes = [
            exists().where(U.c.current_interaction_id == f.interaction_id, U.c.status == s.value)
            for s in statuses
        ]
        found = conn.execute(select(*probes)).one()
        statuses = [s for s, present in zip(statuses, found, strict=True) if present]
    return statuses


def page(conn: Connection, f: UowFilter, after: Position | None, limit: int) -> list[Row[Any]]:
    """Up to ``limit`` UOWs matching ``f`` after ``after``, newest-updated first."""
    statuses = _statuses(conn, f)
    if not statuses:
        return []
    if len(statuses) == 1:
        return list(conn.execute(_branch(f, statuses[0], after, limit)))
    branches = [select(_branch(f, s, after, limit).subquery()) for s in statuses]
    merged = union_all(*branches).subquery()
    query = (
        select(*(merged.c[c.name] for c in COLUMNS))
        .order_by(merged.c.updated_at.desc(), merged.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))
