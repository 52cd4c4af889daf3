"""SQLAlchemy models: the single description of the schema (Alembic migrations match it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import BigId, IntList, Json, TextList, UtcDateTime, UuidList

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: Json, uuid.UUID: Uuid}


Name = String(200)
Enum = String(20)
# A UOW's status: PENDING_PILOT_APPROVAL is longer than an Enum. SQLite ignores the length,
# so its columns keep the declared VARCHAR(20) (no table rebuild); see migration 0010.
UowStatusText = String(40).with_variant(String(20), "sqlite")


def _fk(target: str, **kw: Any) -> Any:
    return ForeignKey(target, ondelete="CASCADE", **kw)


# --- templates ---------------------------------------------------------------------------


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    source_yaml: Mapped[str] = mapped_column(Text)
    canonical_yaml: Mapped[str] = mapped_column(Text)
    # The parsed definition as JSON (domain.export.to_mapping): loaded without YAML parsing.
    definition: Mapped[dict[str, Any]]
    imported_at: Mapped[datetime]


class _DefinitionRows:
    """Columns shared by a template's rows and an instance's cloned rows."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name)
    description: Mapped[str | None] = mapped_column(Text)
    ai_context: Mapped[Any | None] = mapped_column(Json)


class TemplateRole(_DefinitionRows, Base):
    __tablename__ = "template_roles"
    __table_args__ = (UniqueConstraint("template_id", "name"),)
    template_id: Mapped[uuid.UUID] = mapped_column(_fk("templates.id"))
    role_type: Mapped[str] = mapped_column(Enum)
    strategy: Mapped[str | None] = mapped_column(Enum)
    zombie_timeout_seconds: Mapped[int | None]
    zombie_policy: Mapped[str | None] = mapped_column(Enum)
    max_reclaims: Mapped[int | None]


class TemplateInteraction(_DefinitionRows, Base):
    __tablename__ = "template_interactions"
    __table_args__ = (UniqueConstraint("template_id", "name"),)
    template_id: Mapped[uuid.UUID] = mapped_column(_fk("templates.id"))
    stale_token_limit_seconds: Mapped[int | None]


class TemplateComponent(_DefinitionRows, Base):
    __tablename__ = "template_components"
    __table_args__ = (UniqueConstraint("template_id", "name"),)
    template_id: Mapped[uuid.UUID] = mapped_column(_fk("templates.id"))
    role_id: Mapped[uuid.UUID] = mapped_column(_fk("template_roles.id"))
    interaction_id: Mapped[uuid.UUID] = mapped_column(_fk("template_interactions.id"))
    direction: Mapped[str] = mapped_column(Enum)
    position: Mapped[int]


class TemplateGuardian(_DefinitionRows, Base):
    __tablename__ = "template_guardians"
    template_id: Mapped[uuid.UUID] = mapped_column(_fk("templates.id"))
    component_id: Mapped[uuid.UUID] = mapped_column(_fk("template_components.id"))
    guardian_type: Mapped[str] = mapped_column(String(40))
    config: Mapped[dict[str, Any]]
    position: Mapped[int]


# --- instances and their clones -----------------------------------------------------------


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_created", "created_at", "id"),)  # the list's keyset

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("templates.id"))
    name: Mapped[str] = mapped_column(Name)
    description: Mapped[str | None] = mapped_column(Text)
    definition_yaml: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    ate_interaction_id: Mapped[uuid.UUID | None]
    chronos_interaction_id: Mapped[uuid.UUID | None]
    zombie_timeout_seconds: Mapped[int | None]
    zombie_policy: Mapped[str | None] = mapped_column(Enum)
    max_reclaims: Mapped[int | None]
    stale_token_limit_seconds: Mapped[int | None]
    created_at: Mapped[datetime]
    # The kill switch: ACTIVE or PAUSED, with who paused it, when and why.
    status: Mapped[str] = mapped_column(Enum, default="ACTIVE", server_default=text("'ACTIVE'"))
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(Name)
    pause_reason: Mapped[str | None] = mapped_column(Text)


