"""The pilot's waiver: a guard that rejected a UOW lets it pass once.

``POST /pilot/waive/{uow_id}/{guardian_name}``: a UOW an inbound gate (CRITERIA_GATE,
TTL_CHECK, COMPOSITE) rejected at checkout waits FAILED in the Ate queue, its failure record
naming the guardian and the interaction it was taken from. The waiver puts it back PENDING
in that interaction and records a ``pilot_waivers`` row; the next time that guardian would
reject this UOW at checkout, the waiver is spent instead (:func:`use_waiver`) and the gate's
other checks go on. Both steps are in the UOW's log (``CONSTITUTIONAL_WAIVER``, ``waiver_used``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import InstanceStatus, UowStatus
from ..domain.errors import InstancePaused, InvalidState, NotFound, UnknownUow
from ..domain.failures import FailureKind
from ..domain.memory import check_reason
from ..store import pause, pilot_gates, uows
from ..store.database import Database
from ..store.work import UowState
from .clock import Clock, utcnow
from .records import log_row
from .topology import TopologyCache

WAIVED = "CONSTITUTIONAL_WAIVER"  # the log event of a waiver granted
WAIVER_USED = "waiver_used"  # the log event of a waiver spent at checkout


@dataclass(frozen=True)
class WaiveOutcome:
    uow_id: uuid.UUID
    guardian_name: str
    waiver_id: int
    status: UowStatus
    interaction: str | None


class WaiverService:
    def __init__(self, db: Database, topologies: TopologyCache, clock: Clock = utcnow) -> None:
        self.db = db
        self.topologies = topologies
        self.clock = clock

    def waive(self, uow_id: uuid.UUID, guardian_name: str, reason: Any, by: str) -> WaiveOutcome:
        """Send a UOW ``guardian_name`` rejected back where it stopped it, with a waiver.

        422 for a blank reason, 404 for an unknown UOW or a guardian its workflow does not
        have, 409 (naming the status or the guard that did) unless that guardian rejected it.
        """
        reason = check_reason(reason, "reason")
        assert reason is not None
        now = self.clock()
        with self.db.begin() as conn:
            found = uows.get(conn, uow_id, for_update=True)
            if found is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            row = UowState.from_row(found)
            # Share-locked: a kill switch running now either finishes first (then this UOW
            # is PAUSED and there is nothing to waive) or waits for this waiver.
            instance = pause.lock_instance(conn, row.instance_id, share=True)
            if instance is not None and instance.status == InstanceStatus.PAUSED.value:
                raise InstancePaused(
                    f"instance {row.instance_id} is paused (kill switch by {instance.paused_by}: "
                    f"{instance.pause_reason!r}); resume it before waiving a guard",
                    instance_id=str(row.instance_id),
                )
            topo = self.topologies.of_instance(row.instance_id, conn)
            names = {g.name for c in topo.defn.components for g in c.guardians}
            if guardian_name not in names:
                raise NotFound(
                    f"the workflow of UOW {uow_id} has no guardian {guardian_name!r}",
                    uow_id=str(uow_id),
                    guardian_name=guardian_name,
                )
            target = _stopped_at(row, guardian_name)
            if target not in topo.interactions:
                raise InvalidState(
                    f"UOW {uow_id} was rejected from an interaction its instance does not have",
                    uow_id=str(uow_id),
                )
            waiver_id = pilot_gates.grant(
                conn, row.id, guardian_name, reason=reason, granted_by=by, now=now
            )
            _send_back(conn, row, target, guardian_name, reason, by, waiver_id, now)
        return WaiveOutcome(
            uow_id=row.id,
            guardian_name=guardian_name,
            waiver_id=waiver_id,
            status=UowStatus.PENDING,
            interaction=topo.interaction_name(target),
        )


def _stopped_at(row: UowState, guardian_name: str) -> uuid.UUID:
    """The interaction ``guardian_name`` rejected ``row`` from; 409 unless it did."""
    failure = row.failure or {}
    rejected = row.status == UowStatus.FAILED and failure.get("kind") == FailureKind.GATE_REJECTION
    if not rejected:
        kind = failure.get("kind") if row.status == UowStatus.FAILED else None
        what = f"{row.status} ({kind})" if kind else row.status
        raise InvalidState(
            f"UOW {row.id} is {what}, not rejected by a gate: there is nothing to waive",
            uow_id=str(row.id),
            status=row.status,
        )
    if failure.get("guardian") != guardian_name:
        raise InvalidState(
            f"UOW {row.id} was rejected by guardian {failure.get('guardian')!r}, not "
            f"{guardian_name!r}: waive that one",
            uow_id=str(row.id),
            status=row.status,
            guardian_name=failure.get("guardian"),
        )
    source = (failure.get("details") or {}).get("from_interaction_id")
    try:
        return uuid.UUID(str(source))
    except ValueError:
        raise InvalidState(
            f"UOW {row.id}'s rejection does not say where it was stopped", uow_id=str(row.id)
        ) from None


def _send_back(
    conn: Connection,
    row: UowState,
    target: uuid.UUID,
    guardian_name: str,
    reason: str,
    by: str,
    waiver_id: int,
    now: datetime,
) -> None:
    rejection = (row.failure or {}).get("reason")
    log = log_row(
        row,
        WAIVED,
        now,
        to_interaction_id=target,
        to_status=UowStatus.PENDING.value,
        details={
            "guardian": guardian_name,
            "reason": reason,
            "pilot": by,
            "waiver_id": waiver_id,
            "rejection": rejection,
        },
    )
    uows.move(conn, row.id, status=UowStatus.PENDING, interaction_id=target, now=now, logs=[log])
    if row.parent_id is not None:
        uows.refresh_finished_children(conn, [row.parent_id])


def use_waiver(
    conn: Connection,
    row: UowState,
    guardian_name: str,
    verdict: str,
    role_id: uuid.UUID,
    now: datetime,
) -> bool:
    """Spend a waiver of ``guardian_name`` for ``row`` (whose gate just failed); whether
    there was one. Asked only when a gate rejects, so ungated work never pays for it."""
    waiver_id = pilot_gates.use(conn, row.id, guardian_name, now)
    if waiver_id is None:
        return False
    log = log_row(
        row,
        WAIVER_USED,
        now,
        role_id=role_id,
        to_interaction_id=row.current_interaction_id,
        to_status=row.status,
        details={"guardian": guardian_name, "waiver_id": waiver_id, "gate": verdict},
    )
    uows.log(conn, [log])
    return True
