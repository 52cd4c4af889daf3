"""Interventions: an agent asks a pilot, a pilot answers, unanswered requests expire.

An agent raises a request for work it holds (lease-fenced, like a submit): the UOW is
parked in PENDING_PILOT_APPROVAL through :func:`.parking.park` and its lease ends. A pilot
answers a pending request — approve (the UOW goes PENDING into the request's
``resume_interaction_id``), reject (FAILED in the instance's Ate queue, the reason as its
failure record) or, for a clarification, answer with a text (added to the UOW's
``_pilot_clarifications`` attribute, then as approve) — and the request, the UOW's move, its
log row and the live event are written in one transaction. Work of a PAUSED instance goes
to PAUSED instead, with ``paused_from`` what resume will restore.

Every answer locks the UOW, then its request, and acts only on a pending request: of two
answers racing on one request exactly one wins, the other is a 409 naming the status.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import (
    InstanceStatus,
    InterventionStatus,
    InterventionType,
    Priority,
    UowStatus,
)
from ..domain.errors import InvalidInput, InvalidState, UnknownIntervention, UnknownUow
from ..domain.failures import FailureKind, FailureRecord
from ..domain.memory import check_reason
from ..store import actors, interventions, pilot_events, uows
from ..store import intervention_inbox as inbox
from ..store.database import Database
from ..store.interventions import NewIntervention
from ..store.pagination import Key, Page
from ..store.work import UowState
from . import replay
from .clock import Clock, utcnow
from .parking import park
from .records import attribute_rows, log_row

CLARIFICATIONS = "_pilot_clarifications"  # the UOW attribute a pilot's answers are added to
AGENT = "agent"  # the source of an agent's request
PILOT_REJECTED = "pilot_rejected"  # the failure code of a rejected (cancelled) request
MAX_TEXT = 10_000  # a clarification's text
MAX_WAIT_SECONDS = 60


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CLARIFY = "clarify"


# The log event of each answer.
EVENTS = {
    Decision.APPROVE: "pilot_approved",
    Decision.REJECT: "pilot_rejected",
    Decision.CLARIFY: "pilot_clarified",
}


@dataclass(frozen=True)
class InterventionRecord:
    """A request as the API shows it."""

    id: uuid.UUID
    instance_id: uuid.UUID
    uow_id: uuid.UUID
    type: str
    status: str
    priority: str
    title: str
    description: str | None
    source: str
    guardian_name: str | None
    requested_by: str
    actor_id: uuid.UUID | None
    resume_interaction_id: uuid.UUID | None
    on_expiry: str | None
    created_at: datetime
    expires_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None

    @classmethod
    def from_row(cls, row: Any) -> InterventionRecord:
        m: Mapping[str, Any] = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    @property
    def pending(self) -> bool:
        return self.status == InterventionStatus.PENDING.value


@dataclass(frozen=True)
class Resolution:
    """What an answer did: the request as it now is, and where its UOW went."""

    intervention: InterventionRecord
    uow_status: str
    interaction_id: uuid.UUID | None


@dataclass(frozen=True)
class InterventionMetrics:
    total: int
    pending: int
    approved: int
    rejected: int
    expired: int
    average_resolution_seconds: float | None
    by_type: dict[str, int]
    by_priority: dict[str, int]


class InterventionService:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    # --- an agent asks ------------------------------------------------------------------

    def request(
        self,
        uow_id: uuid.UUID,
        actor_id: uuid.UUID,
        *,
        type: InterventionType,
        title: str,
        description: str | None = None,
        priority: Priority = Priority.NORMAL,
        lease_id: uuid.UUID | None = None,
    ) -> InterventionRecord:
        """Park the work ``actor_id`` holds with a pending request; its lease ends."""
        if not title.strip():
            raise InvalidInput("title is required (a non-blank string)", field="title")
        now = self.clock()
        with self.db.begin() as conn:
            held = self.db.sql.read_held(
                conn, uow_id, actor_id=actor_id, lease_id=lease_id, lock=True
            )
            if held.uow is None:
                assert held.lost is not None
                if not held.lost.exists:
                    raise replay.lost_error(held.lost, uow_id, actor_id)
                # Never a replay (requests are not recorded under a lease): always raises,
                # saying how the lease ended when the log knows.
                replay.resolve_lost(
                    held.lost, "intervention", uow_id=uow_id, actor_id=actor_id,
                    lease_id=lease_id, digest="",
                )  # fmt: skip
                raise replay.lost_error(held.lost, uow_id, actor_id)  # pragma: no cover
            row = held.uow
            actor = actors.get(conn, actor_id)
            named = f"actor {actor.name} ({actor_id})" if actor else f"actor {actor_id}"
            new = NewIntervention(
                type=type,
                title=title,
                source=AGENT,
                requested_by=named[:200],
                priority=priority,
                description=description,
                actor_id=actor_id,
                resume_interaction_id=row.current_interaction_id,
            )
            request_id = park(
                conn, row, new, now=now, actor_id=actor_id, role_id=row.current_role_id
            )
            return self._get(conn, request_id)

    # --- reads ----------------------------------------------------------------------------

    def get(self, request_id: uuid.UUID) -> InterventionRecord:
        with self.db.connect() as conn:
            return self._get(conn, request_id)

    @staticmethod
    def _get(conn: Connection, request_id: uuid.UUID) -> InterventionRecord:
        row = interventions.get(conn, request_id)
        if row is None:
            raise UnknownIntervention(
                f"intervention request {request_id} does not exist", id=str(request_id)
            )
        return InterventionRecord.from_row(row)

    def pending(
        self,
        *,
        instance_id: uuid.UUID | None = None,
        type: InterventionType | None = None,
        after: Key | None = None,
        limit: int = 50,
    ) -> Page[InterventionRecord]:
        """Pending requests, critical first, then oldest."""
        with self.db.connect() as conn:
            found = inbox.inbox_page(
                conn,
                instance_id=instance_id,
                type=type.value if type is not None else None,
                after=after,
                limit=limit,
            )
        return found.map(InterventionRecord.from_row)

    def metrics(self) -> InterventionMetrics:
        with self.db.connect() as conn:
            m = inbox.metrics(conn, self.clock())
        s = m.by_status
        return InterventionMetrics(
            total=m.total,
            pending=s[InterventionStatus.PENDING.value],
            approved=s[InterventionStatus.APPROVED.value],
            rejected=s[InterventionStatus.REJECTED.value],
            expired=s[InterventionStatus.EXPIRED.value],
            average_resolution_seconds=m.average_resolution_seconds,
            by_type={t.value: m.by_type.get(t.value, 0) for t in InterventionType},
            by_priority={p.value: m.by_priority.get(p.value, 0) for p in Priority},
        )

    # --- a pilot answers ------------------------------------------------------------------

    def answer_uow(
        self, uow_id: uuid.UUID, decision: Decision, text: str, *, by: str
    ) -> Resolution:
        """Answer the UOW's pending request (``text``: the reason, or the clarification)."""
        text = _checked(decision, text)
        now = self.clock()
        with self.db.begin() as conn:
            row = inbox.lock_uow(conn, uow_id)
            if row is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            request = inbox.pending_of(conn, uow_id, lock=True)
            if request is None:
                raise InvalidState(
                    f"UOW {uow_id} is {row.status}: it has no pending intervention request "
                    "to answer",
                    uow_id=str(uow_id),
                    status=row.status,
                )
            return _answer(conn, row, request, decision, text, by=by, now=now)

    def answer(
        self, request_id: uuid.UUID, decision: Decision, text: str, *, by: str
    ) -> Resolution:
        """Answer the request ``request_id`` (approve or reject)."""
        text = _checked(decision, text)
        now = self.clock()
        with self.db.begin() as conn:
            found = self._get(conn, request_id)
            row = inbox.lock_uow(conn, found.uow_id)
            request = interventions.get(conn, request_id, lock=True)
            assert row is not None and request is not None  # requests and UOWs stay
            return _answer(conn, row, request, decision, text, by=by, now=now)


