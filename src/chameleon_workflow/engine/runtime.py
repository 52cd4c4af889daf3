"""Leased work: checkout, heartbeat, submit and failure.

The checkout steps live in :mod:`.checkout`, the submit steps in :mod:`.submit`, the
failure steps in :mod:`.failure`; replaying a retried submit or failure, in :mod:`.replay`.

The runtime never asks which database it runs on. It decides, from the workflow alone,
whether an operation can take the short path (an ungated checkout; a plain routed submit,
see :func:`.submit.plain_submit`), and the store's dialect (``db.sql``) carries it out in as
few statements as that database allows: one on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..domain.enums import ExperienceValidation, RoleType
from ..domain.errors import InvalidState, LeaseLost
from ..store import uows
from ..store.database import Database
from ..store.work import HeldRead, LostLease
from . import replay
from .checkout import (
    Checkout,
    build_checkout,
    check_assignment,
    claim_request,
    find_work,
    inject_context,
)
from .clock import Clock, utcnow
from .failure import FailureOutcome, apply_failure
from .lease_cache import LeaseCache, Leased
from .submit import SubmitOutcome, apply_submit, plain_submit, routed_submit
from .topology import TopologyCache


class Runtime:
    def __init__(
        self,
        db: Database,
        topologies: TopologyCache,
        clock: Clock = utcnow,
        *,
        experience: ExperienceValidation = ExperienceValidation.ARCHIVE,
        dci_failover_model: str | None = None,
    ) -> None:
        self.db = db
        self.topologies = topologies
        self.clock = clock
        self.experience = experience
        self.dci_failover_model = dci_failover_model
        self.leases = LeaseCache()

    # --- checkout ------------------------------------------------------------------------

    def checkout(self, actor_id: uuid.UUID, role_id: uuid.UUID) -> Checkout | None:
        """Lease the oldest eligible UOW to the actor, or None when there is no work."""
        topo = self.topologies.of_role(role_id)
        role_type = topo.role_type(role_id)
        if role_type is RoleType.ALPHA:
            raise InvalidState("ALPHA roles never check out work", role_id=str(role_id))
        request = claim_request(topo, actor_id, role_id, role_type, self.clock())
        failover = self.dci_failover_model
        if not topo.has_gates(role_id):
            # No gate to evaluate: the store picks, leases and injects in one go. Injector
            # rules are evaluated on what the claim read. When one applies, its log row is
            # one more write before the answer: on SQLite in the claim's transaction, on
            # PostgreSQL its own autocommitted statement (a transaction around both would
            # add a BEGIN and a COMMIT round trip to every such checkout). Should the process
            # die between the two, the agent never got the answer and the lease runs out as
            # a zombie's would.
            with self.db.single_write() as conn:
                claimed = self.db.sql.claim(conn, request) if request.interaction_ids else None
                if claimed is None:
                    check_assignment(conn, actor_id, role_id)
                    return None
                dci = inject_context(conn, topo, claimed, request.now, failover)
                checkout = build_checkout(conn, topo, claimed, dci)
        else:
            with self.db.begin() as conn:
                check_assignment(conn, actor_id, role_id)
                uow = find_work(conn, topo, role_id, role_type, request.now, actor_id)
                if uow is None:
                    return None
                claimed = self.db.sql.lease(conn, uow, request)
                dci = inject_context(conn, topo, claimed, request.now, failover)
                checkout = build_checkout(conn, topo, claimed, dci)
        self.leases.put(Leased(claimed.uow, claimed.latest))
        return checkout

    # --- the lease holder's writes -------------------------------------------------------------

    def heartbeat(
        self, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None = None
    ) -> datetime:
        now = self.clock()
        with self.db.begin() as conn:
            if uows.heartbeat(conn, uow_id, actor_id=actor_id, lease_id=lease_id, now=now):
                return now
            held = self.db.sql.read_held(
                conn, uow_id, actor_id=actor_id, lease_id=lease_id, lock=False
            )
        if held.lost is not None:
            raise replay.lost_error(held.lost, uow_id, actor_id)
        # Held now, so the update raced a moment when it was not: say so plainly.
        raise LeaseLost(f"lease on UOW {uow_id} changed while refreshing it", uow_id=str(uow_id))

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
        if plain_submit(result_attributes, children):
            done = self._submit_plain(
                uow_id, actor_id, result_attributes, reasoning, lease_id, digest, now
            )
            if done is not None:
                return done
        with self.db.begin() as conn:
            held = self._read_held(conn, uow_id, actor_id, lease_id)
            if held.uow is None:
                return SubmitOutcome.replay(
                    self._resolve(held.lost, replay.SUBMIT, uow_id, actor_id, lease_id, digest)
                )
            topo = self.topologies.of_instance(held.uow.instance_id, conn)
            outcome = apply_submit(
                conn, topo, held.uow, held.latest, actor_id, dict(result_attributes), reasoning,
                children, now,
            )  # fmt: skip
            replay.record(conn, replay.SUBMIT, held.uow, actor_id, digest, outcome, now)
            return outcome

    def _submit_plain(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        result_attributes: Mapping[str, Any],
        reasoning: str | None,
        lease_id: uuid.UUID | None,
        digest: str,
        now: datetime,
    ) -> SubmitOutcome | None:
        """A plain routed submit as one fenced write (after a read, unless this process
        made the checkout). A lost lease is answered from what that one statement read.

        None when the UOW turns out not to be plain (a child, or at OMEGA) or its lease
        changed hands while the write ran: the locked path then runs.
        """
        with self.db.single_write() as conn:
            cached = self.leases.take(uow_id, actor_id, lease_id)
            if cached is not None:
                uow, latest = cached.uow, cached.latest
            else:
                held = self.db.sql.read_held(
                    conn, uow_id, actor_id=actor_id, lease_id=lease_id, lock=False
                )
                if held.uow is None:
                    recorded = self._resolve(
                        held.lost, replay.SUBMIT, uow_id, actor_id, lease_id, digest
                    )
                    return SubmitOutcome.replay(recorded)
                uow, latest = held.uow, held.latest
            topo = self.topologies.of_instance(uow.instance_id, conn)
            if not plain_submit(result_attributes, None, topo, uow):
                return None
            outcome, write = routed_submit(
                topo, uow, latest, actor_id, dict(result_attributes), reasoning, digest, now
            )
            done = self.db.sql.submit_routed(conn, write)
        if done.applied:
            return outcome
        if done.lost is None:
            return None
        recorded = self._resolve(done.lost, replay.SUBMIT, uow_id, actor_id, lease_id, digest)
        return SubmitOutcome.replay(recorded)

    def _read_held(
        self, conn: Any, uow_id: uuid.UUID, actor_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> HeldRead:
        """The UOW locked for this transaction, with its attributes, if the actor holds it."""
        return self.db.sql.read_held(conn, uow_id, actor_id=actor_id, lease_id=lease_id, lock=True)

    @staticmethod
    def _resolve(
        lost: LostLease | None,
        operation: str,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        lease_id: uuid.UUID | None,
        digest: str,
    ) -> dict[str, Any]:
        assert lost is not None  # a read that found no held UOW always says why
        return replay.resolve_lost(
            lost, operation, uow_id=uow_id, actor_id=actor_id, lease_id=lease_id, digest=digest
        )

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
        with self.db.begin() as conn:
            held = self._read_held(conn, uow_id, actor_id, lease_id)
            if held.uow is None:
                return FailureOutcome.replay(
                    self._resolve(held.lost, replay.FAILURE, uow_id, actor_id, lease_id, digest)
                )
            topo = self.topologies.of_instance(held.uow.instance_id, conn)
            outcome = apply_failure(
                conn, topo, held.uow, actor_id, error_code, details, now, self.experience
            )
            replay.record(conn, replay.FAILURE, held.uow, actor_id, digest, outcome, now)
            return outcome
