"""Retried submits and failure reports: replay the recorded outcome, or say what happened.

A lease is used by at most one submit or failure report, and the outcome of that request is
recorded with it (``store.outcomes``). A client that lost the response retries with the
same lease and the same body and gets the recorded outcome back (``replayed``); any other
request on a used lease is a conflict. A lease that was never used and is gone stays a
conflict, whose message says what became of it when the log knows.

These reads run only once a request has found its lease gone, never on the happy path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ..domain.errors import LeaseLost
from ..store import outcomes
from ..store.outcomes import Recorded
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


def record(
    conn: Connection,
    operation: str,
    row: Row[Any],
    actor_id: uuid.UUID,
    digest: str,
    outcome: Any,
    now: datetime,
) -> None:
    """Record ``outcome`` under the lease ``row`` holds, in the transaction that used it."""
    used = Recorded(row.lease_id, row.id, actor_id, operation, digest, outcome_json(outcome), now)
    outcomes.record(conn, used)


def resolve_lost(
    conn: Connection,
    lost: LeaseLost,
    operation: str,
    *,
    uow_id: uuid.UUID,
    actor_id: uuid.UUID,
    lease_id: uuid.UUID | None,
    digest: str,
) -> dict[str, Any]:
    """The recorded outcome of this very request on this lease; else raise a LeaseLost.

    Without ``lease_id`` the lease is the actor's latest checkout of the UOW.
    """
    events = outcomes.lease_events(conn, uow_id) if lease_id is None else None
    lease = lease_id or _latest_lease(events or [], actor_id)
    if lease is None:
        raise lost
    used = outcomes.get(conn, lease)
    if used is not None:
        if used.operation == operation and used.request_hash == digest:
            return used.outcome
        raise LeaseLost(
            f"lease {lease} was already used for a different request (a {used.operation} "
            f"at {used.at.isoformat()}); a retry must repeat the original request exactly, "
            "and new work needs a new checkout",
            uow_id=str(uow_id),
            lease_id=str(lease),
            used_for=used.operation,
        )
    if events is None:
        events = outcomes.lease_events(conn, uow_id)
    raise _explained(lost, uow_id, lease, events)


def _lease_of(event: Row[Any]) -> str | None:
    details = event.details
    return details.get("lease_id") if event.event == "checkout" and details else None


def _latest_lease(events: list[Row[Any]], actor_id: uuid.UUID) -> uuid.UUID | None:
    for event in reversed(events):
        lease = _lease_of(event)
        if lease is not None and event.actor_id == actor_id:
            return uuid.UUID(lease)
    return None


def _explained(
    lost: LeaseLost, uow_id: uuid.UUID, lease: uuid.UUID, events: list[Row[Any]]
) -> LeaseLost:
    """``lost``, or a LeaseLost saying how the lease ended when the log shows it."""
    granted = next((i for i, e in enumerate(events) if _lease_of(e) == str(lease)), None)
    if granted is None or granted + 1 == len(events):
        return lost
    end = events[granted + 1]
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
