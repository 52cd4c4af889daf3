"""What a submit does: version attributes, learn, then finalize, decompose or route."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain.definition import ComponentDef
from ..domain.enums import MemoryScope, RoleType, Strategy, UowStatus
from ..domain.errors import InvalidInput, InvalidState
from ..domain.failures import FailureRecord
from ..domain.guardians import RouteDecision, choose_route
from ..domain.memory import check_key, check_reason, check_value
from ..store import memory, uows
from ..store.work import LogEntry, RoutedSubmit, UowState
from .parking import park
from .pilot_checks import check_route
from .records import attribute_rows, check_attributes, log_row, metadata, new_uow
from .replay import SUBMIT, recorded
from .topology import Topology

MAX_CHILDREN = 10_000


@dataclass(frozen=True)
class SubmitOutcome:
    uow_id: uuid.UUID
    status: UowStatus
    interaction: str | None
    route: str
    versions_written: int
    children: list[uuid.UUID] = field(default_factory=list)
    learned_memory_id: uuid.UUID | None = None
    # The request a pilot check parked the UOW with (status PENDING_PILOT_APPROVAL).
    intervention_id: uuid.UUID | None = None
    replayed: bool = False

    @classmethod
    def replay(cls, data: Mapping[str, Any]) -> SubmitOutcome:
        """The outcome recorded as :func:`.records.outcome_json`, marked as replayed."""
        learned = data["learned_memory_id"]
        parked = data.get("intervention_id")
        return cls(
            uow_id=uuid.UUID(data["uow_id"]),
            status=UowStatus(data["status"]),
            interaction=data["interaction"],
            route=data["route"],
            versions_written=data["versions_written"],
            children=[uuid.UUID(c) for c in data["children"]],
            learned_memory_id=uuid.UUID(learned) if learned else None,
            intervention_id=uuid.UUID(parked) if parked else None,
            replayed=True,
        )


@dataclass(frozen=True)
class _Ctx:
    conn: Connection | None  # None while only deciding (a plain submit's route)
    topo: Topology
    row: UowState
    actor_id: uuid.UUID
    role_id: uuid.UUID
    reasoning: str | None
    now: datetime

    @property
    def db(self) -> Connection:
        assert self.conn is not None, "a plain submit's route is decided without writing"
        return self.conn


def apply_submit(
    conn: Connection,
    topo: Topology,
    row: UowState,
    latest: dict[str, tuple[int, Any]],
    actor_id: uuid.UUID,
    result: dict[str, Any],
    reasoning: str | None,
    children: list[Any] | None,
    now: datetime,
) -> SubmitOutcome:
    """Apply a submit by the lease holder of ``row`` (already locked and checked)."""
    assert row.current_role_id is not None
    ctx = _Ctx(conn, topo, row, actor_id, row.current_role_id, reasoning, now)
    role_type = topo.role_type(ctx.role_id)
    learned = result.pop("_learned_rule", None)
    changes = check_attributes(result, "result_attributes")
    child_attrs = _check_children(children, role_type, row)
    learned_id = _learn(ctx, learned) if learned is not None else None

    versions, merged = _new_versions(ctx, changes, latest)
    uows.insert_attributes(conn, versions)

    parked = None
    if role_type is RoleType.OMEGA:
        outcome = _finalize(ctx)
    elif child_attrs:
        outcome = _decompose(ctx, merged, child_attrs)
    else:
        outcome, parked = _route(ctx, merged)
    if row.parent_id is not None:
        uows.refresh_finished_children(conn, [row.parent_id])
    return SubmitOutcome(
        uow_id=row.id,
        status=outcome[0],
        interaction=topo.interaction_name(outcome[1]),
        route=outcome[2],
        versions_written=len(versions),
        children=outcome[3],
        learned_memory_id=learned_id,
        intervention_id=parked,
    )


def _new_versions(
    ctx: _Ctx, changes: dict[str, Any], latest: dict[str, tuple[int, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The attribute versions a submit writes, and the attributes as they will then be."""
    versions = attribute_rows(
        ctx.row.id, changes, latest, actor_id=ctx.actor_id, reasoning=ctx.reasoning, now=ctx.now
    )
    return versions, {k: v for k, (_, v) in latest.items()} | changes


_Result = tuple[UowStatus, uuid.UUID | None, str, list[uuid.UUID]]


def _check_children(
    children: list[Any] | None, role_type: RoleType, row: UowState
) -> list[dict[str, Any]]:
    if not children:
        return []
    if role_type is not RoleType.BETA:
        raise InvalidInput(f"only BETA roles may decompose work; this is a {role_type} role")
    if row.parent_id is not None:
        raise InvalidInput("a child UOW cannot be decomposed again (one level of children)")
    if row.child_count:
        raise InvalidState(f"UOW {row.id} has already been decomposed", uow_id=str(row.id))
    if len(children) > MAX_CHILDREN:
        raise InvalidInput(f"at most {MAX_CHILDREN} children per submit (got {len(children)})")
    return [check_attributes(c, f"children[{i}]") for i, c in enumerate(children)]


