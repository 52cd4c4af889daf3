"""Leased work: checkout, heartbeat, submit and failure, each one transaction.

The checkout steps live in :mod:`.checkout`; the submit steps in :mod:`.submit`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..domain.enums import RoleType, UowStatus
from ..domain.errors import InvalidState, LeaseLost, UnknownUow
from ..store import claims, memory, uows
from ..store.database import Database
from .checkout import (
    Checkout,
    build_checkout,
    check_assignment,
    claim_in_one_statement,
    find_work,
    latest_values,
)
from .clock import Clock, utcnow
from .lease_cache import LeaseCache
from .records import log_row
from .submit import SubmitOutcome, apply_submit, route_in_one_statement
from .topology import TopologyCache


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
        self.leases = LeaseCache()

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
                return claim_in_one_statement(
                    conn, topo, actor_id, role_id, role_type, now, self.leases
                )
        with self.db.begin() as conn:
            check_assignment(conn, actor_id, role_id)
            row = find_work(conn, topo, role_id, role_type, now)
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
            attributes = latest_values(conn, row.id)
            return build_checkout(conn, topo, row, attributes, lease_id, actor_id, role_id, now)

    # --- the lease holder's writes -------------------------------------------------------------

    def _held(
        self, conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> tuple[Row[Any], dict[str, tuple[int, Any]]]:
        """The UOW, locked, and its attributes, if ``actor_id`` holds its lease."""
        row, latest = claims.held_with_attributes(conn, uow_id)
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
        """The common submit on PostgreSQL: one fenced write (after a read, unless this
        process made the checkout); no transaction.

        Returns None when this path does not apply or its write matched nothing; the
        transactional path then runs and reports the precise outcome.
        """
        with self.db.autocommit() as conn:
            held = self._held_snapshot(conn, uow_id, actor_id, lease_id)
            if held is None:
                return None
            row, latest = held
            topo = self.topologies.of_instance(row.instance_id, conn)
            if row.parent_id is not None or topo.role_type(row.current_role_id) is RoleType.OMEGA:
                return None
            return route_in_one_statement(
                conn, topo, row, latest, actor_id, dict(result_attributes), reasoning, now
            )

    def _held_snapshot(
        self, conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> tuple[Any, dict[str, tuple[int, Any]]] | None:
        """The UOW and its attributes as leased: from this process's checkout, or read."""
        cached = self.leases.take(uow_id)
        if cached is not None and cached.uow.lease_holder_id == actor_id:
            if lease_id is None or lease_id == cached.uow.lease_id:
                return cached.uow, cached.latest
        row, latest = claims.held_with_attributes(conn, uow_id, lock=False)
        if row is None or row.status != UowStatus.ACTIVE.value:
            return None
        if row.lease_holder_id != actor_id or (lease_id is not None and row.lease_id != lease_id):
            return None
        return row, latest

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
