"""Explicit memory writes and the read side of role memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.enums import MemoryScope, RoleType
from ..domain.errors import InvalidInput, UnknownActor, UnknownMemory, UnknownUow
from ..store import actors, memory, uows
from ..store.database import Database
from ..store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Key, Page, every
from ..store.records import MemoryEntry
from .clock import Clock, utcnow
from .topology import TopologyCache


@dataclass(frozen=True)
class Influence:
    """One checkout a memory was injected into, and the version it was given."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: datetime
    version: int


@dataclass(frozen=True)
class InjectedMemory:
    memory_id: uuid.UUID
    version: int


@dataclass(frozen=True)
class Injection:
    """The memories (each at the version given) injected into one checkout of a UOW."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: datetime
    entries: list[InjectedMemory]


class MemoryService:
    def __init__(self, db: Database, topologies: TopologyCache, clock: Clock = utcnow) -> None:
        self.db = db
        self.topologies = topologies
        self.clock = clock

    def write(
        self,
        role_id: uuid.UUID,
        *,
        key: str,
        value: Any,
        scope: MemoryScope,
        actor_id: uuid.UUID | None = None,
        confidence: float | None = None,
    ) -> MemoryEntry:
        """Create a global or personal memory of the role, or a new version of it."""
        topo = self.topologies.of_role(role_id)
        if topo.role_type(role_id) is RoleType.ALPHA:
            raise InvalidInput("ALPHA roles do not check out work, so they have no memory")
        if scope is MemoryScope.ACTOR and actor_id is None:
            raise InvalidInput("a personal (ACTOR) memory needs actor_id")
        if scope is MemoryScope.GLOBAL and actor_id is not None:
            raise InvalidInput("a GLOBAL memory belongs to no actor; drop actor_id")
        with self.db.begin() as conn:
            if actor_id is not None and actors.get(conn, actor_id) is None:
                raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
            return memory.upsert(
                conn,
                instance_id=topo.id,
                role_id=role_id,
                scope=scope,
                actor_id=actor_id,
                key=key,
                value=value,
                confidence=confidence,
                now=self.clock(),
            )

    def page_for_role(
        self,
        role_id: uuid.UUID,
        *,
        scope: MemoryScope | None = None,
        actor_id: uuid.UUID | None = None,
        include_toxic: bool = True,
        after: Key | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[MemoryEntry]:
        """A page of a role's memories by scope and key; browsing does not count as access."""
        self.topologies.of_role(role_id)
        with self.db.connect() as conn:
            return memory.list_for_role(
                conn,
                role_id,
                scope=scope,
                actor_id=actor_id,
                include_toxic=include_toxic,
                after=after,
                limit=limit,
            )

    def list_for_role(self, role_id: uuid.UUID, **filters: Any) -> list[MemoryEntry]:
        """Every memory of the role (the filters of ``page_for_role``)."""
        return every(lambda a: self.page_for_role(role_id, after=a, limit=MAX_LIMIT, **filters))

    def get(self, memory_id: uuid.UUID) -> MemoryEntry:
        with self.db.connect() as conn:
            entry = memory.get(conn, memory_id)
        if entry is None:
            raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return entry

    def influence_page(
        self, memory_id: uuid.UUID, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[Influence]:
        """Checkouts the memory was injected into (UOW, actor, role, version, time), oldest
        first."""
        with self.db.connect() as conn:
            rows = memory.uows_influenced_by(conn, memory_id, after, limit)
            if not rows.items and memory.get(conn, memory_id) is None:
                raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return rows.map(
            lambda r: Influence(
                r.uow_id, r.actor_id, r.role_id, r.injected_at, r.version_of(memory_id)
            )
        )

    def influence(self, memory_id: uuid.UUID) -> list[Influence]:
        """Every checkout the memory was injected into."""
        return every(lambda a: self.influence_page(memory_id, after=a, limit=MAX_LIMIT))

    def injection_page(
        self, uow_id: uuid.UUID, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[Injection]:
        """The memories injected into each checkout of the UOW, oldest checkout first."""
        with self.db.connect() as conn:
            if uows.record(conn, uow_id) is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            rows = memory.injections_of_uow(conn, uow_id, after, limit)
        return rows.map(
            lambda r: Injection(
                r.uow_id,
                r.actor_id,
                r.role_id,
                r.injected_at,
                [InjectedMemory(i, v) for i, v in zip(r.memory_ids, r.versions, strict=True)],
            )
        )

    def injected_into(self, uow_id: uuid.UUID) -> list[Injection]:
        """The memories injected into every checkout of the UOW."""
        return every(lambda a: self.injection_page(uow_id, after=a, limit=MAX_LIMIT))
