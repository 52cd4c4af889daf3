"""The toxic knowledge filter: marking memories that must never be injected again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.errors import InvalidInput, UnknownMemory
from ..store import memory
from ..store.database import Database
from ..store.maintenance import toxic as marks
from ..store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Key, Page, every
from .clock import Clock, utcnow

logger = logging.getLogger(__name__)

MAX_REASON = 2000
MAX_BY = 200
MAX_BULK = 1000


@dataclass(frozen=True)
class ToxicChange:
    """What a mark or unmark did to one memory."""

    memory_id: uuid.UUID
    found: bool
    changed: bool
    toxic: bool | None  # the state afterwards (None when the memory does not exist)


def _text(value: Any, name: str, maximum: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required and must not be blank", field=name)
    if len(value) > maximum:
        raise InvalidInput(f"{name} must be at most {maximum} characters", field=name)
    return value.strip()


class ToxicFilter:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def mark(self, memory_id: uuid.UUID, reason: str, *, by: str = "admin") -> ToxicChange:
        """Mark one memory toxic (a no-op if it already is); UnknownMemory if it does not exist."""
        return self._one(memory_id, reason, by, toxic=True)

    def unmark(self, memory_id: uuid.UUID, reason: str, *, by: str = "admin") -> ToxicChange:
        """Clear the toxic mark (a no-op if there is none); UnknownMemory if it does not exist."""
        return self._one(memory_id, reason, by, toxic=False)

    def mark_many(
        self, memory_ids: Sequence[uuid.UUID], reason: str, *, by: str = "admin"
    ) -> list[ToxicChange]:
        """Mark several memories in one transaction; one result per distinct id, in order."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids:
            raise InvalidInput("memory_ids must name at least one memory", field="memory_ids")
        if len(ids) > MAX_BULK:
            raise InvalidInput(f"memory_ids: at most {MAX_BULK} per request", field="memory_ids")
        return self._apply(ids, reason, by, toxic=True)

    def _one(self, memory_id: uuid.UUID, reason: str, by: str, *, toxic: bool) -> ToxicChange:
        (change,) = self._apply([memory_id], reason, by, toxic=toxic)
        if not change.found:
            raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return change

    def _apply(
        self, ids: list[uuid.UUID], reason: str, by: str, *, toxic: bool
    ) -> list[ToxicChange]:
        reason = _text(reason, "reason", MAX_REASON)
        by = _text(by, "by", MAX_BY)
        with self.db.begin() as conn:
            now = self.clock()
            changed = set(marks.set_toxic(conn, ids, toxic=toxic, reason=reason, by=by, now=now))
            found = marks.existing(conn, ids)
        for memory_id in changed:
            logger.info(
                "memory marked toxic" if toxic else "memory toxic mark cleared",
                extra={"memory_id": str(memory_id), "by": by, "reason": reason},
            )
        return [
            ToxicChange(m, m in found, m in changed, toxic if m in found else None) for m in ids
        ]

    def history_page(
        self, memory_id: uuid.UUID, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[dict[str, object]]:
        """A page of a memory's lifecycle trail (toxic marks, archive, restore, holds,
        purges), oldest first; 404 for a memory that never existed."""
        with self.db.connect() as conn:
            found = marks.events(conn, memory_id, after, limit)
            if not found.items and after is None and not memory.ever_existed(conn, memory_id):
                raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
            return found

    def history(self, memory_id: uuid.UUID) -> list[dict[str, object]]:
        """The whole audit trail of a memory's toxic marks."""
        return every(lambda a: self.history_page(memory_id, after=a, limit=MAX_LIMIT))
