"""Interventions: an agent's request, a pilot's answers, the inbox and its metrics.

Paths kept from the prototype's clients: ``POST /workflow/uow/{uow_id}/intervention``,
``POST /pilot/resume|cancel|clarification/{uow_id}`` and ``/api/interventions/*``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Self

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from ..domain.enums import InterventionType, Priority
from ..domain.memory import MAX_REASON_LENGTH
from ..domain.security import Right
from ..engine.interventions import (
    MAX_TEXT,
    MAX_WAIT_SECONDS,
    Decision,
    InterventionMetrics,
    InterventionRecord,
    Resolution,
)
from ..store.interventions import INBOX
from .auth import PrincipalDep, act_as, allow, author, own_only
from .deps import EngineDep
from .pagination import PageDep
from .responses import COMMON, responses
from .schemas import Body, NonBlank
from .views import Time, View
from .views_pages import NEXT

router = APIRouter(tags=["pilot"], responses=COMMON)
ANSWER = responses(400, 404, 409, 413, 422)

# How often a long-poll (``?wait=``) reads the request again.
POLL_SECONDS = 0.5

Reason = Field(min_length=1, max_length=MAX_REASON_LENGTH, pattern=r"\S")


# --- bodies ----------------------------------------------------------------------------------


class InterventionRequest(Body):
    actor_id: uuid.UUID
    lease_id: uuid.UUID | None = None
    type: InterventionType = InterventionType.APPROVAL
    title: str = NonBlank
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    priority: Priority = Priority.NORMAL


class PilotReason(Body):
    reason: str = Reason


class ClarificationBody(Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")


# --- answers ---------------------------------------------------------------------------------


class Intervention(View):
    """A request for a pilot, as it now stands."""

    id: uuid.UUID
    instance_id: uuid.UUID
    uow_id: uuid.UUID
    type: str
    status: str
    priority: str
    title: str
    description: str | None
    source: str
    guardian_name: str | None
    requested_by: str
    actor_id: uuid.UUID | None
    resume_interaction_id: uuid.UUID | None
    on_expiry: str | None
    created_at: Time
    expires_at: Time | None
    resolved_at: Time | None
    resolved_by: str | None
    resolution: str | None

    @classmethod
    def of(cls, r: InterventionRecord) -> Self:
        return cls(
            id=r.id, instance_id=r.instance_id, uow_id=r.uow_id, type=r.type, status=r.status,
            priority=r.priority, title=r.title, description=r.description, source=r.source,
            guardian_name=r.guardian_name, requested_by=r.requested_by, actor_id=r.actor_id,
            resume_interaction_id=r.resume_interaction_id, on_expiry=r.on_expiry,
            created_at=r.created_at, expires_at=r.expires_at, resolved_at=r.resolved_at,
            resolved_by=r.resolved_by, resolution=r.resolution,
        )  # fmt: skip


class PilotAnswer(View):
    """What a pilot's answer did: the request, and where its UOW is now."""

    success: bool
    message: str
    uow_id: uuid.UUID
    uow_status: str
    interaction_id: uuid.UUID | None
    intervention: Intervention

    @classmethod
    def of(cls, r: Resolution) -> Self:
        i = r.intervention
        message = f"Request {i.id} {i.status}; UOW {i.uow_id} is {r.uow_status}."
        return cls(
            success=True, message=message, uow_id=i.uow_id, uow_status=r.uow_status,
            interaction_id=r.interaction_id, intervention=Intervention.of(i),
        )  # fmt: skip


class InterventionPage(View):
    """Pending requests: critical, high, normal, low, then oldest first."""

    items: list[Intervention]
    next_cursor: str | None = NEXT


class Metrics(View):
    total: int
    pending: int
    approved: int
    rejected: int
    expired: int
    average_resolution_seconds: float | None = Field(
        description="Mean seconds from request to resolution (null: none resolved yet)."
    )
    by_type: dict[str, int]
    by_priority: dict[str, int]

    @classmethod
    def of(cls, m: InterventionMetrics) -> Self:
        return cls(
            total=m.total, pending=m.pending, approved=m.approved, rejected=m.rejected,
            expired=m.expired, average_resolution_seconds=m.average_resolution_seconds,
            by_type=m.by_type, by_priority=m.by_priority,
        )  # fmt: skip


# --- an agent asks -------------------------------------------------------------------------------


@router.post(
    "/workflow/uow/{uow_id}/intervention",
    status_code=201,
    responses=ANSWER,
    dependencies=[allow(Right.WORK)],
)
def request_intervention(
    uow_id: uuid.UUID, body: InterventionRequest, engine: EngineDep, principal: PrincipalDep
) -> Intervention:
    """Park the work the actor holds for a pilot (its lease ends); wait for the answer with
    ``GET /api/interventions/{id}?wait=30``."""
    act_as(principal, body.actor_id)
    made = engine.interventions.request(
        uow_id,
        body.actor_id,
        type=body.type,
        title=body.title,
        description=body.description,
        priority=body.priority,
        lease_id=body.lease_id,
    )
    return Intervention.of(made)


