"""Role memory: explicit writes, browsing, and the audit of influence."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ..domain.enums import MemoryScope
from ..domain.errors import Forbidden
from ..domain.security import Right, Scope
from ..store.memory import INFLUENCE, INJECTIONS, ROLE_MEMORIES
from .auth import PrincipalDep, allow, own_only
from .deps import EngineDep
from .pagination import PageDep
from .responses import COMMON, WITH_BODY, responses
from .routes_discovery import check_held
from .schemas import MemoryRequest, QueryBool
from .views import Influence, Injection, Memory
from .views_pages import InfluencePage, InjectionPage, MemoryPage

router = APIRouter(tags=["memory"], responses=COMMON)
NOT_FOUND = responses(404)


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
    page: PageDep,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    include_toxic: QueryBool = True,
) -> MemoryPage:
    """A role's memories by scope, then key, one page at a time; an actor key reads its own
    playbook only."""
    if principal.is_bound:  # an actor key: its own playbook only
        own_only(
            principal,
            scope in (None, MemoryScope.ACTOR) and actor_id in (None, principal.actor_id),
            "playbook (scope ACTOR, its own actor_id)",
        )
        scope, actor_id = MemoryScope.ACTOR, principal.actor_id
    cursor = page.bind(ROLE_MEMORIES, role_id, scope, actor_id, include_toxic)
    found = engine.memory.page_for_role(
        role_id,
        scope=scope,
        actor_id=actor_id,
        include_toxic=include_toxic,
        after=cursor.after,
        limit=page.limit,
    )
    items = [Memory.of(e) for e in found.items]
    return MemoryPage(items=items, next_cursor=cursor.next(found.next_key))


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
def memory_influence(memory_id: uuid.UUID, engine: EngineDep, page: PageDep) -> InfluencePage:
    """The checkouts the memory was injected into, oldest first."""
    cursor = page.bind(INFLUENCE, memory_id)
    found = engine.memory.influence_page(memory_id, after=cursor.after, limit=page.limit)
    items = [Influence.of(i) for i in found.items]
    return InfluencePage(items=items, next_cursor=cursor.next(found.next_key))


@router.get(
    "/uows/{uow_id}/memory-injections",
    responses=NOT_FOUND,
    dependencies=[allow(Right.READ, own=True)],
)
def uow_injections(
    uow_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep, page: PageDep
) -> InjectionPage:
    """The memories given to each checkout of the UOW, oldest checkout first."""
    check_held(engine, principal, uow_id)
    cursor = page.bind(INJECTIONS, uow_id)
    found = engine.memory.injection_page(uow_id, after=cursor.after, limit=page.limit)
    items = [Injection.of(i) for i in found.items]
    return InjectionPage(items=items, next_cursor=cursor.next(found.next_key))
