"""Typed answers of the API.

Models whose response has a schema in ``/openapi.json`` (``Uow``, ``UowHistory``, ``Memory``,
``MemoryVersion``, ``Intervention``, ``InstanceSummary``, ``TemplateSummary``, ``Actor``) are
checked against it by a test (every declared field exists there, required exactly when the
schema requires it). The others (checkout, submit, failure, heartbeat, …) answer a free-form
object in the schema; a test checks their declared fields against the live answers.
Unknown fields are kept (``extra="allow"``), so a newer server does not break the client.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# -- work ------------------------------------------------------------------------------------


class Checkout(Model):
    """A leased UOW: send ``lease_id`` with heartbeats, the submit and a failure report."""

    uow_id: uuid.UUID
    lease_id: uuid.UUID
    instance_id: uuid.UUID
    role: str
    interaction: str
    previous_status: str
    attributes: dict[str, Any]
    context: dict[str, Any]
    injected: list[dict[str, Any]]
    parent_id: uuid.UUID | None
    failure: dict[str, Any] | None
    children: list[dict[str, Any]]
    dci: dict[str, Any] | None


class SubmitResult(Model):
    success: bool
    message: str
    uow_id: uuid.UUID
    status: str
    interaction: str | None
    route: str | None
    versions_written: int
    children: list[Any]
    learned_memory_id: uuid.UUID | None
    intervention_id: uuid.UUID | None
    replayed: bool


class FailureResult(Model):
    success: bool
    message: str
    uow_id: uuid.UUID
    status: str
    replayed: bool


class Heartbeat(Model):
    success: bool
    message: str
    timestamp: datetime


# -- definitions, instances, actors ---------------------------------------------------------


class TemplateImport(Model):
    template_id: uuid.UUID
    name: str
    version: int
    warnings: list[Any]


class TemplateSummary(Model):
    template_id: uuid.UUID
    name: str
    version: int
    description: str | None
    imported_at: datetime


class Instantiated(Model):
    instance_id: uuid.UUID
    uow_id: uuid.UUID
    status: str
    interaction: str
    message: str


class InstanceRole(Model):
    role_id: uuid.UUID
    name: str
    type: str
    strategy: str | None


class InstanceSummary(Model):
    instance_id: uuid.UUID
    template_id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    status: str
    paused_at: datetime | None
    paused_by: str | None
    pause_reason: str | None


class InstanceDetail(InstanceSummary):
    roles: list[InstanceRole]

    def role_id(self, name: str) -> uuid.UUID:
        """The id of the role called ``name`` (KeyError if there is none)."""
        for role in self.roles:
            if role.name == name:
                return role.role_id
        raise KeyError(name)


class ActorCreated(Model):
    actor_id: uuid.UUID


class Assignment(Model):
    actor_id: uuid.UUID
    role_id: uuid.UUID
    created: bool


class Actor(Model):
    id: uuid.UUID
    name: str
    actor_type: str
    created_at: datetime


# -- UOWs --------------------------------------------------------------------------------------


class Uow(Model):
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
    lease_id: uuid.UUID | None = None
    lease_holder_id: uuid.UUID | None
    leased_at: datetime | None
    last_heartbeat: datetime | None
    reclaim_count: int
    failure: dict[str, Any] | None
    interaction: str | None
    role: str | None
    heartbeat_age_seconds: float | None
    attributes: dict[str, Any]
    children: list[dict[str, Any]]


class AttributeVersion(Model):
    key: str
    version: int
    value: Any
    actor_id: uuid.UUID | None
    reasoning: str | None
    created_at: datetime


class Transition(Model):
    id: int
    uow_id: uuid.UUID | None
    instance_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    event: str
    from_status: str | None
    to_status: str | None
    at: datetime
    details: dict[str, Any] | None


class UowHistory(Model):
    uow_id: uuid.UUID
    attributes: list[AttributeVersion]
    transitions: list[Transition]


# -- memory ------------------------------------------------------------------------------------


class Memory(Model):
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
    source_uow_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    reasoning: str | None
    archived: bool
    held: bool


class MemoryVersion(Model):
    memory_id: uuid.UUID
    version: int
    value: Any
    confidence: float
    reasoning: str | None
    written_by: str | None
    source_uow_id: uuid.UUID | None
    written_at: datetime


# -- pilot -------------------------------------------------------------------------------------


class Intervention(Model):
    id: uuid.UUID
    instance_id: uuid.UUID
    uow_id: uuid.UUID
    type: str
    status: str
    priority: str
    title: str
    description: str | None
    requested_by: str
    actor_id: uuid.UUID | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class Page(Model):
    """One page of a list; ``next_cursor`` is None on the last."""

    items: list[dict[str, Any]]
    next_cursor: str | None = Field(default=None)


# The models a test checks field by field against a schema of /openapi.json.
SCHEMA_CHECKED: dict[type[Model], str] = {
    Uow: "Uow",
    UowHistory: "UowHistory",
    AttributeVersion: "AttributeVersion",
    Transition: "Transition",
    Memory: "Memory",
    MemoryVersion: "MemoryVersion",
    Intervention: "Intervention",
    InstanceSummary: "InstanceSummary",
    TemplateSummary: "TemplateSummary",
    Actor: "Actor",
}