# --- a pilot answers, by UOW ---------------------------------------------------------------------


@router.post("/pilot/resume/{uow_id}", responses=ANSWER, dependencies=[allow(Right.OPERATE)])
def pilot_resume(
    uow_id: uuid.UUID, body: PilotReason, engine: EngineDep, principal: PrincipalDep
) -> PilotAnswer:
    """Approve the UOW's pending request: it goes on where it was going."""
    by = author(principal, "api")
    return PilotAnswer.of(
        engine.interventions.answer_uow(uow_id, Decision.APPROVE, body.reason, by=by)
    )


@router.post("/pilot/cancel/{uow_id}", responses=ANSWER, dependencies=[allow(Right.OPERATE)])
def pilot_cancel(
    uow_id: uuid.UUID, body: PilotReason, engine: EngineDep, principal: PrincipalDep
) -> PilotAnswer:
    """Reject the UOW's pending request: FAILED in the EPSILON (Ate) queue, with the reason."""
    by = author(principal, "api")
    return PilotAnswer.of(
        engine.interventions.answer_uow(uow_id, Decision.REJECT, body.reason, by=by)
    )


@router.post("/pilot/clarification/{uow_id}", responses=ANSWER, dependencies=[allow(Right.OPERATE)])
def pilot_clarification(
    uow_id: uuid.UUID, body: ClarificationBody, engine: EngineDep, principal: PrincipalDep
) -> PilotAnswer:
    """Answer the UOW's pending clarification request: the text is added to its
    ``_pilot_clarifications`` attribute (seen at the next checkout) and it goes PENDING."""
    by = author(principal, "api")
    return PilotAnswer.of(
        engine.interventions.answer_uow(uow_id, Decision.CLARIFY, body.text, by=by)
    )


# --- the inbox ----------------------------------------------------------------------------------
# The fixed paths come before /{request_id}, which matches UUIDs only.


@router.get("/api/interventions/pending", dependencies=[allow(Right.READ)])
def pending_interventions(
    engine: EngineDep,
    page: PageDep,
    instance_id: uuid.UUID | None = None,
    type: InterventionType | None = None,
) -> InterventionPage:
    """Pending requests, critical first, then oldest; one page at a time."""
    cursor = page.bind(INBOX, instance_id, type.value if type else None)
    found = engine.interventions.pending(
        instance_id=instance_id, type=type, after=cursor.after, limit=page.limit
    )
    items = [Intervention.of(r) for r in found.items]
    return InterventionPage(items=items, next_cursor=cursor.next(found.next_key))


@router.get("/api/interventions/metrics", dependencies=[allow(Right.READ)])
def intervention_metrics(engine: EngineDep) -> Metrics:
    """How many requests there are by status, type and priority, and how long answers take."""
    return Metrics.of(engine.interventions.metrics())


@router.get(
    "/api/interventions/{request_id:uuid}",
    responses=responses(404),
    dependencies=[allow(Right.READ, own=True)],
)
async def get_intervention(
    request_id: uuid.UUID,
    engine: EngineDep,
    principal: PrincipalDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to wait while the request is pending (long-poll): the "
            "answer comes as soon as it is resolved, or when the time is up.",
        ),
    ] = 0,
) -> Intervention:
    """One request; an actor key reads only the requests its actor raised."""
    found = await run_in_threadpool(engine.interventions.get, request_id)
    own_only(principal, found.actor_id == principal.actor_id, "intervention requests")
    deadline = time.monotonic() + wait
    while found.pending and time.monotonic() < deadline:
        # No connection is held between reads, and the event loop is free meanwhile.
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        found = await run_in_threadpool(engine.interventions.get, request_id)
    return Intervention.of(found)


@router.post(
    "/api/interventions/{request_id:uuid}/approve",
    responses=ANSWER,
    dependencies=[allow(Right.OPERATE)],
)
def approve_intervention(
    request_id: uuid.UUID, body: PilotReason, engine: EngineDep, principal: PrincipalDep
) -> PilotAnswer:
    """Approve the request (as ``/pilot/resume`` on its UOW), in one transaction."""
    by = author(principal, "api")
    return PilotAnswer.of(
        engine.interventions.answer(request_id, Decision.APPROVE, body.reason, by=by)
    )


@router.post(
    "/api/interventions/{request_id:uuid}/reject",
    responses=ANSWER,
    dependencies=[allow(Right.OPERATE)],
)
def reject_intervention(
    request_id: uuid.UUID, body: PilotReason, engine: EngineDep, principal: PrincipalDep
) -> PilotAnswer:
    """Reject the request (as ``/pilot/cancel`` on its UOW), in one transaction."""
    by = author(principal, "api")
    return PilotAnswer.of(
        engine.interventions.answer(request_id, Decision.REJECT, body.reason, by=by)
    )
