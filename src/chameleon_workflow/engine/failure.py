"""What a failure report does: send the UOW to Ate, or end it when EPSILON or TAU give up."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import ExperienceValidation, RoleType, UowStatus
from ..domain.failures import FailureRecord
from ..store import memory, uows
from ..store.work import UowState
from .records import log_row
from .topology import Topology


@dataclass(frozen=True)
class FailureOutcome:
    uow_id: uuid.UUID
    status: UowStatus
    interaction: str | None
    memories_purged: int
    replayed: bool = False

    @classmethod
    def replay(cls, data: Mapping[str, Any]) -> FailureOutcome:
        """The outcome recorded as :func:`.records.outcome_json`, marked as replayed."""
        return cls(
            uow_id=uuid.UUID(data["uow_id"]),
            status=UowStatus(data["status"]),
            interaction=data["interaction"],
            memories_purged=data["memories_purged"],
            replayed=True,
        )


def apply_failure(
    conn: Connection,
    topo: Topology,
    row: UowState,
    actor_id: uuid.UUID,
    error_code: str,
    details: Any,
    now: datetime,
    experience: ExperienceValidation = ExperienceValidation.ARCHIVE,
) -> FailureOutcome:
    """Apply a failure report by the lease holder of ``row`` (already locked and checked)."""
    role_id = row.current_role_id
    assert role_id is not None
    role_type = topo.role_type(role_id)
    failure = FailureRecord.explicit(
        error_code, details, at=now, actor_id=actor_id, role=topo.role(role_id).name
    ).as_json()
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
        row.id,
        status=status,
        interaction_id=target,
        now=now,
        failure=failure,
        logs=logs,
    )
    purged = 0
    if gives_up and row.parent_id is None:
        uows.abandon_children(conn, row.id, actor_id=actor_id, now=now)
        purged = invalidate_learned(conn, row.id, experience, now)
    if row.parent_id is not None:
        uows.refresh_finished_children(conn, [row.parent_id])
    return FailureOutcome(row.id, status, topo.interaction_name(target), purged)


VALIDATION = "engine (experience validation)"


def invalidate_learned(
    conn: Connection, base_uow_id: uuid.UUID, mode: ExperienceValidation, now: datetime
) -> int:
    """Experience validation: archive (or delete) the live memories learned from an abandoned
    base UOW or its children, each audited; held memories are left alone. How many changed."""
    if mode is ExperienceValidation.KEEP:
        return 0
    learned = memory.learned_from(conn, base_uow_id)
    ids = [m.id for m in learned if m.held_at is None]
    reason = f"learned from UOW {base_uow_id}, which was abandoned (experience validation)"
    if mode is ExperienceValidation.DELETE:
        return memory.purge(conn, ids, reason=reason, by=VALIDATION, now=now)
    return len(memory.archive(conn, ids, reason=reason, by=VALIDATION, now=now))
