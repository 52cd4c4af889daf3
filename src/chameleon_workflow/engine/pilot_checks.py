"""The pilot's checks on a submit's route: the loop guard, then the approval gates.

A submit whose chosen route would take the UOW into a role it has already entered
``max_visits`` times, or past a ``PILOT_APPROVAL`` guardian whose condition holds, parks the
UOW for a pilot (:func:`.parking.park`) instead of moving it; the request names the route's
interaction as where the work goes when approved. Only roles in
``WorkflowDefinition.pilot_checked_roles`` are checked (decided from the workflow's shape), so
workflows without these guards pay nothing, and their submits keep the one-statement path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from ..domain.definition import ComponentDef
from ..domain.enums import InterventionType, Priority
from ..domain.errors import ConditionError
from ..domain.gates import condition_env, condition_holds
from ..domain.guardian_config import MAX_TITLE, read_approval
from ..domain.policy import Condition, parse_condition
from ..store import pilot_gates
from ..store.interventions import NewIntervention
from ..store.work import UowState
from .records import metadata
from .topology import Topology

GUARDIAN = "guardian"  # the source of a request an approval gate raised
LOOP_GUARD = "loop_guard"  # the source of a request the loop guard raised


def check_route(
    conn: Connection,
    topo: Topology,
    row: UowState,
    route: ComponentDef,
    attrs: Mapping[str, Any],
    now: datetime,
) -> NewIntervention | None:
    """The request to park ``row`` with instead of routing it through ``route`` (None: go)."""
    target = topo.interaction_ids[route.interaction]
    return _loop_guard(conn, topo, row, route, target) or _approval(
        topo, row, route, target, attrs, now
    )


def _loop_guard(
    conn: Connection, topo: Topology, row: UowState, route: ComponentDef, target: uuid.UUID
) -> NewIntervention | None:
    for role in topo.defn.entering(route.interaction):
        limit = topo.defn.max_visits_of(role)
        if limit is None:
            continue
        inbound = topo.inbound_interaction_ids(topo.role_ids[role])
        seen = pilot_gates.visits(conn, row.id, inbound)
        if seen < limit:
            continue
        nth = _nth(seen + 1)
        title = f"Loop guard: entering role {role!r} for the {nth} time (max_visits {limit})"
        return NewIntervention(
            type=InterventionType.CLARIFICATION,
            title=title[:MAX_TITLE],
            description=(
                f"UOW {row.id} has entered role {role!r} {seen} time(s), its limit; the "
                f"submit would send it there again through {route.name!r} into "
                f"{route.interaction!r}. Approve to let it in once more, answer to "
                f"clarify, or cancel."
            ),
            source=LOOP_GUARD,
            requested_by="loop guard",
            priority=Priority.HIGH,
            resume_interaction_id=target,
            details={
                "role": role,
                "visits": seen,
                "max_visits": limit,
                "route": route.name,
                "target_interaction": route.interaction,
            },
        )
    return None


def _approval(
    topo: Topology,
    row: UowState,
    route: ComponentDef,
    target: uuid.UUID,
    attrs: Mapping[str, Any],
    now: datetime,
) -> NewIntervention | None:
    gates = topo.defn.approval_gates(route)
    if not gates:
        return None
    env = condition_env(attrs, metadata(row))
    for g in gates:
        approval, _ = read_approval(g.config)
        if approval is None:  # rejected at import; a stored one cannot be malformed
            continue
        why = "no condition: every UOW on this route"
        if approval.condition is not None:
            held, why = _holds(g.name, approval.condition, env)
            if not held:
                continue
        title = approval.title or f"Approval needed: {g.name} (into {route.interaction})"
        expires = approval.expires_in_seconds
        return NewIntervention(
            type=InterventionType.APPROVAL,
            title=title[:MAX_TITLE],
            description=approval.description or g.description,
            source=GUARDIAN,
            requested_by=f"guardian {g.name}"[:MAX_TITLE],
            priority=Priority(approval.priority),
            guardian_name=g.name,
            resume_interaction_id=target,
            on_expiry=approval.on_expiry if expires else None,
            expires_at=now + timedelta(seconds=expires) if expires else None,
            details={
                "condition": approval.condition,
                "why": why,
                "route": route.name,
                "target_interaction": route.interaction,
            },
        )
    return None


@lru_cache(maxsize=256)
def _parsed(condition: str) -> Condition:
    return parse_condition(condition)


def _holds(guardian: str, condition: str, env: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether an approval gate's condition holds. Unlike a routing condition, one that
    cannot be evaluated (e.g. ``amount > 1000`` without an amount) parks the work: a gate
    that cannot tell whether work is risky asks the pilot rather than let it through."""
    try:
        held = _parsed(condition).evaluate(env)
    except ConditionError:
        _, why = condition_holds(guardian, condition, env)  # logs it, says why
        return True, f"{why}; parked to be safe"
    return held, f"condition {condition!r} {'holds' if held else 'does not hold'}"


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
