"""Leased work: checkout, heartbeat, submit and failure, each one transaction.

The checkout steps live in :mod:`.checkout`, the submit steps in :mod:`.submit`, the
failure steps in :mod:`.failure`; replaying a retried submit or failure, in :mod:`.replay`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..domain.enums import RoleType, UowStatus
from ..domain.errors import InvalidState, LeaseLost, UnknownUow
from ..store import claims, uows
from ..store.database import Database
from . import replay
from .checkout import (
    Checkout,
    build_checkout,
    check_assignment,
    claim_in_one_statement,
    find_work,
    latest_values,
)
from .clock import Clock, utcnow
from .failure import FailureOutcome, apply_failure
from .lease_cache import LeaseCache
from .records import log_row
from .submit import SubmitOutcome, apply_submit, route_in_one_statement
from .topology import TopologyCache


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
            row = find_work(conn, topo, role_id, role_type, now, actor_id)
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
        """Apply the lease holder's result; a retry of a submit that landed replays it."""
        now = self.clock()
        request = {
            "uow_id": uow_id,
            "actor_id": actor_id,
            "result_attributes": result_attributes,
            "reasoning": reasoning,
            "children": children or None,
        }
        digest = replay.request_hash(replay.SUBMIT, request)
        if self.db.is_postgres and not children and "_learned_rule" not in result_attributes:
            done = self._submit_in_one_statement(
                uow_id, actor_id, result_attributes, reasoning, lease_id, digest, now
            )
            if done is not None:
                return done
        try:
            with self.db.begin() as conn:
                row, latest = self._held(conn, uow_id, actor_id, lease_id)
                topo = self.topologies.of_instance(row.instance_id, conn)
                outcome = apply_submit(
                    conn, topo, row, latest, actor_id, dict(result_attributes), reasoning,
                    children, now,
                )  # fmt: skip
                replay.record(conn, replay.SUBMIT, row, actor_id, digest, outcome, now)
                return outcome
        except LeaseLost as lost:
            recorded = self._resolve_lost(lost, replay.SUBMIT, uow_id, actor_id, lease_id, digest)
            return SubmitOutcome.replay(recorded)

    def _resolve_lost(
        self,
        lost: LeaseLost,
        operation: str,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        digest: str,
    ) -> dict[str, Any]:
        with self.db.connect() as conn:
            return replay.resolve_lost(
                conn,
                lost,
                operation,
                uow_id=uow_id,
                actor_id=actor_id,
                lease_id=lease_id,
                digest=digest,
            )

    def _submit_in_one_statement(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        result_attributes: Mapping[str, Any],
        reasoning: str | None,
        lease_id: uuid.UUID | None,
        digest: str,
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
                conn, topo, row, latest, actor_id, dict(result_attributes), reasoning, digest, now
            )

    def _held_snapshot(
        self, conn: Connection, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> tuple[Any, dict[str, tuple[int, Any]]] | None:
        """The UOW and its attributes as leased: from this process's checkout, or read."""
        cached = self.leases.take(uow_id, actor_id, lease_id)
        if cached is not None:
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
        """Send the UOW to Ate (EPSILON or TAU giving up ends it ABANDONED); a retry of a
        failure report that landed replays it."""
        now = self.clock()
        request = {
            "uow_id": uow_id,
            "actor_id": actor_id,
            "error_code": error_code,
            "details": details,
        }
        digest = replay.request_hash(replay.FAILURE, request)
        try:
            with self.db.begin() as conn:
                row, _ = self._held(conn, uow_id, actor_id, lease_id)
                topo = self.topologies.of_instance(row.instance_id, conn)
                outcome = apply_failure(conn, topo, row, actor_id, error_code, details, now)
                replay.record(conn, replay.FAILURE, row, actor_id, digest, outcome, now)
                return outcome
        except LeaseLost as lost:
            recorded = self._resolve_lost(lost, replay.FAILURE, uow_id, actor_id, lease_id, digest)
            return FailureOutcome.replay(recorded)