def _learn(ctx: _Ctx, learned: Any) -> uuid.UUID:
    """Write `_learned_rule` to the actor's personal playbook for this role."""
    if not isinstance(learned, dict) or set(learned) - {"key", "value", "confidence", "reasoning"}:
        raise InvalidInput(
            "_learned_rule must be an object {key, value[, confidence][, reasoning]}"
        )
    key = check_key(learned.get("key"), "_learned_rule.key")
    if "value" not in learned:
        raise InvalidInput("_learned_rule.value is required")
    confidence = learned.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 <= confidence <= 1
    ):
        raise InvalidInput("_learned_rule.confidence must be a number between 0 and 1")
    reasoning = check_reason(learned.get("reasoning"), "_learned_rule.reasoning", required=False)
    check_value(learned["value"], "_learned_rule.value")
    row = memory.upsert(
        ctx.db,
        instance_id=ctx.topo.id,
        role_id=ctx.role_id,
        scope=MemoryScope.ACTOR,
        actor_id=ctx.actor_id,
        key=key,
        value=learned["value"],
        confidence=confidence,
        provenance=memory.Provenance(
            written_by=f"actor {ctx.actor_id} (submit)",
            reasoning=reasoning or f"learned while working on UOW {ctx.row.id}",
            source_uow_id=ctx.row.id,
            source_actor_id=ctx.actor_id,
        ),
        now=ctx.now,
    )
    return row.id


def _finalize(ctx: _Ctx) -> _Result:
    uows.log(ctx.db, [_submit_log(ctx)])
    uows.finalize_set(ctx.db, ctx.row.id, actor_id=ctx.actor_id, role_id=ctx.role_id, now=ctx.now)
    return UowStatus.COMPLETED, ctx.row.current_interaction_id, "finalized by OMEGA", []


def _destination(
    ctx: _Ctx, decision: RouteDecision, during: str = "submit"
) -> tuple[UowStatus, uuid.UUID | None, Any]:
    if decision.component is not None:
        return UowStatus.PENDING, ctx.topo.interaction_ids[decision.component.interaction], None
    failure = FailureRecord.routing_error(
        decision.reason,
        during=during,
        at=ctx.now,
        role=ctx.topo.role(ctx.role_id).name,
        actor_id=ctx.actor_id,
    )
    return UowStatus.FAILED, ctx.topo.ate_id, failure.as_json()


@dataclass(frozen=True)
class _Routing:
    status: UowStatus
    target: uuid.UUID | None
    failure: dict[str, Any] | None
    reason: str
    logs: list[LogEntry]
    route: ComponentDef | None = None


def _routing(ctx: _Ctx, merged: dict[str, Any]) -> _Routing:
    """Where a plain submit goes, and the log rows that say so."""
    role_name = ctx.topo.role(ctx.role_id).name
    decision = choose_route(ctx.topo.defn, role_name, merged, metadata(ctx.row), ctx.now)
    status, target, failure = _destination(ctx, decision)
    details = {"route": decision.reason, **({"failure": failure} if failure else {})}
    logs = [
        _submit_log(ctx),
        log_row(
            ctx.row,
            "route" if failure is None else "routing_error",
            ctx.now,
            actor_id=ctx.actor_id,
            role_id=ctx.role_id,
            to_interaction_id=target,
            to_status=status.value,
            from_status=UowStatus.ACTIVE.value,
            details=details,
        ),
    ]
    return _Routing(status, target, failure, decision.reason, logs, decision.component)


def _route(ctx: _Ctx, merged: dict[str, Any]) -> tuple[_Result, uuid.UUID | None]:
    """Move the UOW where its route goes, unless a pilot check parks it; and the request's
    id when one did."""
    r = _routing(ctx, merged)
    role_name = ctx.topo.role(ctx.role_id).name
    if r.route is not None and role_name in ctx.topo.defn.pilot_checked_roles:
        stop = check_route(ctx.db, ctx.topo, ctx.row, r.route, merged, ctx.now)
        if stop is not None:
            uows.log(ctx.db, [_submit_log(ctx)])
            request_id = park(
                ctx.db, ctx.row, stop, now=ctx.now, actor_id=ctx.actor_id, role_id=ctx.role_id
            )
            reason = f"parked for a pilot ({stop.source}): {stop.title}"
            here = ctx.row.current_interaction_id
            return (UowStatus.PENDING_PILOT_APPROVAL, here, reason, []), request_id
    uows.move(
        ctx.db,
        ctx.row.id,
        status=r.status,
        interaction_id=r.target,
        now=ctx.now,
        failure=r.failure,
        logs=r.logs,
    )
    return (r.status, r.target, r.reason, []), None


