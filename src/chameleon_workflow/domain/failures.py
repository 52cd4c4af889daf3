"""The failure record: why a UOW is FAILED (or ended), one schema whoever wrote it.

Every writer — explicit failure reports, gate rejections, routing errors at genesis and at
submit, zombie reclaims and stale-token moves — builds its record with :class:`FailureRecord`;
the maintenance batches, which write the record in SQL, take its constant part from the same
class and fill only the per-row fields (see ``store.maintenance.moves.failure_sql``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class FailureKind(StrEnum):
    EXPLICIT = "explicit"
    ROUTING_ERROR = "routing_error"
    GATE_REJECTION = "gate_rejection"
    ZOMBIE = "zombie"
    STALE_TOKEN = "stale_token"


ZOMBIE_REASON = "no heartbeat within the zombie timeout"
STALE_TOKEN_REASON = "waited longer than the stale-token limit"


@dataclass(frozen=True)
class FailureRecord:
    """One failure. ``code`` is the worker's ``error_code`` for explicit failures and the
    kind otherwise; ``details`` holds what is particular to the kind (always an object)."""

    kind: FailureKind
    reason: str
    code: str
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    actor_id: uuid.UUID | None = None
    role: str | None = None
    guardian: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored JSON object: exactly the keys of :data:`FIELDS`, in that order."""
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "code": self.code,
            "details": dict(self.details),
            "at": self.at.isoformat(),
            "actor_id": str(self.actor_id) if self.actor_id is not None else None,
            "role": self.role,
            "guardian": self.guardian,
        }

    # --- one constructor per kind ------------------------------------------------------

    @classmethod
    def explicit(
        cls, error_code: str, details: Any, *, at: datetime, actor_id: uuid.UUID, role: str
    ) -> FailureRecord:
        """A failure the lease holder reported; its details are kept as sent (an object;
        any other JSON value is kept under ``value``)."""
        if details is None:
            details = {}
        elif not isinstance(details, Mapping):
            details = {"value": details}
        reason = f"reported by the worker with error_code {error_code!r}"
        return cls(FailureKind.EXPLICIT, reason, error_code, at, details, actor_id, role)

    @classmethod
    def routing_error(
        cls, reason: str, *, during: str, at: datetime, role: str, actor_id: uuid.UUID | None
    ) -> FailureRecord:
        """No route matched when the role sent the UOW on (``during``: genesis, submit or
        spawn, the routing of a new child)."""
        kind = FailureKind.ROUTING_ERROR
        return cls(kind, reason, kind.value, at, {"during": during}, actor_id, role)

    @classmethod
    def gate_rejection(
        cls,
        reason: str,
        *,
        guardian: str,
        at: datetime,
        role: str,
        actor_id: uuid.UUID | None,
        interaction_id: uuid.UUID | None,
    ) -> FailureRecord:
        """An inbound gate of ``role`` turned the UOW away during a checkout."""
        kind = FailureKind.GATE_REJECTION
        details = {"from_interaction_id": str(interaction_id) if interaction_id else None}
        return cls(kind, reason, kind.value, at, details, actor_id, role, guardian)

    @classmethod
    def zombie(cls, *, at: datetime) -> FailureRecord:
        """The constant part of a zombie reclaim's record (the rest is filled in SQL)."""
        kind = FailureKind.ZOMBIE
        return cls(kind, ZOMBIE_REASON, kind.value, at)

    @classmethod
    def stale_token(cls, *, at: datetime) -> FailureRecord:
        """The constant part of a stale-token move's record (the rest is filled in SQL)."""
        kind = FailureKind.STALE_TOKEN
        return cls(kind, STALE_TOKEN_REASON, kind.value, at)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FailureRecord))

# The per-row part of the records the maintenance batches write in SQL: the fields they fill
# and the keys of their ``details`` (checked when the statement is built). Their ``role`` is
# left null: reading each role's name in the batch statement made a reclaim ~40 % slower on
# PostgreSQL (measured); the log row and the UOW's ``current_role_id`` name the role.
SQL_FILLED: dict[FailureKind, tuple[frozenset[str], frozenset[str]]] = {
    FailureKind.ZOMBIE: (
        frozenset({"actor_id", "details"}),
        frozenset({"timeout_seconds", "last_seen", "from_interaction_id"}),
    ),
    FailureKind.STALE_TOKEN: (
        frozenset({"details"}),
        frozenset({"limit", "waited", "from_interaction_id"}),
    ),
}
