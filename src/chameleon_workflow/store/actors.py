"""Actors and their role assignments."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, insert, select

from ..domain.enums import ActorType
from .pagination import Key, Keyset, Page
from .records import ActorRecord
from .tables import Actor, RoleAssignment, table

AC = table(Actor)
RA = table(RoleAssignment)
# Oldest first; the id breaks ties between actors created in the same instant.
ACTORS = Keyset("actors", (AC.c.created_at, AC.c.id))


def create(conn: Connection, *, name: str, actor_type: ActorType, now: datetime) -> uuid.UUID:
    actor_id = uuid.uuid4()
    conn.execute(
        insert(AC).values(id=actor_id, name=name, actor_type=actor_type.value, created_at=now)
    )
    return actor_id


def get(conn: Connection, actor_id: uuid.UUID) -> ActorRecord | None:
    row = conn.execute(select(AC).where(AC.c.id == actor_id)).first()
    return ActorRecord.from_row(row) if row is not None else None


def page(conn: Connection, after: Key | None, limit: int) -> Page[ActorRecord]:
    return ACTORS.fetch(conn, select(AC), after, limit, ActorRecord.from_row)


def assign(conn: Connection, actor_id: uuid.UUID, role_id: uuid.UUID, now: datetime) -> bool:
    """Assign the role; False when the assignment already existed."""
    if is_assigned(conn, actor_id, role_id):
        return False
    conn.execute(insert(RA).values(actor_id=actor_id, role_id=role_id, assigned_at=now))
    return True


def is_assigned(conn: Connection, actor_id: uuid.UUID, role_id: uuid.UUID) -> bool:
    stmt = select(RA.c.actor_id).where(RA.c.actor_id == actor_id, RA.c.role_id == role_id)
    return conn.execute(stmt).first() is not None


def roles_of(conn: Connection, actor_id: uuid.UUID) -> list[uuid.UUID]:
    return list(conn.scalars(select(RA.c.role_id).where(RA.c.actor_id == actor_id)))
