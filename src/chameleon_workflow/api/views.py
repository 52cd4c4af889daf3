"""Response bodies of the read endpoints: actors, units of work and memories.

Each model names its fields and is built from an engine record field by field (``of``), so
a column added to a table changes no response until a model names it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from ..engine import instances, memory
from ..store import records


def _iso(value: datetime) -> str:
    return value.isoformat()


# ISO 8601 with the offset spelled ``+00:00`` (pydantic's own encoding would write ``Z``).
Time = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class View(BaseModel):
    """A response body: exactly the fields it declares (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")


class Actor(View):
    id: uuid.UUID
    name: str
    actor_type: str
    created_at: Time

    @classmethod
    def of(cls, a: records.ActorRecord) -> Self:
        return cls(id=a.id, name=a.name, actor_type=a.actor_type, created_at=a.created_at)


class ActorDetail(View):
    """An actor and the roles it is assigned to."""

    id: uuid.UUID
    name: str
    actor_type: str
    created_at: Time
    role_ids: list[uuid.UUID]

    @classmethod
    def of(cls, d: instances.ActorDetail) -> Self:
        a = d.actor
        return cls(
            id=a.id, name=a.name, actor_type=a.actor_type, created_at=a.created_at,
            role_ids=d.role_ids,
        )  # fmt: skip


class UowChild(View):
    id: uuid.UUID
    status: str


class Uow(View):
    """Where a UOW is and who holds it, its latest attributes and its children."""

    id: uuid.UUID
    instance_id: uuid.UUID
    parent_id: uuid.UUID | None
    status: str
    current_interaction_id: uuid.UUID | None
    current_role_id: uuid.UUID | None
    child_count: int
    finished_child_count: int
    created_at: Time
    updated_at: Time
    entered_at: Time
    lease_id: uuid.UUID | None = Field(
        default=None, description="Admin keys only: absent from every other key's answer."
    )
    lease_holder_id: uuid.UUID | None
    leased_at: Time | None
    last_heartbeat: Time | None
    reclaim_count: int
    failure: dict[str, Any] | None
    interaction: str | None
    role: str | None
    heartbeat_age_seconds: float | None
    attributes: dict[str, Any]
    children: list[UowChild]

    @classmethod
    def of(cls, d: instances.UowDetail) -> Self:
        u = d.uow
        return cls(
            id=u.id,
            instance_id=u.instance_id,
            parent_id=u.parent_id,
            status=u.status,
            current_interaction_id=u.current_interaction_id,
            current_role_id=u.current_role_id,
            child_count=u.child_count,
            finished_child_count=u.finished_child_count,
            created_at=u.created_at,
            updated_at=u.updated_at,
            entered_at=u.entered_at,
            lease_id=u.lease_id,
            lease_holder_id=u.lease_holder_id,
            leased_at=u.leased_at,
            last_heartbeat=u.last_heartbeat,
            reclaim_count=u.reclaim_count,
            failure=u.failure,
            interaction=d.interaction,
            role=d.role,
            heartbeat_age_seconds=d.heartbeat_age_seconds,
            attributes=d.attributes,
            children=[UowChild(id=k.id, status=k.status) for k in d.children],
        )


class AttributeVersion(View):
    key: str
    version: int
    value: Any
    actor_id: uuid.UUID | None
    reasoning: str | None
    created_at: Time

    @classmethod
    def of(cls, a: records.AttributeVersion) -> Self:
        return cls(
            key=a.key, version=a.version, value=a.value, actor_id=a.actor_id,
            reasoning=a.reasoning, created_at=a.created_at,
        )  # fmt: skip


class Transition(View):
    """One interaction-log row."""

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
    at: Time
    details: dict[str, Any] | None

    @classmethod
    def of(cls, e: records.TransitionRecord) -> Self:
        return cls(
            id=e.id, uow_id=e.uow_id, instance_id=e.instance_id, actor_id=e.actor_id,
            role_id=e.role_id, event=e.event, from_interaction_id=e.from_interaction_id,
            to_interaction_id=e.to_interaction_id, from_status=e.from_status,
            to_status=e.to_status, at=e.at, details=e.details,
        )  # fmt: skip

    def without_lease(self) -> Self:
        if not self.details or "lease_id" not in self.details:
            return self
        details = {k: v for k, v in self.details.items() if k != "lease_id"}
        return self.model_copy(update={"details": details or None})


class UowHistory(View):
    """Every attribute version and every transition of a UOW, oldest first."""

    uow_id: uuid.UUID
    attributes: list[AttributeVersion]
    transitions: list[Transition]

    @classmethod
    def of(cls, h: instances.UowHistory, *, show_lease: bool = True) -> Self:
        transitions = [Transition.of(e) for e in h.transitions]
        if not show_lease:  # a checkout's details name its lease: a secret
            transitions = [t.without_lease() for t in transitions]
        return cls(
            uow_id=h.uow_id,
            attributes=[AttributeVersion.of(a) for a in h.attributes],
            transitions=transitions,
        )


class Memory(View):
    """A role memory at its current version."""

    # This order (instance and role before id) is the one the API has always answered with.
    instance_id: uuid.UUID
    role_id: uuid.UUID
    id: uuid.UUID
    scope: str
    actor_id: uuid.UUID | None
    key: str
    value: Any
    version: int
    confidence: float
    is_toxic: bool
    toxic_reason: str | None
    toxic_by: str | None
    toxic_at: Time | None
    source_uow_id: uuid.UUID | None
    created_at: Time
    updated_at: Time
    last_accessed_at: Time | None = Field(
        description="The last injection into a checkout (reading through the API is not "
        "access); the decay clock."
    )
    reasoning: str | None = Field(description="Why the current version was written.")
    written_by: str | None = Field(description="Who wrote the current version.")
    source_actor_id: uuid.UUID | None
    archived: bool
    archived_at: Time | None
    archived_by: str | None
    archive_reason: str | None
    held: bool = Field(description="Under legal hold: nothing archives or deletes it.")
    held_at: Time | None
    held_by: str | None
    hold_reason: str | None

    @classmethod
    def of(cls, m: records.MemoryEntry) -> Self:
        return cls(
            instance_id=m.instance_id,
            role_id=m.role_id,
            id=m.id,
            scope=m.scope,
            actor_id=m.actor_id,
            key=m.key,
            value=m.value,
            version=m.version,
            confidence=m.confidence,
            is_toxic=m.is_toxic,
            toxic_reason=m.toxic_reason,
            toxic_by=m.toxic_by,
            toxic_at=m.toxic_at,
            source_uow_id=m.source_uow_id,
            created_at=m.created_at,
            updated_at=m.updated_at,
            last_accessed_at=m.last_accessed_at,
            reasoning=m.reasoning,
            written_by=m.written_by,
            source_actor_id=m.source_actor_id,
            archived=m.archived,
            archived_at=m.archived_at,
            archived_by=m.archived_by,
            archive_reason=m.archive_reason,
            held=m.held,
            held_at=m.held_at,
            held_by=m.held_by,
            hold_reason=m.hold_reason,
        )


class MemoryVersion(View):
    """One version of a memory and its provenance."""

    memory_id: uuid.UUID
    version: int
    value: Any
    confidence: float
    reasoning: str | None
    written_by: str | None
    source_uow_id: uuid.UUID | None
    source_actor_id: uuid.UUID | None
    written_at: Time

    @classmethod
    def of(cls, v: records.MemoryVersionRecord) -> Self:
        return cls(
            memory_id=v.memory_id, version=v.version, value=v.value, confidence=v.confidence,
            reasoning=v.reasoning, written_by=v.written_by, source_uow_id=v.source_uow_id,
            source_actor_id=v.source_actor_id, written_at=v.written_at,
        )  # fmt: skip


class PlaybookReset(View):
    """What a playbook reset archived, and what a legal hold kept."""

    role_id: uuid.UUID
    actor_id: uuid.UUID
    archived: list[uuid.UUID]
    held: list[uuid.UUID] = Field(description="Entries under legal hold, left as they were.")

    @classmethod
    def of(cls, r: memory.PlaybookReset) -> Self:
        return cls(role_id=r.role_id, actor_id=r.actor_id, archived=r.archived, held=r.held)


class Influence(View):
    """One checkout a memory was injected into, and the version it was given."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: Time
    version: int
    key: str | None = Field(description="null for injections recorded before keys were.")

    @classmethod
    def of(cls, i: memory.Influence) -> Self:
        return cls(
            uow_id=i.uow_id, actor_id=i.actor_id, role_id=i.role_id, injected_at=i.injected_at,
            version=i.version, key=i.key,
        )  # fmt: skip


class InjectedMemory(View):
    memory_id: uuid.UUID
    version: int
    key: str | None = Field(description="null for injections recorded before keys were.")


class Injection(View):
    """The memories injected into one checkout of a UOW."""

    uow_id: uuid.UUID
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    injected_at: Time
    entries: list[InjectedMemory]

    @classmethod
    def of(cls, i: memory.Injection) -> Self:
        return cls(
            uow_id=i.uow_id, actor_id=i.actor_id, role_id=i.role_id, injected_at=i.injected_at,
            entries=[
                InjectedMemory(memory_id=e.memory_id, version=e.version, key=e.key)
                for e in i.entries
            ],
        )  # fmt: skip
