"""Checkout: finding the oldest eligible UOW, gates, leasing it and injecting memory."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..domain.enums import RoleType, UowStatus
from ..domain.errors import NotAssigned, UnknownActor
from ..domain.failures import FailureRecord
from ..domain.guardians import evaluate_gate
from ..store import actors, claims, memory, uows
from .lease_cache import HeldUow, LeaseCache, Leased
from .records import log_row, metadata
from .topology import Topology

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


def claim_in_one_statement(
    conn: Connection,
    topo: Topology,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    role_type: RoleType,
    now: datetime,
    leases: LeaseCache | None = None,
) -> Checkout | None:
    """PostgreSQL: lease, log, read and inject memory in one statement (autocommit)."""
    lease_id = uuid.uuid4()
    claimed = claims.claim_pg(
        conn,
        actor_id=actor_id,
        role_id=role_id,
        interaction_ids=topo.inbound_interaction_ids(role_id),
        statuses=STATUSES_FOR[role_type],
        cerberus=role_type is RoleType.OMEGA,
        lease_id=lease_id,
        now=now,
        touch_before=now - memory.TOUCH_GRANULARITY,
    )
    if claimed is None:
        check_assignment(conn, actor_id, role_id)
        return None
    row = claimed.row
    if leases is not None:
        held = HeldUow(
            id=row.id,
            instance_id=row.instance_id,
            parent_id=row.parent_id,
            status=UowStatus.ACTIVE.value,
            current_interaction_id=row.current_interaction_id,
            current_role_id=role_id,
            lease_id=lease_id,
            lease_holder_id=actor_id,
            child_count=row.child_count,
            finished_child_count=row.finished_child_count,
            failure=row.failure,
        )
        leases.put(Leased(held, claimed.latest))
    memory_part = (claimed.context, claimed.injected)
    return build_checkout(
        conn, topo, row, claimed.attributes, lease_id, actor_id, role_id, now, memory_part
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
) -> Row[Any] | None:
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
        if row is None or not gated:
            return row
        gates = topo.gates(role_id, row.current_interaction_id)
        if not gates:
            return row
        latest = {k: v for k, (_, v) in uows.latest_attributes(conn, row.id).items()}
        meta = metadata(row)
        failed = next(
            (
                FailureRecord.gate_rejection(
                    r.reason,
                    guardian=g.name,
                    at=now,
                    role=topo.role(role_id).name,
                    actor_id=actor_id,
                    interaction_id=row.current_interaction_id,
                )
                for g in gates
                if not (r := evaluate_gate(g, latest, meta, now)).passed
            ),
            None,
        )
        if failed is None:
            return row
        rejected.append(row.id)
        _reject(conn, topo, row, role_id, failed, now)


def _reject(
    conn: Connection,
    topo: Topology,
    row: Row[Any],
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


def build_checkout(
    conn: Connection,
    topo: Topology,
    row: Row[Any],
    attributes: dict[str, Any],
    lease_id: uuid.UUID,
    actor_id: uuid.UUID,
    role_id: uuid.UUID,
    now: datetime,
    injected_memory: tuple[dict[str, Any], list[dict[str, Any]]] | None = None,
) -> Checkout:
    """Inject memory (unless done) and build the response for a UOW just leased.

    ``row`` is the UOW as it was before the lease.
    """
    role_type = topo.role_type(role_id)
    context, injected = injected_memory or _inject_memory(conn, row.id, actor_id, role_id, now)
    children = []
    if role_type is RoleType.OMEGA and row.child_count:
        children = [
            {"uow_id": kid, "status": status, "attributes": attributes}
            for kid, status, attributes in uows.children_with_attributes(conn, row.id)
        ]
    return Checkout(
        uow_id=row.id,
        lease_id=lease_id,
        instance_id=row.instance_id,
        role=topo.role(role_id).name,
        interaction=topo.interaction_name(row.current_interaction_id),
        previous_status=row.status,
        attributes=attributes,
        context=context,
        injected=injected,
        parent_id=row.parent_id,
        failure=row.failure if role_type in (RoleType.EPSILON, RoleType.TAU) else None,
        children=children,
    )


def latest_values(conn: Connection, uow_id: uuid.UUID) -> dict[str, Any]:
    return {k: v for k, (_, v) in uows.latest_attributes(conn, uow_id).items()}


def _inject_memory(
    conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID, role_id: uuid.UUID, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Global blueprint first, personal playbook overriding key by key; toxic excluded."""
    if conn.dialect.name == "postgresql":
        return claims.inject_memory_pg(
            conn,
            uow_id=uow_id,
            actor_id=actor_id,
            role_id=role_id,
            now=now,
            touch_before=now - memory.TOUCH_GRANULARITY,
        )
    rows = memory.for_injection(conn, role_id, actor_id)
    if not rows:
        return {}, []
    effective: dict[str, Any] = {}
    for r in rows:  # globals come first, so a personal entry replaces its global twin
        effective[r.key] = r
    context = {key: r.value for key, r in sorted(effective.items())}
    injected = [
        {"memory_id": str(r.id), "version": r.version} for _, r in sorted(effective.items())
    ]
    memory.touch(conn, role_id, actor_id, now)
    memory.record_injection(
        conn, uow_id=uow_id, actor_id=actor_id, role_id=role_id, entries=injected, now=now
    )
    return context, injected
