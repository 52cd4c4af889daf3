"""Role memory: explicit writes, browsing, and the audit of influence."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ..domain.enums import MemoryScope
from ..domain.errors import Forbidden
from ..domain.security import Right, Scope
from .auth import PrincipalDep, allow, own_only
from .deps import EngineDep
from .responses import COMMON, WITH_BODY, responses
from .routes_discovery import check_held
from .schemas import MemoryRequest, QueryBool
from .views import Influence, Injection, Memory

router = APIRouter(tags=["memory"], responses=COMMON)
NOT_FOUND = responses(404)

# SQL OFFSET is a signed 64-bit integer on both databases; beyond it the driver fails.
MAX_OFFSET = 2**63 - 1


@router.post(
    "/roles/{role_id}/memories",
    status_code=201,
    responses=NOT_FOUND | WITH_BODY,
    dependencies=[allow(Right.OPERATE)],
)
def write_memory(
    role_id: uuid.UUID, body: MemoryRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Write the role's global blueprint (operator or admin keys) or, with an admin key, an
    actor's personal playbook."""
    if body.scope is not MemoryScope.GLOBAL and principal.scope is not Scope.ADMIN:
        raise Forbidden(
            "writing an actor's personal playbook needs an admin key; operator keys write "
            "the global blueprint (scope GLOBAL)",
            needed="admin",
            scope=principal.scope.value,
        )
    entry = engine.memory.write(
        role_id,
        key=body.key,
        value=body.value,
        scope=body.scope,
        actor_id=body.actor_id,
        confidence=body.confidence,
    )
    return Memory.of(entry)


@router.get(
    "/roles/{role_id}/memories", responses=NOT_FOUND, dependencies=[allow(Right.READ, own=True)]
)
def list_memories(
    role_id: uuid.UUID,
    engine: EngineDep,
    principal: PrincipalDep,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    include_toxic: QueryBool = True,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[Memory]:
    if principal.is_bound:  # an actor key: its own playbook only
        own_only(
            principal,
            scope in (None, MemoryScope.ACTOR) and actor_id in (None, principal.actor_id),
            "playbook (scope ACTOR, its own actor_id)",
        )
        scope, actor_id = MemoryScope.ACTOR, principal.actor_id
    entries = engine.memory.list_for_role(
        role_id,
        scope=scope,
        actor_id=actor_id,
        include_toxic=include_toxic,
        limit=limit,
        offset=offset,
    )
    return [Memory.of(e) for e in entries]


@router.get(
    "/memories/{memory_id}", responses=NOT_FOUND, dependencies=[allow(Right.READ, own=True)]
)
def get_memory(memory_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep) -> Memory:
    entry = engine.memory.get(memory_id)
    mine = entry.scope == MemoryScope.ACTOR.value and entry.actor_id == principal.actor_id
    own_only(principal, mine, "playbook entries")
    return Memory.of(entry)


@router.get(
    "/memories/{memory_id}/influence", responses=NOT_FOUND, dependencies=[allow(Right.READ)]
)
def memory_influence(memory_id: uuid.UUID, engine: EngineDep) -> list[Influence]:
    return [Influence.of(i) for i in engine.memory.influence(memory_id)]


@router.get(
    "/uows/{uow_id}/memory-injections",
    responses=NOT_FOUND,
    dependencies=[allow(Right.READ, own=True)],
)
def uow_injections(
    uow_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep
) -> list[Injection]:
    check_held(engine, principal, uow_id)
    return [Injection.of(i) for i in engine.memory.injected_into(uow_id)]
