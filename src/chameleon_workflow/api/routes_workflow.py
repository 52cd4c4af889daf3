"""The runtime paths the prototype's clients already use (SPEC §7)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from ..domain.security import Right
from .auth import PrincipalDep, act_as, allow
from .deps import EngineDep
from .encode import plain
from .responses import responses
from .schemas import (
    CheckoutRequest,
    FailureRequest,
    GenesisRequest,
    HeartbeatRequest,
    InstantiateRequest,
    SubmitRequest,
)

router = APIRouter(tags=["workflow"], responses=responses(400, 403, 404, 409, 413, 422, 503))


@router.post("/workflow/instantiate", dependencies=[allow(Right.ADMIN)])
def instantiate(body: InstantiateRequest, engine: EngineDep) -> dict[str, Any]:
    g = engine.instances.instantiate(
        body.template_id,
        body.initial_context,
        name=body.instance_name,
        description=body.instance_description,
    )
    return {
        "workflow_id": str(g.instance.id),
        "instance_id": str(g.instance.id),
        "uow_id": str(g.uow_id),
        "status": g.status.value,
        "interaction": g.interaction,
        "message": (
            f"Instance '{g.instance.name}' created; genesis UOW {g.uow_id} is {g.status.value}."
        ),
    }


@router.post("/instances/{instance_id}/genesis", status_code=201, dependencies=[allow(Right.ADMIN)])
def genesis(instance_id: uuid.UUID, body: GenesisRequest, engine: EngineDep) -> dict[str, Any]:
    g = engine.instances.genesis(instance_id, body.initial_context)
    return {"uow_id": str(g.uow_id), "status": g.status.value, "interaction": g.interaction}


# The hot paths return JSONResponse directly: the values are already plain JSON, so
# FastAPI's response-model validation and encoding would be pure overhead.


@router.post(
    "/workflow/checkout",
    response_model=None,
    responses={204: {"description": "No eligible work is waiting for this role"}},
    dependencies=[allow(Right.WORK)],
)
def checkout(body: CheckoutRequest, engine: EngineDep, principal: PrincipalDep) -> Response:
    """Lease the oldest eligible UOW; 204 when there is no work."""
    act_as(principal, body.actor_id)
    result = engine.runtime.checkout(body.actor_id, body.role_id)
    if result is None:
        return Response(status_code=204)
    return JSONResponse(plain(result))


@router.post("/workflow/submit", response_model=None, dependencies=[allow(Right.WORK)])
def submit(body: SubmitRequest, engine: EngineDep, principal: PrincipalDep) -> JSONResponse:
    act_as(principal, body.actor_id)
    outcome = engine.runtime.submit(
        body.uow_id,
        body.actor_id,
        body.result_attributes,
        reasoning=body.reasoning,
        lease_id=body.lease_id,
        children=body.children,
    )
    where = f" in {outcome.interaction}" if outcome.interaction else ""
    return JSONResponse(
        {
            "success": True,
            "message": f"UOW {outcome.uow_id} submitted: {outcome.status.value}{where}.",
            **plain(outcome),
        }
    )


@router.post("/workflow/failure", response_model=None, dependencies=[allow(Right.WORK)])
def failure(body: FailureRequest, engine: EngineDep, principal: PrincipalDep) -> JSONResponse:
    act_as(principal, body.actor_id)
    outcome = engine.runtime.fail(
        body.uow_id, body.actor_id, body.error_code, details=body.details, lease_id=body.lease_id
    )
    return JSONResponse(
        {
            "success": True,
            "message": f"Failure recorded; UOW {outcome.uow_id} is {outcome.status.value}.",
            **plain(outcome),
        }
    )


@router.post(
    "/workflow/uow/{uow_id}/heartbeat", response_model=None, dependencies=[allow(Right.WORK)]
)
def heartbeat(
    uow_id: uuid.UUID, body: HeartbeatRequest, engine: EngineDep, principal: PrincipalDep
) -> JSONResponse:
    act_as(principal, body.actor_id)
    at = engine.runtime.heartbeat(uow_id, body.actor_id, body.lease_id)
    return JSONResponse(
        {"success": True, "message": "Heartbeat recorded.", "timestamp": at.isoformat()}
    )
