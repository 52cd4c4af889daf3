"""Request bodies. Unknown fields are rejected so that typos surface as 422."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..domain.enums import ActorType, MemoryScope


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


NonBlank = Field(min_length=1, max_length=200, pattern=r"\S")


class InstantiateRequest(Body):
    template_id: uuid.UUID
    initial_context: dict[str, Any] = Field(default_factory=dict)
    instance_name: str | None = Field(default=None, min_length=1, max_length=200)
    instance_description: str | None = None


class GenesisRequest(Body):
    initial_context: dict[str, Any] = Field(default_factory=dict)


class CheckoutRequest(Body):
    actor_id: uuid.UUID
    role_id: uuid.UUID


class SubmitRequest(Body):
    uow_id: uuid.UUID
    actor_id: uuid.UUID
    result_attributes: dict[str, Any] = Field(default_factory=dict)
    reasoning: str | None = None
    lease_id: uuid.UUID | None = None
    children: list[dict[str, Any]] | None = None


class FailureRequest(Body):
    uow_id: uuid.UUID
    actor_id: uuid.UUID
    error_code: str = NonBlank
    details: Any = None
    lease_id: uuid.UUID | None = None


class HeartbeatRequest(Body):
    actor_id: uuid.UUID
    lease_id: uuid.UUID | None = None


class ActorRequest(Body):
    name: str = NonBlank
    type: ActorType


class AssignmentRequest(Body):
    role_id: uuid.UUID


class MemoryRequest(Body):
    key: str = NonBlank
    value: Any
    scope: MemoryScope = MemoryScope.GLOBAL
    actor_id: uuid.UUID | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
