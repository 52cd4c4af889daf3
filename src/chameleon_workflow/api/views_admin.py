"""Response bodies of the admin reads: zombies, maintenance runs, the scheduler, toxic marks.

Built field by field from engine records, as in ``views``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Self

from ..engine import maintenance
from ..store import records
from .views import Time, View


class Zombie(View):
    """An ACTIVE UOW a zombie sweep would reclaim now, with the timeout and policy it meets."""

    id: uuid.UUID
    instance_id: uuid.UUID
    parent_id: uuid.UUID | None
    current_role_id: uuid.UUID | None
    current_interaction_id: uuid.UUID | None
    lease_holder_id: uuid.UUID | None
    leased_at: Time | None
    last_heartbeat: Time | None
    reclaim_count: int
    timeout_seconds: int
    policy: str

    @classmethod
    def of(cls, z: records.ZombieCandidate) -> Self:
        return cls(
            id=z.id, instance_id=z.instance_id, parent_id=z.parent_id,
            current_role_id=z.current_role_id, current_interaction_id=z.current_interaction_id,
            lease_holder_id=z.lease_holder_id, leased_at=z.leased_at,
            last_heartbeat=z.last_heartbeat, reclaim_count=z.reclaim_count,
            timeout_seconds=z.timeout_seconds, policy=z.policy,
        )  # fmt: skip


class ZombieListing(View):
    timeout_seconds: int
    count: int
    zombies: list[Zombie]

    @classmethod
    def of(cls, z: maintenance.ZombieListing) -> Self:
        return cls(
            timeout_seconds=z.timeout_seconds,
            count=z.count,
            zombies=[Zombie.of(c) for c in z.zombies],
        )


class MaintenanceRun(View):
    """One recorded run of a background service; ``finished_at`` is null while it runs."""

    id: int
    job: str
    trigger: str
    parameters: dict[str, Any]
    counts: dict[str, Any] | None
    started_at: Time
    finished_at: Time | None
    error: str | None
    replica: str | None

    @classmethod
    def of(cls, r: records.MaintenanceRunRecord) -> Self:
        return cls(
            id=r.id, job=r.job, trigger=r.trigger, parameters=r.parameters, counts=r.counts,
            started_at=r.started_at, finished_at=r.finished_at, error=r.error, replica=r.replica,
        )  # fmt: skip


class JobLeader(View):
    job: str
    holder: str
    expires_at: Time
    active: bool


class Scheduler(View):
    """Which replica leads each scheduled job and until when, as seen from ``replica``."""

    replica: str
    now: Time
    leases: list[JobLeader]

    @classmethod
    def of(cls, s: maintenance.Leadership) -> Self:
        return cls(
            replica=s.replica,
            now=s.now,
            leases=[
                JobLeader(job=x.job, holder=x.holder, expires_at=x.expires_at, active=x.active)
                for x in s.leases
            ],
        )


class ToxicEvent(View):
    """One audited change of a memory's toxic mark."""

    id: int
    memory_id: uuid.UUID
    action: str
    reason: str | None
    by: str | None
    at: Time

    @classmethod
    def of(cls, e: Mapping[str, Any]) -> Self:
        return cls(
            id=e["id"], memory_id=e["memory_id"], action=e["action"], reason=e["reason"],
            by=e["by"], at=e["at"],
        )  # fmt: skip


def sample(items: list[Any]) -> list[Any]:
    """A dry run's sample as JSON: zombies field by field, ids as text."""
    return [
        Zombie.of(i).model_dump(mode="json") if isinstance(i, records.ZombieCandidate) else str(i)
        for i in items
    ]
