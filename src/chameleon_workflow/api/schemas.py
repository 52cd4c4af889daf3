"""Request bodies. Unknown fields are rejected so that typos surface as 422."""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ..domain.enums import ActorType, MemoryScope
from ..domain.memory import MAX_REASON_LENGTH

# Deeper documents are refused: the encoders and the JSON columns recurse per level.
MAX_JSON_DEPTH = 64
# NUL cannot be stored in PostgreSQL text or jsonb; lone surrogates are not UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_problem(value: Any, where: str) -> str | None:
    """Why ``value`` (decoded JSON) cannot be stored and returned faithfully, or None."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{path}: nested more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{path}: NaN and Infinity are not JSON numbers"
        if isinstance(item, str) and _UNSTORABLE.search(item):
            return f"{path}: text must not contain NUL characters or unpaired surrogates"
        if isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return f"{path}: key {key!r:.40} contains NUL or an unpaired surrogate"
                stack.append((inner, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{path}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None


def _true_or_false(value: Any) -> Any:
    # A query string carries text: only the words true and false are booleans (not 0, 1, yes).
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


QueryBool = Annotated[bool, BeforeValidator(_true_or_false)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> Self:
        for name in type(self).model_fields:
            problem = storable_problem(getattr(self, name), name)
            if problem:
                raise PydanticCustomError("unstorable_value", problem)
        return self


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
    scope: MemoryScope | None = Field(
        default=None,
        description="GLOBAL (the role's blueprint) or ACTOR (one actor's playbook); default "
        "ACTOR for an actor key, GLOBAL otherwise.",
    )
    actor_id: uuid.UUID | None = Field(
        default=None, description="The playbook's actor (ACTOR scope); an actor key's own."
    )
    confidence: float | None = Field(default=None, ge=0, le=1)
    reasoning: str = Field(
        min_length=1,
        max_length=MAX_REASON_LENGTH,
        pattern=r"\S",
        description="Why this is written: kept with the version (provenance).",
    )
    source_uow_id: uuid.UUID | None = Field(
        default=None, description="The UOW this was learned from, if any."
    )


class ReasonRequest(Body):
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH, pattern=r"\S")
