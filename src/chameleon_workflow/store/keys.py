"""API keys: rows of ``api_keys`` as :class:`KeyRecord`s."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from .pagination import Key, Keyset, Page
from .tables import ApiKey, table

K = table(ApiKey)
# Oldest first; the id breaks ties. Keys are few: no index beyond the primary key.
KEYS = Keyset("api-keys", (K.c.created_at, K.c.id))


@dataclass(frozen=True)
class KeyRecord:
    id: uuid.UUID
    name: str
    scope: str
    actor_id: uuid.UUID | None
    secret_hash: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> KeyRecord:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})


def insert_key(conn: Connection, key: KeyRecord) -> None:
    conn.execute(insert(K).values(**{f.name: getattr(key, f.name) for f in fields(key)}))


def get(conn: Connection, key_id: uuid.UUID) -> KeyRecord | None:
    row = conn.execute(select(K).where(K.c.id == key_id)).first()
    return KeyRecord.from_row(row) if row is not None else None


def list_keys(conn: Connection) -> list[KeyRecord]:
    rows = conn.execute(select(K).order_by(K.c.created_at, K.c.id))
    return [KeyRecord.from_row(r) for r in rows]


def page_keys(conn: Connection, after: Key | None, limit: int) -> Page[KeyRecord]:
    return KEYS.fetch(conn, select(K), after, limit, KeyRecord.from_row)


def revoke(conn: Connection, key_id: uuid.UUID, now: datetime) -> bool:
    """Revoke the key if it is not already; False when there was nothing to revoke."""
    done = conn.execute(
        update(K).where(K.c.id == key_id, K.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return done.rowcount == 1


def touch(conn: Connection, key_id: uuid.UUID, now: datetime, before: datetime) -> None:
    """Stamp the key's last use, at most once per interval (``before``: the last allowed)."""
    conn.execute(
        update(K)
        .where(K.c.id == key_id, (K.c.last_used_at.is_(None)) | (K.c.last_used_at < before))
        .values(last_used_at=now)
    )
