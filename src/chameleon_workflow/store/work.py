"""Typed records the store hands the engine for leased work (and takes back to write).

Each is a frozen dataclass built from named columns, never a database row, so a new
column in a table changes nothing here until a record asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class UowState:
    """A UOW as the runtime reads it: where it is, who holds it, its family counters."""

    id: uuid.UUID
    instance_id: uuid.UUID
    parent_id: uuid.UUID | None
    status: str
    current_interaction_id: uuid.UUID | None
    current_role_id: uuid.UUID | None
    lease_id: uuid.UUID | None
    lease_holder_id: uuid.UUID | None
    child_count: int
    finished_child_count: int
    failure: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> UowState:
        """From a row (or mapping) having at least these columns; others are ignored."""
        m: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{name: m[name] for name in UOW_STATE_FIELDS})

    def held_by(self, actor_id: uuid.UUID, lease_id: uuid.UUID | None) -> bool:
        """Leased to ``actor_id`` (under ``lease_id`` when given)."""
        return (
            self.status == "ACTIVE"
            and self.lease_holder_id == actor_id
            and (lease_id is None or self.lease_id == lease_id)
        )


UOW_STATE_FIELDS = tuple(f.name for f in fields(UowState))


@dataclass(frozen=True)
class LogEntry:
    """One interaction-log row to write: a UOW moving from where it was to ``to_*``.

    Its fields are exactly the table's data columns (checked by a test), so every statement
    that writes log rows, raw or Core, writes the same shape.
    """

    uow_id: uuid.UUID | None
    instance_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    role_id: uuid.UUID | None
    event: str
    from_interaction_id: uuid.UUID | None
    to_interaction_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    at: datetime
    details: dict[str, Any] | None

    def values(self) -> dict[str, Any]:
        """The row to insert (a shallow copy: cheaper than ``asdict`` on the hot path)."""
        return {name: getattr(self, name) for name in _LOG_FIELDS}


_LOG_FIELDS = tuple(f.name for f in fields(LogEntry))


@dataclass(frozen=True)
class LeaseEvent:
    """A log row as a lease's story needs it (replays and lost-lease messages)."""

    event: str
    actor_id: uuid.UUID | None
    at: datetime
    details: dict[str, Any] | None


@dataclass(frozen=True)
class Recorded:
    """What a lease was used for: the row in ``lease_outcomes``."""

    lease_id: uuid.UUID
    uow_id: uuid.UUID
    actor_id: uuid.UUID
    operation: str
    request_hash: str
    outcome: dict[str, Any]
    at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Recorded:
        m: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class LostLease:
    """Everything needed to answer a request whose lease is not held, read with the UOW.

    ``exists`` is False for an unknown UOW; ``events`` is the UOW's log (oldest first);
    ``recorded`` the use of the lease in question (the one the request named, else the
    actor's latest checkout of the UOW), if it was used.
    """

    exists: bool
    status: str | None
    events: list[LeaseEvent] = field(default_factory=list)
    recorded: Recorded | None = None


def lease_of(event: LeaseEvent) -> str | None:
    """The lease a checkout event granted (None for other events)."""
    details = event.details
    return details.get("lease_id") if event.event == "checkout" and details else None


def latest_lease(events: list[LeaseEvent], actor_id: uuid.UUID) -> uuid.UUID | None:
    """The lease of ``actor_id``'s latest checkout among ``events`` (oldest first)."""
    for event in reversed(events):
        lease = lease_of(event)
        if lease is not None and event.actor_id == actor_id:
            return uuid.UUID(lease)
    return None


@dataclass(frozen=True)
class HeldRead:
    """A UOW read by its lease holder: its state and latest attributes when the lease is
    held, otherwise what became of it (``lost``)."""

    uow: UowState | None
    latest: dict[str, tuple[int, Any]]
    lost: LostLease | None = None


@dataclass(frozen=True)
class Claimed:
    """A UOW just leased (as it stands under the lease), the status it had before, its
    latest attributes and the memory injected into the checkout."""

    uow: UowState
    previous_status: str
    latest: dict[str, tuple[int, Any]]
    context: dict[str, Any]
    injected: list[dict[str, Any]]

    @property
    def attributes(self) -> dict[str, Any]:
        return {k: v for k, (_, v) in self.latest.items()}


@dataclass(frozen=True)
class ClaimRequest:
    """Lease the oldest eligible UOW in ``interaction_ids`` to an assigned actor."""

    actor_id: uuid.UUID
    role_id: uuid.UUID
    interaction_ids: tuple[uuid.UUID, ...]
    statuses: tuple[str, ...]
    cerberus: bool
    lease_id: uuid.UUID
    now: datetime
    touch_before: datetime


@dataclass(frozen=True)
class RoutedSubmit:
    """A plain submit to write under a fence (still ACTIVE, same lease, same holder): new
    attribute versions, the move, its log rows and the outcome recorded under the lease."""

    uow: UowState
    actor_id: uuid.UUID
    reasoning: str | None
    versions: list[dict[str, Any]]
    status: str
    interaction_id: uuid.UUID | None
    failure: dict[str, Any] | None
    logs: list[LogEntry]
    recorded: Recorded


@dataclass(frozen=True)
class FencedWrite:
    """What a fenced write did: ``applied``, or the lease's story when it was not held.

    Neither (``applied`` False and ``lost`` None) means the lease changed hands while the
    statement ran; the caller reads again under a lock.
    """

    applied: bool
    lost: LostLease | None = None