class Role(_DefinitionRows, Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    role_type: Mapped[str] = mapped_column(Enum)
    strategy: Mapped[str | None] = mapped_column(Enum)
    zombie_timeout_seconds: Mapped[int | None]
    zombie_policy: Mapped[str | None] = mapped_column(Enum)
    max_reclaims: Mapped[int | None]


class Interaction(_DefinitionRows, Base):
    __tablename__ = "interactions"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    stale_token_limit_seconds: Mapped[int | None]


class Component(_DefinitionRows, Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    role_id: Mapped[uuid.UUID] = mapped_column(_fk("roles.id"))
    interaction_id: Mapped[uuid.UUID] = mapped_column(_fk("interactions.id"))
    direction: Mapped[str] = mapped_column(Enum)
    position: Mapped[int]


class Guardian(_DefinitionRows, Base):
    __tablename__ = "guardians"
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    component_id: Mapped[uuid.UUID] = mapped_column(_fk("components.id"))
    guardian_type: Mapped[str] = mapped_column(String(40))
    config: Mapped[dict[str, Any]]
    position: Mapped[int]


# --- actors -------------------------------------------------------------------------------


class Actor(Base):
    __tablename__ = "actors"
    __table_args__ = (Index("ix_actors_created", "created_at", "id"),)  # the list's keyset
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name)
    actor_type: Mapped[str] = mapped_column(Enum)
    created_at: Mapped[datetime]


class ApiKey(Base):
    """An API key: its secret is stored only as an HMAC (see ``engine.keys``)."""

    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name)
    scope: Mapped[str] = mapped_column(Enum)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(_fk("actors.id"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Name)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    actor_id: Mapped[uuid.UUID] = mapped_column(_fk("actors.id"), primary_key=True)
    role_id: Mapped[uuid.UUID] = mapped_column(_fk("roles.id"), primary_key=True)
    assigned_at: Mapped[datetime]


# --- units of work ------------------------------------------------------------------------


class Uow(Base):
    __tablename__ = "uows"
    __table_args__ = (
        Index("ix_uows_waiting", "current_interaction_id", "status", "entered_at"),
        Index("ix_uows_active_heartbeat", "status", "last_heartbeat"),
        Index("ix_uows_parent_id", "parent_id"),
        # The listing (newest-updated first, keyset on (updated_at, id)); every move rewrites
        # updated_at, so these two are all it gets (docs/api.md, GET /uows). The trailing
        # role and interaction let those filters be checked inside the index; a move rewrites
        # them along with status and updated_at, so they widen the entry, not the writes.
        Index("ix_uows_status_updated", "status", "updated_at", "id"),
        Index(
            "ix_uows_instance_updated",
            "instance_id",
            "status",
            "updated_at",
            "id",
            "current_role_id",
            "current_interaction_id",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(_fk("uows.id"))
    status: Mapped[str] = mapped_column(UowStatusText)
    # No foreign keys on the columns every move rewrites: the engine only ever writes ids of
    # the instance's own (immutable) clone, and a per-row referential check would be paid on
    # every checkout, submit and reclaim.
    current_interaction_id: Mapped[uuid.UUID | None]
    current_role_id: Mapped[uuid.UUID | None]
    child_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    finished_child_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    entered_at: Mapped[datetime]
    lease_id: Mapped[uuid.UUID | None]
    lease_holder_id: Mapped[uuid.UUID | None]
    leased_at: Mapped[datetime | None]
    last_heartbeat: Mapped[datetime | None]
    reclaim_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # The status a PAUSED UOW had before the kill switch (what resume puts back).
    paused_from: Mapped[str | None] = mapped_column(Enum)
    failure: Mapped[dict[str, Any] | None]


class UowAttribute(Base):
    __tablename__ = "uow_attributes"
    __table_args__ = (UniqueConstraint("uow_id", "key", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uow_id: Mapped[uuid.UUID] = mapped_column(_fk("uows.id"))
    key: Mapped[str] = mapped_column(Name)
    version: Mapped[int]
    value: Mapped[Any | None] = mapped_column(Json)
    actor_id: Mapped[uuid.UUID | None]
    reasoning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class InteractionLog(Base):
    """Append-only audit of every transition."""

    __tablename__ = "interaction_log"
    __table_args__ = (Index("ix_interaction_log_uow_id", "uow_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uow_id: Mapped[uuid.UUID | None]
    instance_id: Mapped[uuid.UUID | None]
    actor_id: Mapped[uuid.UUID | None]
    role_id: Mapped[uuid.UUID | None]
    event: Mapped[str] = mapped_column(String(40))
    from_interaction_id: Mapped[uuid.UUID | None]
    to_interaction_id: Mapped[uuid.UUID | None]
    from_status: Mapped[str | None] = mapped_column(UowStatusText)
    to_status: Mapped[str | None] = mapped_column(UowStatusText)
    at: Mapped[datetime]
    details: Mapped[dict[str, Any] | None]


class LeaseOutcome(Base):
    """The outcome of the one submit or failure report a lease was used for.

    A client that lost the response retries with the same lease and body and gets this
    outcome back (``replayed``); another body on a used lease is a conflict.
    """

    __tablename__ = "lease_outcomes"
    __table_args__ = (Index("ix_lease_outcomes_at", "at"),)
    lease_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    uow_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID]
    operation: Mapped[str] = mapped_column(String(20))
    request_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[dict[str, Any]]
    at: Mapped[datetime]


# --- memory -------------------------------------------------------------------------------


class Memory(Base):
    """One role memory at its current version; earlier versions are in ``memory_versions``.

    The row carries the current version's provenance (who wrote it, why, from which UOW) and
    the memory's lifecycle: toxic (never injected), archived (never injected; restorable)
    and legal hold (nothing may archive or delete it).
    """

    __tablename__ = "memories"
    __table_args__ = (
        # Checkout reads a role's live memories only: archived rows stay out of the index.
        Index(
            "ix_memories_live",
            "role_id",
            "scope",
            "actor_id",
            postgresql_where=text("archived_at IS NULL"),
            sqlite_where=text("archived_at IS NULL"),
        ),
        Index("ix_memories_last_accessed_at", "last_accessed_at"),
        Index("ix_memories_source_uow_id", "source_uow_id"),
        Index("ix_memories_role_key", "role_id", "scope", "key", "id"),  # the list's keyset
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    role_id: Mapped[uuid.UUID] = mapped_column(_fk("roles.id"))
    scope: Mapped[str] = mapped_column(Enum)
    actor_id: Mapped[uuid.UUID | None]
    key: Mapped[str] = mapped_column(Name)
    value: Mapped[Any | None] = mapped_column(Json)
    version: Mapped[int] = mapped_column(default=1)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    is_toxic: Mapped[bool] = mapped_column(Boolean, default=False)
    toxic_reason: Mapped[str | None] = mapped_column(Text)
    toxic_by: Mapped[str | None] = mapped_column(Name)
    toxic_at: Mapped[datetime | None]
    source_uow_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_accessed_at: Mapped[datetime | None]
    # Provenance of the current version.
    reasoning: Mapped[str | None] = mapped_column(Text)
    written_by: Mapped[str | None] = mapped_column(Name)
    source_actor_id: Mapped[uuid.UUID | None]
    # Archived: kept (and restorable) but never injected.
    archived_at: Mapped[datetime | None]
    archived_by: Mapped[str | None] = mapped_column(Name)
    archive_reason: Mapped[str | None] = mapped_column(Text)
    # Legal hold: decay, reset, experience validation and archive leave it alone.
    held_at: Mapped[datetime | None]
    held_by: Mapped[str | None] = mapped_column(Name)
    hold_reason: Mapped[str | None] = mapped_column(Text)


class MemoryVersion(Base):
    """Every version a memory has had, each with its provenance; removed with the memory."""

    __tablename__ = "memory_versions"
    memory_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("memories.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[Any | None] = mapped_column(Json)
    confidence: Mapped[float] = mapped_column(Float)
    reasoning: Mapped[str | None] = mapped_column(Text)
    written_by: Mapped[str | None] = mapped_column(Name)
    source_uow_id: Mapped[uuid.UUID | None]
    source_actor_id: Mapped[uuid.UUID | None]
    written_at: Mapped[datetime]


class MemoryInjection(Base):
    """The memory entries (ids and versions) injected into one checkout: the audit of influence.

    One row per checkout, with the ids and versions as parallel arrays, keeps checkout cost
    low however many memories a role has.
    """

    __tablename__ = "memory_injections"
    __table_args__ = (
        Index("ix_memory_injections_uow_id", "uow_id"),
        Index(
            "ix_memory_injections_memory_ids",
            "memory_ids",
            postgresql_using="gin",
            sqlite_where=text("0"),  # no use on SQLite: an empty partial index
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uow_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID | None]
    role_id: Mapped[uuid.UUID | None]
    injected_at: Mapped[datetime]
    memory_ids: Mapped[list[Any]] = mapped_column(UuidList)
    versions: Mapped[list[int]] = mapped_column(IntList)
    # The keys injected, so the audit reads true after the memory is gone (None: written
    # before keys were recorded).
    keys: Mapped[list[str] | None] = mapped_column(TextList)


class MemoryEvent(Base):
    """The lifecycle of each memory: toxic marks, archive and restore, holds, purges."""

    __tablename__ = "memory_events"
    __table_args__ = (Index("ix_memory_events_memory_id", "memory_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    memory_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str | None] = mapped_column(Name)
    at: Mapped[datetime]


# --- the pilot ------------------------------------------------------------------------------


class Intervention(Base):
    """A request for a pilot: approve parked work, or answer an agent's question.

    Raised by a PILOT_APPROVAL guardian, by an agent (for work it holds) or by the loop
    guard; its UOW waits in PENDING_PILOT_APPROVAL until it is approved, rejected or expires.
    """

    __tablename__ = "interventions"
    __table_args__ = (
        # The inbox: pending first by priority (0 = critical), then oldest.
        Index("ix_interventions_inbox", "status", "priority_rank", "created_at", "id"),
        Index("ix_interventions_expiry", "status", "expires_at"),
        Index("ix_interventions_uow_id", "uow_id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(_fk("instances.id"))
    uow_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(Enum)
    status: Mapped[str] = mapped_column(Enum)
    priority: Mapped[str] = mapped_column(Enum)
    priority_rank: Mapped[int]
    title: Mapped[str] = mapped_column(Name)
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(40))  # guardian | agent | loop_guard
    guardian_name: Mapped[str | None] = mapped_column(Name)
    requested_by: Mapped[str] = mapped_column(Name)
    actor_id: Mapped[uuid.UUID | None]
    # Where the work goes when approved (the interaction it was moving to, or its own).
    resume_interaction_id: Mapped[uuid.UUID | None]
    on_expiry: Mapped[str | None] = mapped_column(Enum)  # cancel | approve
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(Name)
    resolution: Mapped[str | None] = mapped_column(Text)  # the reason, or the answer


class PilotWaiver(Base):
    """A pilot's waiver: the named guard lets this UOW pass once."""

    __tablename__ = "pilot_waivers"
    __table_args__ = (Index("ix_pilot_waivers_uow_guardian", "uow_id", "guardian_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uow_id: Mapped[uuid.UUID]
    guardian_name: Mapped[str] = mapped_column(Name)
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(Name)
    granted_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PilotEvent(Base):
    """What the live stream tells pilots (requests created, resolved, expired; instances
    paused, resumed); the id is the stream's event id (``Last-Event-ID``)."""

    __tablename__ = "pilot_events"
    __table_args__ = (Index("ix_pilot_events_at", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    instance_id: Mapped[uuid.UUID | None]
    uow_id: Mapped[uuid.UUID | None]
    intervention_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]]
    at: Mapped[datetime]


# --- operations ---------------------------------------------------------------------------


class MaintenanceRun(Base):
    __tablename__ = "maintenance_runs"
    # The list's keyset, newest first: overall and of one job.
    __table_args__ = (
        Index("ix_maintenance_runs_started", "started_at", "id"),
        Index("ix_maintenance_runs_job_started", "job", "started_at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(Enum)
    parameters: Mapped[dict[str, Any]]
    counts: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    replica: Mapped[str | None] = mapped_column(Name)


class AdminAudit(Base):
    """The admin audit trail: one row per admin or operator action, append-only (nothing in
    the engine updates or deletes it)."""

    __tablename__ = "admin_audit"
    __table_args__ = (
        Index("ix_admin_audit_at_id", "at", "id"),
        Index("ix_admin_audit_action_at_id", "action", "at", "id"),
        Index("ix_admin_audit_key_id_at_id", "key_id", "at", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    key_id: Mapped[uuid.UUID | None]  # no foreign key: the trail outlives what it names
    key_name: Mapped[str] = mapped_column(Name)
    scope: Mapped[str | None] = mapped_column(Enum)
    action: Mapped[str] = mapped_column(String(80))
    parameters: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(Enum)


class LeaderLease(Base):
    """One row per scheduled job: which replica may run it until when."""

    __tablename__ = "leader_leases"
    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(Name)
    expires_at: Mapped[datetime]


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed as such (``__table__`` is typed as a FromClause)."""
    return cast(Table, model.__table__)
