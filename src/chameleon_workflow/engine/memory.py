"""Explicit memory writes and the read side of role memory."""

from __future__ import annotations

import uuid
from typing import Any

from ..domain.enums import MemoryScope, RoleType
from ..domain.errors import InvalidInput, UnknownActor, UnknownMemory, UnknownUow
from ..store import actors, memory, uows
from ..store.database import Database
from .clock import Clock, utcnow
from .topology import TopologyCache


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
    ) -> dict[str, Any]:
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
            row = memory.upsert(
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
        return dict(row._mapping)

    def list_for_role(
        self,
        role_id: uuid.UUID,
        *,
        scope: MemoryScope | None = None,
        actor_id: uuid.UUID | None = None,
        include_toxic: bool = True,
        limit: int = 500,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Browse a role's memories; browsing does not count as access."""
        self.topologies.of_role(role_id)
        with self.db.connect() as conn:
            rows = memory.list_for_role(
                conn,
                role_id,
                scope=scope,
                actor_id=actor_id,
                include_toxic=include_toxic,
                limit=limit,
                offset=offset,
            )
        return [dict(r._mapping) for r in rows]

    def get(self, memory_id: uuid.UUID) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = memory.get(conn, memory_id)
        if row is None:
            raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return dict(row._mapping)

    def influence(self, memory_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every checkout the memory was injected into (UOW, actor, role, version, time)."""
        with self.db.connect() as conn:
            rows = memory.uows_influenced_by(conn, memory_id)
            if not rows and memory.get(conn, memory_id) is None:
                raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return [
            {
                "uow_id": r.uow_id,
                "actor_id": r.actor_id,
                "role_id": r.role_id,
                "injected_at": r.injected_at,
                "version": memory.injected_version(r, memory_id),
            }
            for r in rows
        ]

    def injected_into(self, uow_id: uuid.UUID) -> list[dict[str, Any]]:
        """The memories injected into each checkout of the UOW."""
        with self.db.connect() as conn:
            if uows.get(conn, uow_id) is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            rows = memory.injections_of_uow(conn, uow_id)
        return [
            {
                "uow_id": r.uow_id,
                "actor_id": r.actor_id,
                "role_id": r.role_id,
                "injected_at": r.injected_at,
                "entries": [
                    {"memory_id": str(i), "version": v}
                    for i, v in zip(r.memory_ids, r.versions, strict=True)
                ],
            }
            for r in rows
        ]