EXPIRY_BY = "engine (intervention expiry)"


def expire_batch(conn: Connection, now: datetime, *, limit: int, counts: dict[str, Any]) -> int:
    """Expire up to ``limit`` requests past their ``expires_at`` in this transaction: each
    is closed as expired and its UOW follows ``on_expiry`` (approve; otherwise cancel).

    UOWs another transaction holds are skipped (PostgreSQL): two runs at once expire each
    request once. How many were expired.
    """
    done = 0
    for row in inbox.expired_uows(conn, now, limit):
        request = inbox.pending_of(conn, row.id, lock=True)
        if request is None or request.expires_at is None or request.expires_at > now:
            continue  # answered meanwhile
        approve = request.on_expiry == Decision.APPROVE.value
        decision = Decision.APPROVE if approve else Decision.REJECT
        reason = f"expired at {request.expires_at.isoformat()} (on_expiry: "
        reason += f"{'approve' if approve else 'cancel'})"
        _answer(
            conn, row, request, decision, reason, by=EXPIRY_BY, now=now,
            status=InterventionStatus.EXPIRED,
        )  # fmt: skip
        counts["approved" if approve else "cancelled"] += 1
        done += 1
    return done


def _checked(decision: Decision, text: Any) -> str:
    if decision is Decision.CLARIFY:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text is required: the answer (a non-blank string)", field="text")
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"text may be at most {MAX_TEXT} characters", field="text")
        return text
    checked = check_reason(text, "reason")
    assert checked is not None
    return checked


