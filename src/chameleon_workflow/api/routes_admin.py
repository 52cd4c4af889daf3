"""Operators' endpoints: run the background services on demand, mark toxic memories, look back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..domain.enums import Trigger
from ..domain.security import Right
from ..engine.maintenance import RunOutcome
from ..engine.toxic import ToxicChange
from ..store.maintenance.runs import RUNS
from ..store.maintenance.toxic import EVENTS
from ..store.maintenance.zombies import CANDIDATES
from .auth import PrincipalDep, allow, author
from .deps import EngineDep
from .pagination import PageDep
from .responses import COMMON, WITH_BODY, responses
from .schemas_admin import (
    BulkToxicRequest,
    MemoryDecayRequest,
    StaleTokenProtocolRequest,
    ToxicRequest,
    ZombieProtocolRequest,
)
from .views_admin import MaintenanceRun, Scheduler, ToxicEvent, sample
from .views_pages import MaintenanceRunPage, ToxicEventPage, ZombiePage

router = APIRouter(prefix="/admin", tags=["admin"], responses=COMMON)
NOT_FOUND = responses(404)


def _run_fields(run: RunOutcome) -> dict[str, Any]:
    fields: dict[str, Any] = {"run_id": run.run_id, "dry_run": run.dry_run, **run.counts}
    if run.dry_run:
        fields["sample"] = sample(run.sample)
    return fields


@router.post("/run-zombie-protocol", responses=WITH_BODY, dependencies=[allow(Right.OPERATE)])
def run_zombie_protocol(
    engine: EngineDep, body: ZombieProtocolRequest | None = None
) -> dict[str, Any]:
    body = body or ZombieProtocolRequest()
    run = engine.maintenance.zombie_sweep(
        body.timeout_seconds,
        dry_run=body.dry_run,
        batch_size=body.batch_size,
        trigger=Trigger.ADMIN,
    )
    n = run.counts.get("reclaimed", 0)
    message = f"Zombie protocol completed. Reclaimed {n} zombie token(s)."
    if run.dry_run:
        message = f"Dry run: {run.counts['candidates']} zombie token(s) would be reclaimed."
    return {"success": True, "zombies_reclaimed": n, "message": message} | _run_fields(run)


@router.post("/run-stale-token-protocol", responses=WITH_BODY, dependencies=[allow(Right.OPERATE)])
def run_stale_token_protocol(
    engine: EngineDep, body: StaleTokenProtocolRequest | None = None
) -> dict[str, Any]:
    body = body or StaleTokenProtocolRequest()
    run = engine.maintenance.stale_token_sweep(
        dry_run=body.dry_run, batch_size=body.batch_size, trigger=Trigger.ADMIN
    )
    n = run.counts.get("moved", 0)
    message = f"Stale token protocol completed. Moved {n} stale token(s) to Chronos."
    if run.dry_run:
        message = f"Dry run: {run.counts['candidates']} stale token(s) would be moved to Chronos."
    return {"success": True, "tokens_moved": n, "message": message} | _run_fields(run)


@router.post(
    "/run-memory-decay", responses=NOT_FOUND | WITH_BODY, dependencies=[allow(Right.OPERATE)]
)
def run_memory_decay(engine: EngineDep, body: MemoryDecayRequest | None = None) -> dict[str, Any]:
    body = body or MemoryDecayRequest()
    run = engine.maintenance.memory_decay(
        body.retention_days,
        dry_run=body.dry_run,
        archive=body.archive,
        instance_id=body.instance_id,
        batch_size=body.batch_size,
        trigger=Trigger.ADMIN,
    )
    n = run.counts.get("deleted", 0)
    verb = "Archived" if body.archive else "Deleted"
    message = f"Memory decay completed. {verb} {n} stale memory entries."
    if run.dry_run:
        message = f"Dry run: {run.counts['candidates']} stale memory entries would be removed."
    return {"success": True, "memories_deleted": n, "message": message} | _run_fields(run)


def _toxic_result(change: ToxicChange) -> dict[str, Any]:
    m = change.memory_id
    if not change.found:
        return {
            "memory_id": str(m),
            "success": False,
            "status": 404,
            "message": f"Memory {m} does not exist.",
        }
    if not change.changed:
        return {"memory_id": str(m), "success": True, "status": 200, "changed": False,
                "message": f"Memory {m} was already marked as toxic."}  # fmt: skip
    return {"memory_id": str(m), "success": True, "status": 200, "changed": True,
            "message": f"Memory {m} successfully marked as toxic."}  # fmt: skip


@router.post("/mark-toxic", responses=NOT_FOUND | WITH_BODY, dependencies=[allow(Right.OPERATE)])
def mark_toxic(body: ToxicRequest, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    change = engine.toxic.mark(body.memory_id, body.reason, by=author(principal, body.by))
    result = _toxic_result(change)
    return {"success": True, "message": result["message"], "changed": change.changed}


@router.post("/mark-toxic/bulk", responses=WITH_BODY, dependencies=[allow(Right.OPERATE)])
def mark_toxic_bulk(
    body: BulkToxicRequest, engine: EngineDep, principal: PrincipalDep
) -> dict[str, Any]:
    changes = engine.toxic.mark_many(body.memory_ids, body.reason, by=author(principal, body.by))
    results = [_toxic_result(c) for c in changes]
    return {
        "success": True,
        "marked": sum(c.changed for c in changes),
        "not_found": sum(not c.found for c in changes),
        "results": results,
    }


@router.post("/unmark-toxic", responses=NOT_FOUND | WITH_BODY, dependencies=[allow(Right.OPERATE)])
def unmark_toxic(body: ToxicRequest, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    change = engine.toxic.unmark(body.memory_id, body.reason, by=author(principal, body.by))
    m = body.memory_id
    message = (
        f"Memory {m} is no longer marked as toxic."
        if change.changed
        else f"Memory {m} was not marked as toxic."
    )
    return {"success": True, "message": message, "changed": change.changed}


@router.get(
    "/memories/{memory_id}/toxic-history", responses=NOT_FOUND, dependencies=[allow(Right.READ)]
)
def toxic_history(memory_id: uuid.UUID, engine: EngineDep, page: PageDep) -> ToxicEventPage:
    """Changes of the memory's toxic mark, oldest first."""
    cursor = page.bind(EVENTS, memory_id)
    found = engine.toxic.history_page(memory_id, after=cursor.after, limit=page.limit)
    items = [ToxicEvent.of(e) for e in found.items]
    return ToxicEventPage(items=items, next_cursor=cursor.next(found.next_key))


