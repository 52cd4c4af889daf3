"""Instances, actors and UOWs: what a client needs to find its way."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from .deps import EngineDep
from .encode import plain
from .schemas import ActorRequest, AssignmentRequest

router = APIRouter(tags=["discovery"])


def _instance(i: Any) -> dict[str, Any]:
    return {
        "instance_id": str(i.id),
        "template_id": str(i.template_id),
        "name": i.name,
        "description": i.description,
        "created_at": i.created_at.isoformat(),
    }


@router.get("/instances")
def list_instances(engine: EngineDep) -> list[dict[str, Any]]:
    return [_instance(i) for i in engine.instances.list()]


@router.get("/instances/{instance_id}")
def get_instance(instance_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
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
            }
            for x in d["interactions"]
        ],
        "ate_interaction": d["ate_interaction"],
        "chronos_interaction": d["chronos_interaction"],
    }


@router.post("/actors", status_code=201)
def create_actor(body: ActorRequest, engine: EngineDep) -> dict[str, Any]:
    return {"actor_id": str(engine.instances.create_actor(body.name, body.type))}


@router.get("/actors")
def list_actors(engine: EngineDep) -> list[dict[str, Any]]:
    return plain(engine.instances.list_actors())


@router.get("/actors/{actor_id}")
def get_actor(actor_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    return plain(engine.instances.actor(actor_id))


@router.post("/actors/{actor_id}/assignments", status_code=201)
def assign(actor_id: uuid.UUID, body: AssignmentRequest, engine: EngineDep) -> dict[str, Any]:
    created = engine.instances.assign(actor_id, body.role_id)
    return {"actor_id": str(actor_id), "role_id": str(body.role_id), "created": created}


@router.get("/uows/{uow_id}")
def get_uow(uow_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    return plain(engine.instances.uow(uow_id))


@router.get("/uows/{uow_id}/history")
def uow_history(uow_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    return plain(engine.instances.history(uow_id))