def _answer(
    conn: Connection,
    row: UowState,
    request: Any,
    decision: Decision,
    text: str,
    *,
    by: str,
    now: datetime,
    status: InterventionStatus | None = None,
) -> Resolution:
    """Resolve ``request`` (locked, with its UOW ``row``) and move the UOW accordingly."""
    record = InterventionRecord.from_row(request)
    if not record.pending:
        raise InvalidState(
            f"intervention request {record.id} is {record.status}, not pending",
            id=str(record.id),
            status=record.status,
        )
    if decision is Decision.CLARIFY and record.type != InterventionType.CLARIFICATION.value:
        raise InvalidState(
            f"UOW {row.id}'s pending request is an {record.type} request, not a "
            "clarification: approve or reject it",
            uow_id=str(row.id),
            status=record.status,
            type=record.type,
        )
    if row.status != UowStatus.PENDING_PILOT_APPROVAL.value:
        raise InvalidState(
            f"UOW {row.id} is {row.status}, not {UowStatus.PENDING_PILOT_APPROVAL.value}",
            uow_id=str(row.id),
            status=row.status,
        )
    if status is None:
        status = (
            InterventionStatus.REJECTED
            if decision is Decision.REJECT
            else InterventionStatus.APPROVED
        )
    instance = inbox.instance_state(conn, row.instance_id)
    paused = instance.status == InstanceStatus.PAUSED.value
    details = {"intervention_id": str(record.id), "by": by, "reason": text}
    failure: dict[str, Any] | None = None
    if decision is Decision.REJECT:
        target_status = UowStatus.FAILED
        target = instance.ate_interaction_id
        failure = FailureRecord(
            FailureKind.EXPLICIT,
            text,
            PILOT_REJECTED,
            now,
            {
                "intervention_id": str(record.id),
                "by": by,
                "from_interaction_id": (
                    str(row.current_interaction_id) if row.current_interaction_id else None
                ),
            },
        ).as_json()
    else:
        target_status = UowStatus.PENDING
        target = record.resume_interaction_id or row.current_interaction_id
        if decision is Decision.CLARIFY:
            _add_clarification(conn, row.id, text, by, now)
    extra: dict[str, Any] = {}
    moved_to = target_status
    if paused:
        moved_to = UowStatus.PAUSED
        extra["paused_from"] = target_status.value
    log = log_row(
        row,
        EVENTS[decision] if status is not InterventionStatus.EXPIRED else "pilot_expired",
        now,
        to_interaction_id=target,
        to_status=moved_to.value,
        details=details,
    )
    uows.move(
        conn, row.id, status=moved_to, interaction_id=target, now=now, failure=failure,
        logs=[log], **extra,
    )  # fmt: skip
    if row.parent_id is not None:
        uows.refresh_finished_children(conn, [row.parent_id])
    resolution = text
    if not inbox.resolve(conn, record.id, status=status, by=by, resolution=resolution, now=now):
        raise InvalidState(  # pragma: no cover - the locks above make this unreachable
            f"intervention request {record.id} changed while it was answered",
            id=str(record.id),
        )
    kind = (
        pilot_events.INTERVENTION_EXPIRED
        if status is InterventionStatus.EXPIRED
        else pilot_events.INTERVENTION_RESOLVED
    )
    pilot_events.publish(
        conn,
        kind,
        {
            "intervention_id": str(record.id),
            "uow_id": str(row.id),
            "type": record.type,
            "status": status.value,
            "decision": decision.value,
            "resolved_by": by,
            "uow_status": moved_to.value,
        },
        now=now,
        instance_id=row.instance_id,
        uow_id=row.id,
        intervention_id=record.id,
    )
    resolved = interventions.get(conn, record.id)
    return Resolution(InterventionRecord.from_row(resolved), moved_to.value, target)


def _add_clarification(
    conn: Connection, uow_id: uuid.UUID, text: str, by: str, now: datetime
) -> None:
    """Append the answer to the UOW's ``_pilot_clarifications`` (a new attribute version)."""
    latest = uows.latest_attributes(conn, uow_id)
    _, previous = latest.get(CLARIFICATIONS, (0, None))
    answers = list(previous) if isinstance(previous, list) else []
    answers.append({"text": text, "by": by, "at": now.isoformat()})
    rows = attribute_rows(
        uow_id, {CLARIFICATIONS: answers}, latest, actor_id=None,
        reasoning=f"pilot clarification by {by}", now=now,
    )  # fmt: skip
    uows.insert_attributes(conn, rows)
