"""The pilot's kill switch: pause an instance and all its live work; resume it."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from ..domain.memory import MAX_REASON_LENGTH
from ..domain.security import Right
from .auth import PrincipalDep, allow, author
from .deps import EngineDep
from .responses import COMMON, WITH_BODY, responses
from .schemas import Body

router = APIRouter(prefix="/pilot", tags=["pilot"], responses=COMMON | WITH_BODY)
ANSWERS = responses(404, 409)

Reason = Field(min_length=1, max_length=MAX_REASON_LENGTH, pattern=r"\S")


class KillSwitchRequest(Body):
    instance_id: uuid.UUID
    reason: str = Reason


class ResumeRequest(Body):
    reason: str = Reason


@router.post("/kill-switch", responses=ANSWERS, dependencies=[allow(Right.ADMIN)])
def kill_switch(body: KillSwitchRequest, engine: EngineDep, principal: PrincipalDep) -> Any:
    """Pause the instance: its PENDING, ACTIVE and FAILED work becomes PAUSED (held leases
    end), checkouts for its roles find nothing and genesis is refused until it is resumed.
    409 ``InvalidState`` if it is already paused."""
    out = engine.kill_switch.pause(body.instance_id, body.reason, by=author(principal, "api"))
    return {
        "success": True,
        "message": (
            f"Instance {out.instance_id} is PAUSED; {out.paused_uow_count} unit(s) of work paused."
        ),
        "paused_uow_count": out.paused_uow_count,
        "instance_id": str(out.instance_id),
        "status": "PAUSED",
        "paused_at": out.paused_at.isoformat(),
        "paused_by": out.paused_by,
    }


@router.post(
    "/instances/{instance_id}/resume", responses=ANSWERS, dependencies=[allow(Right.OPERATE)]
)
def resume_instance(
    instance_id: uuid.UUID, body: ResumeRequest, engine: EngineDep, principal: PrincipalDep
) -> Any:
    """Put the instance's paused work back where it was (oldest first, as before) and the
    instance to ACTIVE. 409 ``InvalidState`` if it is not paused."""
    out = engine.kill_switch.resume(instance_id, body.reason, by=author(principal, "api"))
    return {
        "success": True,
        "message": (
            f"Instance {out.instance_id} is ACTIVE; {out.resumed_uow_count} unit(s) of work "
            "resumed."
        ),
        "resumed_uow_count": out.resumed_uow_count,
        "instance_id": str(out.instance_id),
        "status": "ACTIVE",
    }
