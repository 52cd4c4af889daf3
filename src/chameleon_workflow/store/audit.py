"""The admin audit trail: rows of ``admin_audit``, appended and read, never changed.

Pages are keyset pages on ``(at, id)``, newest first; the indexes ``(at, id)``,
``(action, at, id)`` and ``(key_id, at, id)`` serve every filter without a sort.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, literal, select, tuple_

from .tables import AdminAudit, table

A = table(AdminAudit)


@dataclass(frozen=True)
class AuditRow:
    """One recorded action (``id`` is None until it is inserted)."""

    id: int | None
    at: datetime
    key_id: uuid.UUID | None
    key_name: str
    scope: str | None
    action: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    request_id: str | None
    outcome: str

    @classmethod
    def from_row(cls, row: Any) -> AuditRow:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    key_id: uuid.UUID | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def append(conn: Connection, entry: AuditRow) -> int:
    """Insert one row; its new id."""
    values = {f.name: getattr(entry, f.name) for f in fields(entry) if f.name != "id"}
    new_id: int = conn.execute(insert(A).values(**values).returning(A.c.id)).scalar_one()
    return new_id


def page(
    conn: Connection, f: AuditFilter, after: tuple[datetime, int] | None, limit: int
) -> list[AuditRow]:
    """Up to ``limit`` rows matching ``f`` strictly after ``after``, newest first."""
    query = select(A)
    if f.action is not None:
        query = query.where(A.c.action == f.action)
    if f.key_id is not None:
        query = query.where(A.c.key_id == f.key_id)
    if f.since is not None:
        query = query.where(A.c.at >= f.since)
    if f.until is not None:
        query = query.where(A.c.at < f.until)
    if after is not None:
        at, row_id = after
        query = query.where(
            tuple_(A.c.at, A.c.id) < tuple_(literal(at, A.c.at.type), literal(row_id, A.c.id.type))
        )
    query = query.order_by(A.c.at.desc(), A.c.id.desc()).limit(limit)
    return [AuditRow.from_row(r) for r in conn.execute(query)]
