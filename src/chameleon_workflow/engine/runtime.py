"""Leased work: checkout, heartbeat, submit and failure, each one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..domain.enums import RoleType, UowStatus
from ..domain.errors import InvalidState, LeaseLost, NotAssigned, UnknownActor, UnknownUow
from ..domain.guardians import evaluate_gate
from ..store import actors, claims, memory, uows
from ..store.database import Database
from .clock import Clock, utcnow
from .records import log_row, metadata
from .submit import SubmitOutcome, apply_submit, route_in_one_statement
from .topology import Topology, TopologyCache

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


@dataclass(frozen=True)
class FailureOutcome:
    uow_id: uuid.UUID
    status: UowStatus
    interaction: str | None
    memories_purged: int


class Runtime:
    def __init__(self, db: Database, topologies: TopologyCache, clock: Clock = utcnow) -> None:
        self.db = db
        self.topologies = topologies
        self.clock = clock

    # --- checkout ------------------------------------------------------------------------

    def checkout(self, actor_id: uuid.UUID, role_id: uuid.UUID) -> Checkout | None:
        """Lease the oldest eligible UOW to the actor, or None when there is no work."""
        topo = self.topologies.of_role(role_id)
        role_type = topo.role_type(role_id)
        if role_type is RoleType.ALPHA:
            raise InvalidState("ALPHA roles never check out work", role_id=str(role_id))
        now = self.clock()
        if self.db.is_postgres and not topo.has_gates(role_id):
            # One statement is its own transaction: no BEGIN/COMMIT round trips.
            with self.db.autocommit() as conn:
                return self._claim_in_one_statement(conn, topo, actor_id, role_id, role_type, now)
        with self.db.begin() as conn:
            self._check_assignment(conn, actor_id, role_id)
            row = self._find_work(conn, topo, role_id, role_type, now)
            if row is None:
                return None
            lease_id = uuid.uuid4()
            uows.take_lease(
                conn, row.id, lease_id=lease_id, actor_id=actor_id, role_id=role_id, now=now
            )
            uows.log(
                conn,
                [
                    log_row(
                        row,
                        "checkout",
                        now,
                        actor_id=actor_id,
                        role_id=role_id,
                        to_interaction_id=row.current_interaction_id,
                        to_status=UowStatus.ACTIVE.value,
                        details={"lease_id": str(lease_id)},
                    )
                ],
            )
            attributes = self._attrs(conn, row.id)
            return self._checkout(conn, topo, row, attributes, lease_id, actor_id, role_id, now)

    def _claim_in_one_statement(
        self,
        conn: Connection,
        topo: Topology,
        actor_id: uuid.UUID,
        role_id: uuid.UUID,
        role_type: RoleType,
        now: datetime,
    ) -> Checkout | None:
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
            self._check_assignment(conn, actor_id, role_id)
            return None
        memory_part = (claimed.context, claimed.injected)
        return self._checkout(
            conn,
            topo,
            claimed.row,
            claimed.attributes,
            lease_id,
            actor_id,
            role_id,
            now,
            memory_part,
        )

    def _check_assignment(self, conn: Connection, actor_id: uuid.UUID, role_id: uuid.UUID) -> None:
        if actors.is_assigned(conn, actor_id, role_id):
            return
        if actors.get(conn, actor_id) is None:
            raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
        raise NotAssigned(
            f"actor {actor_id} is not assigned to role {role_id}",
            actor_id=str(actor_id),
            role_id=str(role_id),
        )

    def _find_work(
        self,
        conn: Connection,
        topo: Topology,
        role_id: uuid.UUID,
        role_type: RoleType,
        now: datetime,
    ) -> Row[Any] | None:
        """The next UOW every gate passes; UOWs a gate rejects go to Ate on the way."""
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
                (r for g in gates if not (r := evaluate_gate(g, latest, meta, now)).passed), None
            )
            if failed is None:
                return row
            rejected.append(row.id)
            self._reject(conn, topo, row, role_id, failed.reason, now)

    def _reject(
        self,
        conn: Connection,
        topo: Topology,
        row: Row[Any],
        role_id: uuid.UUID,
        reason: str,
        now: datetime,
    ) -> None:
        failure = {"kind": "gate_rejection", "reason": reason, "role": topo.role(role_id).name}
        logger.info("gate rejected UOW", extra={"uow_id": str(row.id), "reason": reason})
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

    def _checkout(
        self,
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
        context, injected = injected_memory or self._inject_memory(
            conn, row.id, actor_id, role_id, now
        )
        children = []
        if role_type is RoleType.OMEGA and row.child_count:
            children = [
                {"uow_id": k.id, "status": k.status, "attributes": self._attrs(conn, k.id)}
                for k in uows.children(conn, row.id)
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

    @staticmethod
    def _attrs(conn: Connection, uow_id: uuid.UUID) -> dict[str, Any]:
        return {k: v for k, (_, v) in uows.latest_attributes(conn, uow_id).items()}

    @staticmethod
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

    # --- the lease holder's writes -------------------------------------------------------------

    def _held(
        self, conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> tuple[Row[Any], dict[str, tuple[int, Any]]]:
        """The UOW, locked, and its attributes, if ``actor_id`` holds its lease."""
        row, latest = claims.lock_with_attributes(conn, uow_id)
        return self._check_holder(row, uow_id, actor_id, lease_id), latest

    @staticmethod
    def _check_holder(
        row: Row[Any] | None, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> Row[Any]:
        if row is None:
            raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
        if row.status != UowStatus.ACTIVE.value:
            raise LeaseLost(
                f"UOW {uow_id} is {row.status}, not leased; the lease was lost or already used",
                uow_id=str(uow_id),
                status=row.status,
            )
        if row.lease_holder_id != actor_id or (lease_id is not None and row.lease_id != lease_id):
            raise LeaseLost(
                f"actor {actor_id} does not hold the current lease on UOW {uow_id}",
                uow_id=str(uow_id),
            )
        return row

    def heartbeat(
        self, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None = None
    ) -> datetime:
        now = self.clock()
        with self.db.begin() as conn:
            if uows.heartbeat(conn, uow_id, actor_id=actor_id, lease_id=lease_id, now=now):
                return now
            self._held(conn, uow_id, actor_id, lease_id)  # raises the precise error
        raise LeaseLost(f"lease on UOW {uow_id} was lost", uow_id=str(uow_id))  # pragma: no cover

    def submit(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        result_attributes: Mapping[str, Any],
        *,
        reasoning: str | None = None,
        lease_id: uuid.UUID | None = None,
        children: list[Any] | None = None,
    ) -> SubmitOutcome:
        now = self.clock()
        if self.db.is_postgres and not children and "_learned_rule" not in result_attributes:
            done = self._submit_in_one_statement(
                uow_id, actor_id, result_attributes, reasoning, lease_id, now
            )
            if done is not None:
                return done
        with self.db.begin() as conn:
            row, latest = self._held(conn, uow_id, actor_id, lease_id)
            topo = self.topologies.of_instance(row.instance_id, conn)
            return apply_submit(
                conn, topo, row, latest, actor_id, dict(result_attributes), reasoning, children, now
            )

    def _submit_in_one_statement(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        result_attributes: Mapping[str, Any],
        reasoning: str | None,
        lease_id: uuid.UUID | None,
        now: datetime,
    ) -> SubmitOutcome | None:
        """The common submit on PostgreSQL: read, then one fenced write; no transaction.

        Returns None when this path does not apply (the transactional path then runs).
        """
        with self.db.autocommit() as conn:
            row, latest = claims.lock_with_attributes(conn, uow_id, lock=False)
            row = self._check_holder(row, uow_id, actor_id, lease_id)
            topo = self.topologies.of_instance(row.instance_id, conn)
            if row.parent_id is not None or topo.role_type(row.current_role_id) is RoleType.OMEGA:
                return None
            outcome = route_in_one_statement(
                conn, topo, row, latest, actor_id, dict(result_attributes), reasoning, now
            )
            if outcome is None:  # the lease moved between the read and the write
                row, _ = claims.lock_with_attributes(conn, uow_id, lock=False)
                self._check_holder(row, uow_id, actor_id, row.lease_id if row else None)
                raise LeaseLost(f"the lease on UOW {uow_id} was lost", uow_id=str(uow_id))
            return outcome

    def fail(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        error_code: str,
        *,
        details: Any = None,
        lease_id: uuid.UUID | None = None,
    ) -> FailureOutcome:
        """Send the UOW to Ate; EPSILON or TAU giving up ends it ABANDONED."""
        now = self.clock()
        with self.db.begin() as conn:
            row, _ = self._held(conn, uow_id, actor_id, lease_id)
            topo = self.topologies.of_instance(row.instance_id, conn)
            role_id = row.current_role_id
            role_type = topo.role_type(role_id)
            failure = {
                "kind": "explicit",
                "error_code": error_code,
                "details": details,
                "role": topo.role(role_id).name,
                "actor_id": str(actor_id),
                "at": now.isoformat(),
            }
            gives_up = role_type in (RoleType.EPSILON, RoleType.TAU)
            status = UowStatus.ABANDONED if gives_up else UowStatus.FAILED
            target = row.current_interaction_id if gives_up else topo.ate_id
            logs = [
                log_row(
                    row,
                    "abandon" if gives_up else "failure",
                    now,
                    actor_id=actor_id,
                    role_id=role_id,
                    to_interaction_id=target,
                    to_status=status.value,
                    details=failure,
                )
            ]
            uows.move(
                conn,
                uow_id,
                status=status,
                interaction_id=target,
                now=now,
                failure=failure,
                logs=logs,
            )
            purged = 0
            if gives_up and row.parent_id is None:
                uows.abandon_children(conn, uow_id, actor_id=actor_id, now=now)
                purged = memory.purge_learned_from(conn, uow_id, now)
            if row.parent_id is not None:
                uows.refresh_finished_children(conn, [row.parent_id])
        return FailureOutcome(uow_id, status, topo.interaction_name(target), purged)
