"""Role memory: writes with provenance, versions, the lifecycle (archive, restore, legal
hold, playbook reset) and the audit of influence.

Who may do what: an ``actor`` key reads the global blueprint of the roles its actor is
assigned to, and reads and writes (and archives) its own playbook there; operator (and
admin) keys write the global blueprint and any playbook, archive, restore, hold, release and
reset playbooks. Every change goes into the admin audit.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ..domain.enums import MemoryScope
from ..domain.errors import Forbidden, NotAssigned
from ..domain.security import Principal, Right
from ..engine.core import Engine
from ..store.memory import INFLUENCE, INJECTIONS, ROLE_MEMORIES, VERSIONS
from ..store.records import MemoryEntry
from .auth import PrincipalDep, allow, author, own_only
from .deps import EngineDep
from .pagination import PageDep
from .responses import COMMON, WITH_BODY, responses
from .routes_discovery import check_held
from .schemas import MemoryRequest, QueryBool, ReasonRequest
from .views import Influence, Injection, Memory, MemoryVersion, PlaybookReset
from .views_pages import InfluencePage, InjectionPage, MemoryPage, MemoryVersionPage

router = APIRouter(tags=["memory"], responses=COMMON)
NOT_FOUND = responses(404)
CHANGES = responses(404, 409) | WITH_BODY


def _assigned(engine: Engine, principal: Principal, role_id: uuid.UUID) -> None:
    """An actor key works with the memory of the roles its actor is assigned to only."""
    actor_id = principal.actor_id
    if principal.is_bound and actor_id is not None:
        engine.topologies.of_role(role_id)  # an unknown role is a 404 first
        if not engine.memory.is_assigned(actor_id, role_id):
            raise NotAssigned(
                f"actor {actor_id} is not assigned to role {role_id}, so this key may not "
                "read or write its memory; an admin assigns it with "
                f"POST /actors/{actor_id}/assignments",
                actor_id=str(actor_id),
                role_id=str(role_id),
            )


def _visible(engine: Engine, principal: Principal, entry: MemoryEntry) -> None:
    """An actor key sees its own playbook entries and the global blueprint, of the roles
    its actor is assigned to."""
    if not principal.is_bound:
        return
    if entry.scope != MemoryScope.GLOBAL.value:
        own_only(principal, entry.actor_id == principal.actor_id, "playbook entries")
    _assigned(engine, principal, entry.role_id)


@router.post(
    "/roles/{role_id}/memories",
    status_code=201,
    responses=NOT_FOUND | WITH_BODY,
    dependencies=[allow(Right.OPERATE, own=True)],
)
def write_memory(
    role_id: uuid.UUID, body: MemoryRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Write a memory, or a new version of the one with that key (same role, scope and
    actor): the role's global blueprint or an actor's personal playbook (operator or admin
    keys), or, with an actor key, its own playbook for a role it is assigned to.
    ``reasoning`` is required and kept with the version."""
    scope, actor_id = body.scope, body.actor_id
    if principal.is_bound:
        scope = scope or MemoryScope.ACTOR
        own = scope is MemoryScope.ACTOR and actor_id in (None, principal.actor_id)
        if not own:
            raise Forbidden(
                "an actor key writes only its own playbook (scope ACTOR, its own actor_id); "
                "the global blueprint needs an operator key",
                needed="operator",
                scope=principal.scope.value,
            )
        actor_id = principal.actor_id
        _assigned(engine, principal, role_id)
    scope = scope or MemoryScope.GLOBAL
    entry = engine.memory.write(
        role_id,
        key=body.key,
        value=body.value,
        scope=scope,
        actor_id=actor_id,
        confidence=body.confidence,
        reasoning=body.reasoning,
        by=author(principal, "api"),
        source_uow_id=body.source_uow_id,
        source_actor_id=principal.actor_id if principal.is_bound else None,
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
    archived: QueryBool = False,
) -> MemoryPage:
    """A role's live memories (``archived=true``: its archived ones, with why and by whom)
    by scope, then key, one page at a time. An actor key reads the global blueprint and its
    own playbook of a role it is assigned to."""
    visible_to = None
    if principal.is_bound:
        _assigned(engine, principal, role_id)
        own_only(
            principal,
            actor_id in (None, principal.actor_id) or scope is MemoryScope.GLOBAL,
            "playbook (scope ACTOR, its own actor_id) and the global blueprint",
        )
        if scope is MemoryScope.ACTOR:
            actor_id = principal.actor_id
        elif scope is None:
            visible_to = principal.actor_id
    cursor = page.bind(ROLE_MEMORIES, role_id, scope, actor_id, visible_to, include_toxic, archived)
    found = engine.memory.page_for_role(
        role_id,
        scope=scope,
        actor_id=actor_id,
        visible_to=visible_to,
        include_toxic=include_toxic,
        archived=archived,
        after=cursor.after,
        limit=page.limit,
    )
    items = [Memory.of(e) for e in found.items]
    return MemoryPage(items=items, next_cursor=cursor.next(found.next_key))