@router.get("/zombies", dependencies=[allow(Right.READ)])
def zombies(
    engine: EngineDep,
    page: PageDep,
    timeout_seconds: Annotated[int | None, Query(gt=0)] = None,
) -> ZombiePage:
    """The UOWs a zombie sweep would reclaim now, longest silent first; nothing changes."""
    cursor = page.bind(CANDIDATES, timeout_seconds)
    found = engine.maintenance.zombie_candidates(
        timeout_seconds, after=cursor.after, limit=page.limit
    )
    return ZombiePage.of(found, cursor.next(found.next_key))


@router.get("/maintenance-runs", dependencies=[allow(Right.READ)])
def maintenance_runs(
    engine: EngineDep, page: PageDep, job: str | None = None
) -> MaintenanceRunPage:
    """Recorded runs of the background services, newest first."""
    cursor = page.bind(RUNS, job)
    found = engine.maintenance.run_page(job=job, after=cursor.after, limit=page.limit)
    items = [MaintenanceRun.of(r) for r in found.items]
    return MaintenanceRunPage(items=items, next_cursor=cursor.next(found.next_key))


@router.get("/scheduler", dependencies=[allow(Right.READ)])
def scheduler(engine: EngineDep) -> Scheduler:
    """Which replica leads each scheduled job, and until when."""
    return Scheduler.of(engine.maintenance.leadership())