def plain_submit(
    result: Mapping[str, Any],
    children: list[Any] | None,
    topo: Topology | None = None,
    uow: UowState | None = None,
) -> bool:
    """Whether a submit only versions attributes and routes (one fenced write): no
    children, nothing learned, and (once the UOW is known) neither a child nor at OMEGA, nor
    in a role whose routes a pilot check may stop (an approval gate or a loop guard).

    The one place this is decided: the runtime asks it before reading the UOW (request
    only) and again after (with the UOW).
    """
    if children or "_learned_rule" in result:
        return False
    if topo is None or uow is None:
        return True
    return (
        uow.parent_id is None
        and uow.current_role_id is not None
        and topo.role_type(uow.current_role_id) is not RoleType.OMEGA
        and topo.role(uow.current_role_id).name not in topo.defn.pilot_checked_roles
    )


def routed_submit(
    topo: Topology,
    uow: UowState,
    latest: dict[str, tuple[int, Any]],
    actor_id: uuid.UUID,
    result: dict[str, Any],
    reasoning: str | None,
    digest: str,
    now: datetime,
) -> tuple[SubmitOutcome, RoutedSubmit]:
    """A plain submit's outcome and the fenced write that applies it (nothing written yet).

    The write also records the outcome under the lease (``digest`` is the request's hash).
    """
    assert uow.current_role_id is not None
    ctx = _Ctx(None, topo, uow, actor_id, uow.current_role_id, reasoning, now)
    changes = check_attributes(result, "result_attributes")
    versions, merged = _new_versions(ctx, changes, latest)
    r = _routing(ctx, merged)
    outcome = SubmitOutcome(
        uow_id=uow.id,
        status=r.status,
        interaction=topo.interaction_name(r.target),
        route=r.reason,
        versions_written=len(versions),
    )
    write = RoutedSubmit(
        uow=uow,
        actor_id=actor_id,
        reasoning=reasoning,
        versions=versions,
        status=r.status.value,
        interaction_id=r.target,
        failure=r.failure,
        logs=r.logs,
        recorded=recorded(SUBMIT, uow, actor_id, digest, outcome, now),
    )
    return outcome, write


def _decompose(ctx: _Ctx, merged: dict[str, Any], child_attrs: list[dict[str, Any]]) -> _Result:
    """Create children routed by the role's strategy; park the parent with OMEGA."""
    topo, now = ctx.topo, ctx.now
    role = topo.defn.role(topo.role(ctx.role_id).name)
    assert role is not None
    shared = None
    if role.strategy is not Strategy.HETEROGENEOUS:
        shared = choose_route(topo.defn, role.name, merged, metadata(ctx.row), now)
    kids: list[dict[str, Any]] = []
    attrs: list[dict[str, Any]] = []
    logs = [_submit_log(ctx)]
    for values in child_attrs:
        child_id = uuid.uuid4()
        base = {
            "id": child_id,
            "instance_id": topo.id,
            "parent_id": ctx.row.id,
            "status": UowStatus.PENDING.value,
            "child_count": 0,
            "finished_child_count": 0,
        }
        decision = shared or choose_route(
            topo.defn, role.name, values, metadata(new_uow(base)), now
        )
        status, target, failure = _destination(ctx, decision, "spawn")
        kids.append(
            base
            | {
                "status": status.value,
                "current_interaction_id": target,
                "current_role_id": ctx.role_id,
                "created_at": now,
                "updated_at": now,
                "entered_at": now,
                "failure": failure,
            }
        )
        attrs += attribute_rows(
            child_id, values, {}, actor_id=ctx.actor_id, reasoning=ctx.reasoning, now=now
        )
        logs.append(
            log_row(
                new_uow(base),
                "spawn",
                now,
                actor_id=ctx.actor_id,
                role_id=ctx.role_id,
                from_interaction_id=None,
                from_status=None,
                to_interaction_id=target,
                to_status=status.value,
                details={"route": decision.reason},
            )
        )
    parked = topo.cerberus_interaction_id
    uows.insert_uows(ctx.db, kids)
    uows.insert_attributes(ctx.db, attrs)
    uows.move(
        ctx.db,
        ctx.row.id,
        status=UowStatus.PENDING,
        interaction_id=parked,
        now=now,
        child_count=len(kids),
    )
    logs.append(
        log_row(
            ctx.row,
            "decompose",
            now,
            actor_id=ctx.actor_id,
            role_id=ctx.role_id,
            from_status=UowStatus.ACTIVE.value,
            to_interaction_id=parked,
            to_status=UowStatus.PENDING.value,
            details={"children": len(kids)},
        )
    )
    uows.log(ctx.db, logs)
    uows.refresh_finished_children(ctx.db, [ctx.row.id])
    return (
        UowStatus.PENDING,
        parked,
        f"decomposed into {len(kids)} children",
        [k["id"] for k in kids],
    )


def _submit_log(ctx: _Ctx) -> LogEntry:
    return log_row(
        ctx.row,
        "submit",
        ctx.now,
        actor_id=ctx.actor_id,
        role_id=ctx.role_id,
        to_status=None,
        details={"reasoning": ctx.reasoning} if ctx.reasoning else None,
    )
