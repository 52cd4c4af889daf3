"""What the store's reads hand to the engine: small frozen records, not driver rows.

Each record reads exactly the fields it declares (``from_row``), so a column added to a
table reaches no caller until a record names it.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any, Self

from sqlalchemy import Row

AnyRow = Row[*tuple[Any, ...]]


class Record:
    """A frozen dataclass built from the like-named columns of a row; other columns are left."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: AnyRow) -> Self:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{name: getattr(row, name) for name in names})


@dataclasses.dataclass(frozen=True, slots=True)
class ActorRecord(Record):
    id: uuid.UUID
    name: str
    actor_type: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class UowRecord(Record):
    """A unit of work as stored: where it is, who holds it, and why it failed."""

    id: uuid.UUID
    instance_id: uuid.UUID
    parent_id: uuid.UUID | None
    status: str
    current_interaction_id: uuid.UUID | None
    current_role_id: uuid.UUID | None
    child_count: int
    finished_child_count: int
    created_at: datetime
    updated_at: datetime
    entered_at: datetime
    lease_id: uuid.UUID | None
    lease_holder_id: uuid.UUID | None
    leased_at: datetime | None
    last_heartbeat: datetime | None
    reclaim_count: int
    failure: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class AttributeVersion(Record):
    """One version of one attribute of a UOW."""

    key: str
    version: int
    value: Any
    actor_id: uuid.UUID | None
    reasoning: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TransitionRecord(Record):
    """One row of the interaction log as read back: a transition of a UOW."""

    id: int
    uow_id: uuid.UUID | None
    instance_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    event: str
    from_interaction_id: uuid.UUID | None
    to_interaction_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    at: datetime
    details: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryEntry(Record):
    """One role memory (its current version)."""

    id: uuid.UUID
    instance_id: uuid.UUID
    role_id: uuid.UUID
    scope: str
    actor_id: uuid.UUID | None
    key: str
    value: Any
    version: int
    confidence: float
    is_toxic: bool
    toxic_reason: str | None
    toxic_by: str | None
    toxic_at: datetime | None
    source_uow_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None
    reasoning: str | None
    written_by: str | None
    source_actor_id: uuid.UUID | None
    archived_at: datetime | None
    archived_by: str | None
    archive_reason: str | None
    held_at: datetime | None
    held_by: str | None
    hold_reason: str | None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def held(self) -> bool:
        return self.held_at is not None


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryVersionRecord(Record):
    """One version of a memory, with who wrote it, when, why and from which UOW."""

    memory_id: uuid.UUID
    version: int
    value: Any
    confidence: float
    reasoning: str | None
    written_by: str | None
    source_uow_id: uuid.UUID | None
    source_actor_id: uuid.UUID | None
    written_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class InjectionRecord(Record):
    """The memories (ids and versions, in parallel) injected into one checkout."""

    id: int
    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: datetime
    memory_ids: tuple[uuid.UUID, ...]
    versions: tuple[int, ...]
    keys: tuple[str | None, ...]  # None each: written before keys were recorded

    @classmethod
    def from_row(cls, row: AnyRow) -> Self:
        # SQLite keeps the ids as JSON text, PostgreSQL as a uuid[]: both read as UUIDs.
        return cls(
            id=row.id,
            uow_id=row.uow_id,
            actor_id=row.actor_id,
            role_id=row.role_id,
            injected_at=row.injected_at,
            memory_ids=tuple(uuid.UUID(str(i)) for i in row.memory_ids),
            versions=tuple(int(v) for v in row.versions),
            keys=tuple(row.keys) if row.keys is not None else (None,) * len(row.versions),
        )

    def version_of(self, memory_id: uuid.UUID) -> int:
        """The version of ``memory_id`` this checkout was given (ValueError if none)."""
        return self.versions[self.memory_ids.index(memory_id)]

    def key_of(self, memory_id: uuid.UUID) -> str | None:
        """The key ``memory_id`` was injected under (None: an injection from before 0008)."""
        return self.keys[self.memory_ids.index(memory_id)]


@dataclasses.dataclass(frozen=True, slots=True)
class ZombieCandidate(Record):
    """An ACTIVE UOW a zombie sweep would reclaim now, with the timeout and policy it meets."""

    id: uuid.UUID
    instance_id: uuid.UUID
    parent_id: uuid.UUID | None
    current_role_id: uuid.UUID | None
    current_interaction_id: uuid.UUID | None
    lease_holder_id: uuid.UUID | None
    leased_at: datetime | None
    last_heartbeat: datetime | None
    reclaim_count: int
    timeout_seconds: int
    policy: str


@dataclasses.dataclass(frozen=True, slots=True)
class MaintenanceRunRecord(Record):
    """One recorded run of a background service."""

    id: int
    job: str
    trigger: str
    parameters: dict[str, Any]
    counts: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    replica: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class LeaderLeaseRecord(Record):
    """Which replica may run a scheduled job, until when."""

    job: str
    holder: str
    expires_at: datetime
