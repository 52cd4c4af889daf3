"""Retried submits and failure reports: replay the recorded outcome, or say what happened.

A lease is used by at most one submit or failure report, and the outcome of that request is
recorded with it (``store.outcomes``). A client that lost the response retries with the
same lease and the same body and gets the recorded outcome back (``replayed``); any other
request on a used lease is a conflict. A lease that was never used and is gone stays a
conflict, whose message says what became of it when the log knows.

The store reads a lease's story only when a request finds its lease gone (in the same
statement as the read or fenced write that found it, on PostgreSQL), never on the happy
path; resolving it here reads nothing more.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import UowStatus
from ..domain.errors import Conflict, InstancePaused, LeaseLost, UnknownUow
from ..store import outcomes
from ..store.work import LeaseEvent, LostLease, Recorded, UowState, latest_lease, lease_of
from .records import outcome_json

SUBMIT = "submit"
FAILURE = "failure"


def request_hash(operation: str, request: Mapping[str, Any]) -> str:
    """sha256 (hex) of the request's canonical JSON: sorted keys, no whitespace, ASCII.

    ``request`` is the body without the lease id (the lease is the key, so sending it or
    not makes no difference). Key order and spacing do not matter; values must be equal.
    """
    text = json.dumps(
        {"operation": operation, **request},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )  # ASCII with escapes: a lone surrogate from a JSON body hashes like any other text
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def recorded(
    operation: str,
    uow: UowState,
    actor_id: uuid.UUID,
    digest: str,
    outcome: Any,
    now: datetime,
) -> Recorded:
    """The record of ``outcome`` under the lease ``uow`` is held by."""
    assert uow.lease_id is not None
    return Recorded(uow.lease_id, uow.id, actor_id, operation, digest, outcome_json(outcome), now)


def record(
    conn: Connection,
    operation: str,
    uow: UowState,
    actor_id: uuid.UUID,
    digest: str,
    outcome: Any,
    now: datetime,
) -> None:
    """Record ``outcome`` under the lease ``uow`` holds, in the transaction that used it."""
    outcomes.record(conn, recorded(operation, uow, actor_id, digest, outcome, now))


def resolve_lost(
    lost: LostLease,
    operation: str,
    *,
    uow_id: uuid.UUID,
    actor_id: uuid.UUID,
    lease_id: uuid.UUID | None,
    digest: str,
) -> dict[str, Any]:
    """The recorded outcome of this very request on this lease; else raise why not.

    ``lost`` is what the store read with the UOW (no further reads). Without ``lease_id``
    the lease is the actor's latest checkout of the UOW.
    """
    if not lost.exists:
        raise lost_error(lost, uow_id, actor_id)
    plain = _not_held(lost, uow_id, actor_id)
    lease = lease_id or latest_lease(lost.events, actor_id)
    if lease is None:
        raise plain
    used = lost.recorded
    if used is not None and used.lease_id == lease:
        if used.operation == operation and used.request_hash == digest:
            return used.outcome  # landed before the kill switch: replayed even if paused
        raise LeaseLost(
            f"lease {lease} was already used for a different request (a {used.operation} "
            f"at {used.at.isoformat()}); a retry must repeat the original request exactly, "
            "and new work needs a new checkout",
            uow_id=str(uow_id),
            lease_id=str(lease),
            used_for=used.operation,
        )
    if isinstance(plain, InstancePaused):
        raise plain
    assert isinstance(plain, LeaseLost)
    raise _explained(plain, uow_id, lease, lost.events)


def lost_error(lost: LostLease, uow_id: uuid.UUID, actor_id: uuid.UUID) -> Exception:
    """The error for a request on a UOW its actor does not hold (no replay considered)."""
    if not lost.exists:
        return UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
    return _not_held(lost, uow_id, actor_id)


def _not_held(lost: LostLease, uow_id: uuid.UUID, actor_id: uuid.UUID) -> Conflict:
    if lost.status == UowStatus.PAUSED.value:
        return _paused(lost, uow_id)
    if lost.status != UowStatus.ACTIVE.value:
        return LeaseLost(
            f"UOW {uow_id} is {lost.status}, not leased; the lease was lost or already used",
            uow_id=str(uow_id),
            status=lost.status,
        )
    return LeaseLost(
        f"actor {actor_id} does not hold the current lease on UOW {uow_id}",
        uow_id=str(uow_id),
    )


def _paused(lost: LostLease, uow_id: uuid.UUID) -> InstancePaused:
    """A request on a UOW the kill switch paused: its instance, who paused it and why, from
    the UOW's ``paused`` log row (``store.pause``)."""
    paused = next((e for e in reversed(lost.events) if e.event == "paused"), None)
    info = (paused.details or {}) if paused is not None else {}
    instance = info.get("instance_id")
    at = f" at {paused.at.isoformat()}" if paused is not None else ""
    by = f" by {info['pilot']}" if info.get("pilot") else ""
    why = f" ({info['reason']})" if info.get("reason") else ""
    whose = f"instance {instance}" if instance else "its instance"
    return InstancePaused(
        f"UOW {uow_id} is PAUSED: {whose} was paused by the kill switch{by}{at}{why}; its "
        "lease ended and nothing was done with this request. Check out work again once a "
        "pilot resumes the instance",
        uow_id=str(uow_id),
        instance_id=instance,
        status=UowStatus.PAUSED.value,
    )


def _explained(
    lost: LeaseLost, uow_id: uuid.UUID, lease: uuid.UUID, events: list[LeaseEvent]
) -> LeaseLost:
    """``lost``, or a LeaseLost saying how the lease ended when the log shows it."""
    granted = next((i for i, e in enumerate(events) if lease_of(e) == str(lease)), None)
    # What happened to the UOW after the grant; a checkout's own DCI record is not an end.
    later = (
        [e for e in events[granted + 1 :] if e.event != "dci_applied"]
        if granted is not None
        else []
    )
    if granted is None or not later:
        return lost
    end = later[0]
    at = end.at.isoformat()
    if end.event == "reclaim":
        how = f"was reclaimed by the zombie sweep at {at} (no heartbeat within the timeout)"
    elif end.event in (SUBMIT, FAILURE, "abandon"):
        how = f"was already used ({end.event} at {at})"
    else:
        how = f"ended at {at} ({end.event})"
    return LeaseLost(
        f"lease {lease} on UOW {uow_id} {how}; nothing was done with this request. "
        "Check out work again to get a new lease",
        uow_id=str(uow_id),
        lease_id=str(lease),
        ended_by=end.event,
    )
