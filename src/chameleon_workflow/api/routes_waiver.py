"""The pilot's waiver: ``POST /pilot/waive/{uow_id}/{guardian_name}`` (admin keys only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path

from ..domain.security import Right
from .auth import PrincipalDep, allow, author
from .deps import EngineDep
from .responses import COMMON, WITH_BODY, responses
from .schemas import Body
from .schemas_admin import Reason

router = APIRouter(prefix="/pilot", tags=["pilot"], responses=COMMON)

GuardianName = Annotated[str, Path(min_length=1, max_length=200)]


class WaiveRequest(Body):
    reason: Reason


@router.post(
    "/waive/{uow_id}/{guardian_name}",
    responses=responses(404, 409) | WITH_BODY,
    dependencies=[allow(Right.ADMIN)],
)
def waive_guardian(
    uow_id: uuid.UUID,
    guardian_name: GuardianName,
    body: WaiveRequest,
    engine: EngineDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """A UOW the guardian rejected at checkout (FAILED in the Ate queue) goes back PENDING to
    the interaction the guardian stopped it at, and the guardian lets it pass once.

    404: no such UOW, or its workflow has no such guardian; 409: that guardian did not
    reject it (the message names its status, or the guardian that did); 422: blank reason.
    """
    done = engine.waivers.waive(uow_id, guardian_name, body.reason, author(principal, "api"))
    return {
        "success": True,
        "message": (
            f"Guardian {done.guardian_name!r} waived once for UOW {done.uow_id}; it is "
            f"{done.status.value} in {done.interaction}."
        ),
        "uow_id": str(done.uow_id),
        "guardian_name": done.guardian_name,
        "waiver_id": done.waiver_id,
        "status": done.status.value,
        "interaction": done.interaction,
    }
