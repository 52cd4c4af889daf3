"""The pilot's kill switch: pause an instance and all its live work at once; resume it.

**Pause.** The instance becomes PAUSED and every PENDING, ACTIVE and FAILED UOW of it
becomes PAUSED with ``paused_from`` (an ACTIVE UOW's lease ends: it comes back PENDING), one
log row each, set-based (one statement per pass however many UOWs). While it is paused,
checkouts find nothing of it (PAUSED is no status any role checks out), genesis is refused
(:class:`~..domain.errors.InstancePaused`, under a lock on the instance row), and a
heartbeat, submit or failure report on a lease the kill switch ended answers
``InstancePaused`` (``replay.resolve_lost``).

**Why passes, and why they are enough (PostgreSQL, READ COMMITTED).** The first pass runs in
the transaction that flips the instance's status, under ``FOR NO KEY UPDATE`` on its row;
it pauses every live UOW no other transaction holds and *skips* rows that one holds
(``SKIP LOCKED``). Waiting for those rows instead could deadlock: a child's submit holds the
child and then updates its parent's counters, an OMEGA submit holds the base and then ends
its children, so a kill switch that had paused (locked) one and waited for the other would
wait in a cycle. So it never waits for a row: it commits, and comes back in a new short
transaction (a new snapshot) for whatever is still live, until nothing is.

That loop misses nothing. A UOW is only ever created by genesis (refused once the status is
PAUSED: genesis holds ``FOR SHARE`` on the instance row, which conflicts with the kill
switch's lock, so a genesis either committed before the first pass's snapshot or sees
PAUSED) or by a decomposing submit, which holds its parent — an ACTIVE UOW of the instance —
until it commits. While it runs, that parent is live in every snapshot, so the loop goes on;
once it commits, the next pass sees the children. A submit on a row the kill switch already
paused finds no lease (409 ``InstancePaused``). Between passes a checkout may lease a UOW a
finishing submit just released; the next pass ends that lease too. Each pass holds the
instance row ``FOR SHARE`` and stops if the instance is no longer the PAUSED one this kill
switch made (a resume came in between).

**Resume** puts PAUSED work back to ``paused_from`` in one statement: ``entered_at`` is
untouched, so the oldest is first in line again. Nothing else locks PAUSED rows (checkouts
and sweeps select other statuses), so it waits for no one. On SQLite every write holds the
database's write lock, so one pass always does it all.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ..domain.enums import InstanceStatus
from ..domain.errors import InvalidState, UnknownInstance
from ..domain.memory import check_reason
from ..store import pause, pilot_events
from ..store.database import Database
from ..store.pause import InstanceState, PauseMove
from .clock import Clock, utcnow

# How long the kill switch keeps coming back for work other transactions held (they are
# short: a checkout or a submit), and how long it waits between passes.
MAX_WAIT_SECONDS = 30.0
BACKOFF_SECONDS = (0.001, 0.005, 0.02, 0.05)


@dataclass(frozen=True)
class PauseOutcome:
    instance_id: uuid.UUID
    paused_uow_count: int
    paused_at: datetime
    paused_by: str
    reason: str
    passes: int


@dataclass(frozen=True)
class ResumeOutcome:
    instance_id: uuid.UUID
    resumed_uow_count: int
    resumed_at: datetime
    resumed_by: str
    reason: str


class KillSwitch:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def pause(self, instance_id: uuid.UUID, reason: str, *, by: str) -> PauseOutcome:
        """Pause the instance and its live work. ``InvalidState`` if it is already paused
        (naming the status, who and when); nothing changes then."""
        reason = _reason(reason)
        now = self.clock()
        move = PauseMove(instance_id, by, reason, now)
        with self.db.begin() as conn:
            state = _locked(conn, instance_id)
            if state.status == InstanceStatus.PAUSED.value:
                raise _already_paused(state)
            pause.set_paused(conn, instance_id, at=now, by=by, reason=reason)
            count = pause.pause_uows(conn, move)
            left = pause.live_count(conn, instance_id)
            if not left:
                self._announce(conn, move, count)
        passes = 1
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while left:
            if time.monotonic() > deadline:
                raise InvalidState(
                    f"instance {instance_id} is PAUSED, but {left} units of work stayed locked "
                    f"by running transactions for {MAX_WAIT_SECONDS:.0f} s and are not paused "
                    "yet; resume and pause it again",
                    instance_id=str(instance_id),
                    status=InstanceStatus.PAUSED.value,
                    not_paused=left,
                )
            time.sleep(BACKOFF_SECONDS[min(passes - 1, len(BACKOFF_SECONDS) - 1)])
            passes += 1
            with self.db.begin() as conn:
                state = _locked(conn, instance_id, share=True)
                if state.status != InstanceStatus.PAUSED.value or state.paused_at != now:
                    break  # resumed (or paused anew) meanwhile: that action owns it now
                count += pause.pause_uows(conn, move)
                left = pause.live_count(conn, instance_id)
                if not left:
                    self._announce(conn, move, count)
        return PauseOutcome(instance_id, count, now, by, reason, passes)

    def resume(self, instance_id: uuid.UUID, reason: str, *, by: str) -> ResumeOutcome:
        """Put the instance's paused work back where it was and the instance to ACTIVE.
        ``InvalidState`` if it is not paused; nothing changes then."""
        reason = _reason(reason)
        now = self.clock()
        move = PauseMove(instance_id, by, reason, now)
        with self.db.begin() as conn:
            state = _locked(conn, instance_id)
            if state.status != InstanceStatus.PAUSED.value:
                raise InvalidState(
                    f"instance {instance_id} is {state.status}, not PAUSED: there is nothing "
                    "to resume",
                    instance_id=str(instance_id),
                    status=state.status,
                )
            pause.set_active(conn, instance_id)
            count = pause.resume_uows(conn, move)
            pilot_events.publish(
                conn,
                pilot_events.INSTANCE_RESUMED,
                {
                    "instance_id": str(instance_id),
                    "resumed_uow_count": count,
                    "by": by,
                    "reason": reason,
                    "paused_at": _iso(state.paused_at),
                },
                now=now,
                instance_id=instance_id,
            )
        return ResumeOutcome(instance_id, count, now, by, reason)

    @staticmethod
    def _announce(conn: Connection, move: PauseMove, count: int) -> None:
        pilot_events.publish(
            conn,
            pilot_events.INSTANCE_PAUSED,
            {
                "instance_id": str(move.instance_id),
                "paused_uow_count": count,
                "by": move.by,
                "reason": move.reason,
                "paused_at": move.now.isoformat(),
            },
            now=move.now,
            instance_id=move.instance_id,
        )


def _reason(reason: str) -> str:
    checked = check_reason(reason, "reason")
    assert checked is not None
    return checked


def _locked(conn: Connection, instance_id: uuid.UUID, *, share: bool = False) -> InstanceState:
    state = pause.lock_instance(conn, instance_id, share=share)
    if state is None:
        raise UnknownInstance(f"instance {instance_id} does not exist", id=str(instance_id))
    return state


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _already_paused(state: InstanceState) -> InvalidState:
    return InvalidState(
        f"instance {state.id} is already PAUSED (by {state.paused_by} at "
        f"{_iso(state.paused_at)}: {state.pause_reason}); resume it first",
        instance_id=str(state.id),
        status=state.status,
        paused_by=state.paused_by,
        paused_at=_iso(state.paused_at),
    )