@router.get(
    "/memories/{memory_id}", responses=NOT_FOUND, dependencies=[allow(Right.READ, own=True)]
)
def get_memory(memory_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep) -> Memory:
    """One memory at its current version, with its provenance, archive and hold state."""
    entry = engine.memory.get(memory_id)
    _visible(engine, principal, entry)
    return Memory.of(entry)


@router.get(
    "/memories/{memory_id}/versions",
    responses=NOT_FOUND,
    dependencies=[allow(Right.READ, own=True)],
)
def memory_versions(
    memory_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep, page: PageDep
) -> MemoryVersionPage:
    """Every version of the memory, oldest first, each with who wrote it, when, why and
    from which UOW."""
    _visible(engine, principal, engine.memory.get(memory_id))
    cursor = page.bind(VERSIONS, memory_id)
    found = engine.memory.versions_page(memory_id, after=cursor.after, limit=page.limit)
    items = [MemoryVersion.of(v) for v in found.items]
    return MemoryVersionPage(items=items, next_cursor=cursor.next(found.next_key))


@router.delete(
    "/memories/{memory_id}", responses=CHANGES, dependencies=[allow(Right.OPERATE, own=True)]
)
def archive_memory(
    memory_id: uuid.UUID, body: ReasonRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Archive the memory (the API never hard-deletes): it is no longer injected, and
    ``POST /memories/{id}/restore`` brings it back. 409 if it is held or already archived.
    An actor key archives its own playbook entries only."""
    if principal.is_bound:
        entry = engine.memory.get(memory_id)
        mine = entry.scope == MemoryScope.ACTOR.value and entry.actor_id == principal.actor_id
        own_only(principal, mine, "playbook entries")
        _assigned(engine, principal, entry.role_id)
    entry = engine.memory.archive(memory_id, body.reason, by=author(principal, "api"))
    return Memory.of(entry)


@router.post(
    "/memories/{memory_id}/restore", responses=CHANGES, dependencies=[allow(Right.OPERATE)]
)
def restore_memory(
    memory_id: uuid.UUID, body: ReasonRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Bring an archived memory back; its decay clock restarts. 409 if it is not archived."""
    entry = engine.memory.restore(memory_id, body.reason, by=author(principal, "api"))
    return Memory.of(entry)


@router.post("/memories/{memory_id}/hold", responses=CHANGES, dependencies=[allow(Right.OPERATE)])
def hold_memory(
    memory_id: uuid.UUID, body: ReasonRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Put the memory under legal hold: decay, playbook reset, experience validation and
    archiving leave it alone until released. 409 if it already is."""
    entry = engine.memory.hold(memory_id, body.reason, by=author(principal, "api"))
    return Memory.of(entry)


@router.post(
    "/memories/{memory_id}/release", responses=CHANGES, dependencies=[allow(Right.OPERATE)]
)
def release_memory(
    memory_id: uuid.UUID, body: ReasonRequest, engine: EngineDep, principal: PrincipalDep
) -> Memory:
    """Release the memory's legal hold. 409 if it is not held."""
    entry = engine.memory.release(memory_id, body.reason, by=author(principal, "api"))
    return Memory.of(entry)


@router.post(
    "/roles/{role_id}/actors/{actor_id}/playbook/reset",
    responses=NOT_FOUND | WITH_BODY,
    dependencies=[allow(Right.OPERATE)],
)
def reset_playbook(
    role_id: uuid.UUID,
    actor_id: uuid.UUID,
    body: ReasonRequest,
    engine: EngineDep,
    principal: PrincipalDep,
) -> PlaybookReset:
    """Archive the actor's personal playbook for the role (entries under legal hold stay);
    the actor then sees the role's global blueprint again."""
    done = engine.memory.reset_playbook(role_id, actor_id, body.reason, by=author(principal, "api"))
    return PlaybookReset.of(done)


@router.get(
    "/memories/{memory_id}/influence", responses=NOT_FOUND, dependencies=[allow(Right.READ)]
)
def memory_influence(memory_id: uuid.UUID, engine: EngineDep, page: PageDep) -> InfluencePage:
    """The checkouts the memory was injected into, oldest first, each with the key and
    version it was given; kept after the memory is archived or deleted."""
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
