"""Checkout: finding the oldest eligible UOW, gates, leasing it, injecting memory and
Dynamic Context Injection."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain import dci
from ..domain.enums import RoleType, UowStatus
from ..domain.errors import NotAssigned, UnknownActor
from ..domain.failures import FailureRecord
from ..domain.gates import condition_env
from ..domain.guardians import evaluate_gate
from ..store import actors, memory, uows
from ..store.work import Claimed, ClaimRequest, UowState
from .records import log_row, metadata
from .topology import Topology
from .waiver import use_waiver

logger = logging.getLogger(__name__)

STATUSES_FOR = {
    RoleType.BETA: (UowStatus.PENDING.value,),
    RoleType.OMEGA: (UowStatus.PENDING.value,),
    RoleType.EPSILON: (UowStatus.PENDING.value, UowStatus.FAILED.value),
    RoleType.TAU: (UowStatus.PENDING.value, UowStatus.FAILED.value),
}


@dataclass(frozen=True)
class Checkout:
    uow_id: uuid.UUID
    lease_id: uuid.UUID
    instance_id: uuid.UUID
    role: str
    interaction: str | None
    previous_status: str
    attributes: dict[str, Any]
    context: dict[str, Any]
    injected: list[dict[str, Any]]
    parent_id: uuid.UUID | None
    failure: dict[str, Any] | None
    children: list[dict[str, Any]] = field(default_factory=list)
    # Dynamic Context Injection: model_id, instructions, knowledge_fragments and
    # applied_rules; None when no injector rule applied.
    dci: dict[str, Any] | None = None


def claim_request(
    topo: Topology,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    role_type: RoleType,
    now: datetime,
) -> ClaimRequest:
    """What a checkout by ``actor_id`` for ``role_id`` asks the store for, with a new lease."""
    return ClaimRequest(
        actor_id=actor_id,
        role_id=role_id,
        interaction_ids=tuple(topo.inbound_interaction_ids(role_id)),
        statuses=STATUSES_FOR[role_type],
        cerberus=role_type is RoleType.OMEGA,
        lease_id=uuid.uuid4(),
        now=now,
        touch_before=now - memory.TOUCH_GRANULARITY,
    )


def check_assignment(conn: Connection, actor_id: uuid.UUID, role_id: uuid.UUID) -> None:
    if actors.is_assigned(conn, actor_id, role_id):
        return
    if actors.get(conn, actor_id) is None:
        raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
    raise NotAssigned(
        f"actor {actor_id} is not assigned to role {role_id}",
        actor_id=str(actor_id),
        role_id=str(role_id),
    )


def find_work(
    conn: Connection,
    topo: Topology,
    role_id: uuid.UUID,
    role_type: RoleType,
    now: datetime,
    actor_id: uuid.UUID | None = None,
) -> UowState | None:
    """The next UOW every gate passes; UOWs a gate rejects go to Ate on the way (the
    rejection names ``actor_id``, whose checkout found it)."""
    inbound = topo.inbound_interaction_ids(role_id)
    if not inbound:
        return None
    rejected: list[uuid.UUID] = []
    gated = topo.has_gates(role_id)
    while True:
        row = uows.next_candidate(
            conn,
            interaction_ids=inbound,
            statuses=STATUSES_FOR[role_type],
            cerberus=role_type is RoleType.OMEGA,
            skip=rejected,
        )
        if row is None or not gated or row.current_interaction_id is None:
            return row
        gates = topo.gates(role_id, row.current_interaction_id)
        if not gates:
            return row
        latest = {k: v for k, (_, v) in uows.latest_attributes(conn, row.id).items()}
        meta = metadata(row)
        failed = None
        for g in gates:
            r = evaluate_gate(g, latest, meta, now)
            if r.passed or use_waiver(conn, row, g.name, r.reason, role_id, now):
                continue
            failed = FailureRecord.gate_rejection(
                r.reason,
                guardian=g.name,
                at=now,
                role=topo.role(role_id).name,
                actor_id=actor_id,
                interaction_id=row.current_interaction_id,
            )
            break
        if failed is None:
            return row
        rejected.append(row.id)
        _reject(conn, topo, row, role_id, failed, now)


def _reject(
    conn: Connection,
    topo: Topology,
    row: UowState,
    role_id: uuid.UUID,
    record: FailureRecord,
    now: datetime,
) -> None:
    failure = record.as_json()
    logger.info("gate rejected UOW", extra={"uow_id": str(row.id), "reason": record.reason})
    if row.current_interaction_id == topo.ate_id:
        # Already in Ate: moving it there again would loop; leave it for another gate.
        return
    logs = [
        log_row(
            row,
            "gate_rejected",
            now,
            role_id=role_id,
            to_interaction_id=topo.ate_id,
            to_status=UowStatus.FAILED.value,
            details=failure,
        )
    ]
    uows.move(
        conn,
        row.id,
        status=UowStatus.FAILED,
        interaction_id=topo.ate_id,
        now=now,
        failure=failure,
        logs=logs,
    )
    if row.parent_id is not None:
        uows.refresh_finished_children(conn, [row.parent_id])


def inject_context(
    conn: Connection,
    topo: Topology,
    claimed: Claimed,
    now: datetime,
    failover_model: str | None,
) -> dict[str, Any] | None:
    """Apply the CONDITIONAL_INJECTOR rules of the component the UOW was just leased from,
    over the attributes the claim read; when one applied, log what it changed (a
    ``dci_applied`` row, in the checkout's transaction) and return the checkout's ``dci``.

    Conditions see the status the UOW had when it was found (as gates do), not ACTIVE.
    """
    uow = claimed.uow
    assert uow.current_role_id is not None
    injectors = topo.injectors(uow.current_role_id, uow.current_interaction_id)
    if not injectors:
        return None
    meta = metadata(uow) | {"status": claimed.previous_status}
    env = condition_env(claimed.attributes, meta)
    injection = dci.inject(injectors, env, topo.allowed_models, failover_model)
    if injection is None:
        return None
    row = log_row(
        uow,
        "dci_applied",
        now,
        actor_id=uow.lease_holder_id,
        role_id=uow.current_role_id,
        to_interaction_id=uow.current_interaction_id,
        to_status=uow.status,
        details=injection.audit(),
    )
    uows.log(conn, [row])
    return injection.response()


def build_checkout(
    conn: Connection, topo: Topology, claimed: Claimed, dci_context: dict[str, Any] | None = None
) -> Checkout:
    """The checkout's answer for a UOW just leased (with its children's latest attributes
    when OMEGA checks out a base UOW)."""
    uow = claimed.uow
    assert uow.current_role_id is not None and uow.lease_id is not None
    role_type = topo.role_type(uow.current_role_id)
    children = []
    if role_type is RoleType.OMEGA and uow.child_count:
        children = [
            {"uow_id": kid, "status": status, "attributes": attributes}
            for kid, status, attributes in uows.children_with_attributes(conn, uow.id)
        ]
    return Checkout(
        uow_id=uow.id,
        lease_id=uow.lease_id,
        instance_id=uow.instance_id,
        role=topo.role(uow.current_role_id).name,
        interaction=topo.interaction_name(uow.current_interaction_id),
        previous_status=claimed.previous_status,
        attributes=claimed.attributes,
        context=claimed.context,
        injected=claimed.injected,
        parent_id=uow.parent_id,
        failure=uow.failure if role_type in (RoleType.EPSILON, RoleType.TAU) else None,
        children=children,
        dci=dci_context,
    )
