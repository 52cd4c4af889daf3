"""Instances, actors and UOWs: what a client needs to find its way."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from ..domain.enums import UowStatus
from ..domain.security import Principal, Right
from ..store.actors import ACTORS
from ..store.instances import INSTANCES
from ..store.uow_list import UOWS, UowFilter
from .auth import PrincipalDep, allow, own_only, sees_leases
from .deps import EngineDep
from .encode import plain
from .pagination import PageDep
from .responses import COMMON, WITH_BODY, responses
from .schemas import ActorRequest, AssignmentRequest
from .views import Actor, ActorDetail, Uow, UowHistory
from .views_pages import ActorPage, InstancePage, InstanceSummary

router = APIRouter(tags=["discovery"], responses=COMMON)
NOT_FOUND = responses(404)


def _instance(i: Any) -> dict[str, Any]:
    return {
        "instance_id": str(i.id),
        "template_id": str(i.template_id),
        "name": i.name,
        "description": i.description,
        "created_at": i.created_at.isoformat(),
        "status": i.status,
        "paused_at": i.paused_at.isoformat() if i.paused_at else None,
        "paused_by": i.paused_by,
        "pause_reason": i.pause_reason,
    }


@router.get("/instances", dependencies=[allow(Right.READ)])
def list_instances(engine: EngineDep, page: PageDep) -> InstancePage:
    """Instances, oldest first, one page at a time."""
    cursor = page.bind(INSTANCES)
    found = engine.instances.page(after=cursor.after, limit=page.limit)
    items = [InstanceSummary.of(i) for i in found.items]
    return InstancePage(items=items, next_cursor=cursor.next(found.next_key))


def _roles(rows: Any) -> list[dict[str, str]]:
    return [{"role_id": str(r.id), "name": r.name} for r in rows]


@router.get("/instances/{instance_id}", responses=NOT_FOUND, dependencies=[allow(Right.READ)])
def get_instance(instance_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    """The instance's roles and interactions; each interaction names the roles that read it
    (``read_by``: INBOUND components) and write it (``written_by``: OUTBOUND)."""
    d = engine.instances.describe(instance_id)
    return _instance(d["instance"]) | {
        "roles": [
            {"role_id": str(r.id), "name": r.name, "type": r.role_type, "strategy": r.strategy}
            for r in d["roles"]
        ],
        "interactions": [
            {
                "interaction_id": str(x["interaction"].id),
                "name": x["interaction"].name,
                "stale_token_limit_seconds": x["interaction"].stale_token_limit_seconds,
                "depth": x["depth"],
                "read_by": _roles(x["read_by"]),
                "written_by": _roles(x["written_by"]),
            }
            for x in d["interactions"]
        ],
        "ate_interaction": d["ate_interaction"],
        "chronos_interaction": d["chronos_interaction"],
    }


@router.post("/actors", status_code=201, responses=WITH_BODY, dependencies=[allow(Right.ADMIN)])
def create_actor(body: ActorRequest, engine: EngineDep) -> dict[str, Any]:
    return {"actor_id": str(engine.instances.create_actor(body.name, body.type))}


@router.get("/actors", dependencies=[allow(Right.READ)])
def list_actors(engine: EngineDep, page: PageDep) -> ActorPage:
    """Actors, oldest first, one page at a time."""
    cursor = page.bind(ACTORS)
    found = engine.instances.actor_page(after=cursor.after, limit=page.limit)
    items = [Actor.of(a) for a in found.items]
    return ActorPage(items=items, next_cursor=cursor.next(found.next_key))


@router.get("/actors/{actor_id}", responses=NOT_FOUND, dependencies=[allow(Right.READ, own=True)])
def get_actor(actor_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep) -> ActorDetail:
    own_only(principal, principal.actor_id == actor_id, "actor record")
    return ActorDetail.of(engine.instances.actor(actor_id))


@router.post(
    "/actors/{actor_id}/assignments",
    status_code=201,
    responses=NOT_FOUND | WITH_BODY,
    dependencies=[allow(Right.ADMIN)],
)
def assign(actor_id: uuid.UUID, body: AssignmentRequest, engine: EngineDep) -> dict[str, Any]:
    created = engine.instances.assign(actor_id, body.role_id)
    return {"actor_id": str(actor_id), "role_id": str(body.role_id), "created": created}


@router.get("/uows", responses=NOT_FOUND, dependencies=[allow(Right.READ)])
def list_uows(
    engine: EngineDep,
    page: PageDep,
    instance_id: uuid.UUID | None = None,
    status: UowStatus | None = None,
    role_id: uuid.UUID | None = None,
    interaction_id: uuid.UUID | None = None,
    actor_id: Annotated[
        uuid.UUID | None, Query(description="The actor holding the UOW's lease now")
    ] = None,
    updated_before: Annotated[AwareDatetime | None, Query(description="Strictly before")] = None,
    updated_after: Annotated[AwareDatetime | None, Query(description="Strictly after")] = None,
) -> dict[str, Any]:
    """Units of work, newest-updated first, each with its failure reason; page with
    ``next_cursor`` (null on the last page). Named ids that do not exist are 404s."""
    f = UowFilter(
        instance_id=instance_id,
        status=status,
        role_id=role_id,
        interaction_id=interaction_id,
        lease_holder_id=actor_id,
        updated_before=updated_before,
        updated_after=updated_after,
    )
    # The cursor does not remember the filters (docs/api.md): it is bound to the list only.
    cursor = page.bind(UOWS)
    found = engine.instances.list_uows(f, limit=page.limit, after=cursor.after)
    return {"items": plain(found.items), "next_cursor": cursor.next(found.next_key)}


@router.get(
    "/uows/{uow_id}",
    response_model=Uow,
    responses=NOT_FOUND,
    dependencies=[allow(Right.READ, own=True)],
)
def get_uow(uow_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep) -> Any:
    """The UOW; ``lease_id`` only for admin keys (absent otherwise: a lease is a secret)."""
    check_held(engine, principal, uow_id)
    view = Uow.of(engine.instances.uow(uow_id))
    if sees_leases(principal):
        return view
    return JSONResponse(view.model_dump(mode="json", exclude={"lease_id"}))


@router.get(
    "/uows/{uow_id}/history", responses=NOT_FOUND, dependencies=[allow(Right.READ, own=True)]
)
def uow_history(uow_id: uuid.UUID, engine: EngineDep, principal: PrincipalDep) -> UowHistory:
    """Attribute versions and transitions; the lease ids of checkouts only for admin keys."""
    check_held(engine, principal, uow_id)
    return UowHistory.of(engine.instances.history(uow_id), show_lease=sees_leases(principal))


def check_held(engine: EngineDep, principal: Principal, uow_id: uuid.UUID) -> None:
    """An actor key reads only UOWs its actor holds or once held."""
    if principal.actor_id is not None and principal.is_bound:
        held = engine.instances.held_by(uow_id, principal.actor_id)
        own_only(principal, held, "UOWs (those it holds or held)")
