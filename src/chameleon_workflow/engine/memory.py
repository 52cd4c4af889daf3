"""Role memory as the API sees it: writes with provenance, versions, the lifecycle (archive,
restore, legal hold, playbook reset) and the audit of influence."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.enums import MemoryScope, RoleType
from ..domain.errors import (
    InvalidInput,
    InvalidState,
    MemoryHeld,
    UnknownActor,
    UnknownMemory,
    UnknownUow,
)
from ..domain.memory import check_key, check_reason, check_value
from ..store import actors, memory, uows
from ..store.database import Database
from ..store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Key, Page, every
from ..store.records import MemoryEntry, MemoryVersionRecord
from .clock import Clock, utcnow
from .topology import TopologyCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Influence:
    """One checkout a memory was injected into, and the version it was given."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: datetime
    version: int
    key: str | None  # None: an injection recorded before keys were


@dataclass(frozen=True)
class InjectedMemory:
    memory_id: uuid.UUID
    version: int
    key: str | None


@dataclass(frozen=True)
class Injection:
    """The memories (each at the version given) injected into one checkout of a UOW."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: datetime
    entries: list[InjectedMemory]


@dataclass(frozen=True)
class PlaybookReset:
    """What a playbook reset did: the memories archived, and those a legal hold kept."""

    role_id: uuid.UUID
    actor_id: uuid.UUID
    archived: list[uuid.UUID]
    held: list[uuid.UUID]


class MemoryService:
    def __init__(self, db: Database, topologies: TopologyCache, clock: Clock = utcnow) -> None:
        self.db = db
        self.topologies = topologies
        self.clock = clock

    # --- writes -------------------------------------------------------------------------

    def write(
        self,
        role_id: uuid.UUID,
        *,
        key: str,
        value: Any,
        scope: MemoryScope,
        reasoning: str | None = None,
        by: str = "engine",
        actor_id: uuid.UUID | None = None,
        confidence: float | None = None,
        source_uow_id: uuid.UUID | None = None,
        source_actor_id: uuid.UUID | None = None,
    ) -> MemoryEntry:
        """Create a global or personal memory of the role, or a new version of it, recording
        who wrote it (``by``), why and from which UOW (the HTTP API requires ``reasoning``)."""
        check_key(key)
        check_value(value)
        check_reason(reasoning, required=False)
        topo = self.topologies.of_role(role_id)
        if topo.role_type(role_id) is RoleType.ALPHA:
            raise InvalidInput("ALPHA roles do not check out work, so they have no memory")
        if scope is MemoryScope.ACTOR and actor_id is None:
            raise InvalidInput("a personal (ACTOR) memory needs actor_id", field="actor_id")
        if scope is MemoryScope.GLOBAL and actor_id is not None:
            raise InvalidInput(
                "a GLOBAL memory belongs to no actor; drop actor_id", field="actor_id"
            )
        provenance = memory.Provenance(
            written_by=by,
            reasoning=reasoning,
            source_uow_id=source_uow_id,
            source_actor_id=source_actor_id,
        )
        with self.db.begin() as conn:
            if actor_id is not None and actors.get(conn, actor_id) is None:
                raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
            if source_uow_id is not None and uows.record(conn, source_uow_id) is None:
                raise UnknownUow(f"UOW {source_uow_id} does not exist", id=str(source_uow_id))
            return memory.upsert(
                conn,
                instance_id=topo.id,
                role_id=role_id,
                scope=scope,
                actor_id=actor_id,
                key=key,
                value=value,
                confidence=confidence,
                provenance=provenance,
                now=self.clock(),
            )

    # --- lifecycle ----------------------------------------------------------------------

    def archive(self, memory_id: uuid.UUID, reason: str, *, by: str) -> MemoryEntry:
        """Archive one memory (never a hard delete): 409 if it is held or already archived."""
        check_reason(reason, "reason")
        with self.db.begin() as conn:
            entry = self._locked(conn, memory_id)
            if entry.held:
                raise MemoryHeld(
                    f"memory {memory_id} is under legal hold ({entry.hold_reason!r}, by "
                    f"{entry.held_by}); release the hold before archiving it",
                    memory_id=str(memory_id),
                    held_by=entry.held_by,
                )
            if entry.archived:
                raise InvalidState(
                    f"memory {memory_id} is already archived (by {entry.archived_by}: "
                    f"{entry.archive_reason!r}); restore it with POST /memories/{memory_id}"
                    "/restore",
                    memory_id=str(memory_id),
                )
            memory.archive(conn, [memory_id], reason=reason, by=by, now=self.clock())
            done = self._locked(conn, memory_id)
        logger.info("memory archived", extra={"memory_id": str(memory_id), "by": by})
        return done

    def restore(self, memory_id: uuid.UUID, reason: str, *, by: str) -> MemoryEntry:
        """Bring an archived memory back (its decay clock restarts); 409 if not archived."""
        check_reason(reason, "reason")
        with self.db.begin() as conn:
            entry = self._locked(conn, memory_id)
            twin = memory.live_twin(conn, entry) if entry.archived else None
            if twin is not None:
                raise InvalidState(
                    f"memory {twin} holds key {entry.key!r} for this role, scope and actor "
                    f"now; archive it first to restore {memory_id}, or write the value as a "
                    "new version of it",
                    memory_id=str(memory_id),
                    live_memory_id=str(twin),
                )
            if not memory.restore(conn, memory_id, reason=reason, by=by, now=self.clock()):
                raise InvalidState(
                    f"memory {memory_id} is not archived, so there is nothing to restore",
                    memory_id=str(entry.id),
                )
            done = self._locked(conn, memory_id)
        logger.info("memory restored", extra={"memory_id": str(memory_id), "by": by})
        return done

    def hold(self, memory_id: uuid.UUID, reason: str, *, by: str) -> MemoryEntry:
        """Put a memory under legal hold; 409 if it already is."""
        return self._set_hold(memory_id, reason, by, held=True)

    def release(self, memory_id: uuid.UUID, reason: str, *, by: str) -> MemoryEntry:
        """Release a memory's legal hold; 409 if it is not held."""
        return self._set_hold(memory_id, reason, by, held=False)

    def _set_hold(self, memory_id: uuid.UUID, reason: str, by: str, *, held: bool) -> MemoryEntry:
        check_reason(reason, "reason")
        with self.db.begin() as conn:
            entry = self._locked(conn, memory_id)
            now = self.clock()
            if not memory.set_hold(conn, memory_id, held=held, reason=reason, by=by, now=now):
                state = (
                    f"is already under legal hold (since {entry.held_at:%Y-%m-%dT%H:%M:%SZ}, "
                    f"by {entry.held_by})"
                    if held
                    else "is not under legal hold"
                )
                raise InvalidState(f"memory {memory_id} {state}", memory_id=str(memory_id))
            done = self._locked(conn, memory_id)
        action = "memory held" if held else "memory hold released"
        logger.info(action, extra={"memory_id": str(memory_id), "by": by})
        return done

    def reset_playbook(
        self, role_id: uuid.UUID, actor_id: uuid.UUID, reason: str, *, by: str
    ) -> PlaybookReset:
        """Archive the actor's personal playbook for the role (held entries stay); the actor
        then sees the role's global blueprint again."""
        check_reason(reason, "reason")
        self.topologies.of_role(role_id)
        with self.db.begin() as conn:
            if actors.get(conn, actor_id) is None:
                raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
            entries = memory.playbook(conn, role_id, actor_id)
            held = [e.id for e in entries if e.held_at is not None]
            free = [e.id for e in entries if e.held_at is None]
            archived = memory.archive(conn, free, reason=reason, by=by, now=self.clock())
        logger.info(
            "playbook reset",
            extra={"role_id": str(role_id), "actor_id": str(actor_id), "by": by,
                   "archived": len(archived), "held": len(held)},
        )  # fmt: skip
        return PlaybookReset(role_id, actor_id, archived, held)

    def _locked(self, conn: Any, memory_id: uuid.UUID) -> MemoryEntry:
        entry = memory.get(conn, memory_id, lock=True)
        if entry is None:
            raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return entry

    # --- reads --------------------------------------------------------------------------

    def is_assigned(self, actor_id: uuid.UUID, role_id: uuid.UUID) -> bool:
        with self.db.connect() as conn:
            return actors.is_assigned(conn, actor_id, role_id)

    def page_for_role(
        self,
        role_id: uuid.UUID,
        *,
        scope: MemoryScope | None = None,
        actor_id: uuid.UUID | None = None,
        visible_to: uuid.UUID | None = None,
        include_toxic: bool = True,
        archived: bool = False,
        after: Key | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[MemoryEntry]:
        """A page of a role's live (or archived) memories by scope and key; browsing does
        not count as access."""
        self.topologies.of_role(role_id)
        with self.db.connect() as conn:
            return memory.list_for_role(
                conn,
                role_id,
                scope=scope,
                actor_id=actor_id,
                visible_to=visible_to,
                include_toxic=include_toxic,
                archived=archived,
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

    def versions_page(
        self, memory_id: uuid.UUID, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[MemoryVersionRecord]:
        """A page of the memory's versions, oldest first, each with its provenance."""
        with self.db.connect() as conn:
            if memory.get(conn, memory_id) is None:
                raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
            return memory.versions(conn, memory_id, after, limit)

    def versions(self, memory_id: uuid.UUID) -> list[MemoryVersionRecord]:
        return every(lambda a: self.versions_page(memory_id, after=a, limit=MAX_LIMIT))

    def influence_page(
        self, memory_id: uuid.UUID, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[Influence]:
        """Checkouts the memory was injected into (UOW, actor, role, key, version, time),
        oldest first; still answered after the memory is archived or deleted."""
        with self.db.connect() as conn:
            rows = memory.uows_influenced_by(conn, memory_id, after, limit)
            if not rows.items and not memory.ever_existed(conn, memory_id):
                raise UnknownMemory(f"memory {memory_id} does not exist", id=str(memory_id))
        return rows.map(
            lambda r: Influence(
                r.uow_id,
                r.actor_id,
                r.role_id,
                r.injected_at,
                r.version_of(memory_id),
                r.key_of(memory_id),
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
                [
                    InjectedMemory(i, v, k)
                    for i, v, k in zip(r.memory_ids, r.versions, r.keys, strict=True)
                ],
            )
        )

    def injected_into(self, uow_id: uuid.UUID) -> list[Injection]:
        """The memories injected into every checkout of the UOW."""
        return every(lambda a: self.injection_page(uow_id, after=a, limit=MAX_LIMIT))
