"""Zombies: ACTIVE UOWs whose holder stopped heart-beating, and their reclaim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    String,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    union,
)

from ...domain.enums import UowStatus, ZombiePolicy
from ...domain.failures import FailureRecord
from ..pagination import Key, Keyset, Page
from ..tables import Instance, Role, Uow
from .moves import (
    BatchMove,
    Moved,
    before,
    chronos_of_instance,
    cutoff,
    failure_sql,
    move_batch,
    time_text,
    uuid_text,
)

U = cast(Table, Uow.__table__)
R = cast(Table, Role.__table__)
I = cast(Table, Instance.__table__)  # noqa: E741


@dataclass(frozen=True)
class ZombieRules:
    """The server's defaults; a workflow or role may override each (see :func:`plan`)."""

    timeout_seconds: int
    policy: ZombiePolicy
    max_reclaims: int


@dataclass(frozen=True)
class ZombiePlan:
    """What one sweep needs to know about the overrides present in the database."""

    rules: ZombieRules
    timeouts: frozenset[int]
    policy_overridden: bool


def plan(conn: Connection, rules: ZombieRules) -> ZombiePlan:
    """Collect the distinct timeouts and whether any policy is overridden.

    Definitions never change after an instance is cloned, so reading them once per sweep
    is enough; with no overrides the sweep uses plain index-friendly comparisons.
    """
    timeouts = set(
        conn.scalars(
            union(
                select(R.c.zombie_timeout_seconds).where(R.c.zombie_timeout_seconds.is_not(None)),
                select(I.c.zombie_timeout_seconds).where(I.c.zombie_timeout_seconds.is_not(None)),
            )
        )
    )
    overridden = any(
        conn.scalar(select(t.c.id).where(_policy_set(t)).limit(1)) is not None for t in (R, I)
    )
    return ZombiePlan(rules, frozenset(timeouts | {rules.timeout_seconds}), overridden)


def _policy_set(t: Any) -> ColumnElement[bool]:
    return or_(t.c.zombie_policy.is_not(None), t.c.max_reclaims.is_not(None))


def _of_role(column: str) -> Any:
    return select(R.c[column]).where(R.c.id == U.c.current_role_id).scalar_subquery()


def _of_instance(column: str) -> Any:
    return select(I.c[column]).where(I.c.id == U.c.instance_id).scalar_subquery()


def _effective(p: ZombiePlan, column: str, default: Any, overridden: bool) -> Any:
    if not overridden:
        return literal(default, Integer() if isinstance(default, int) else String())
    return func.coalesce(_of_role(column), _of_instance(column), default)


def timeout_of(p: ZombiePlan) -> Any:
    overridden = p.timeouts != {p.rules.timeout_seconds}
    return _effective(p, "zombie_timeout_seconds", p.rules.timeout_seconds, overridden)


def is_zombie(p: ZombiePlan, now: datetime) -> ColumnElement[bool]:
    """ACTIVE and silent for longer than its effective timeout (no heartbeat: lease time)."""
    cutoffs = {s: cutoff(now, s) for s in sorted(p.timeouts)}
    seconds = timeout_of(p)
    silent_since = func.coalesce(U.c.leased_at, U.c.entered_at)  # only without a heartbeat
    return and_(
        U.c.status == UowStatus.ACTIVE.value,
        or_(
            before(U.c.last_heartbeat, cutoffs, seconds),
            and_(U.c.last_heartbeat.is_(None), before(silent_since, cutoffs, seconds)),
        ),
    )


def _last_seen() -> Any:
    """The last sign of life: the heartbeat, else the lease time."""
    return func.coalesce(U.c.last_heartbeat, U.c.leased_at, U.c.entered_at)


def _requeues(p: ZombiePlan) -> ColumnElement[bool]:
    """Whether a zombie goes back to its queue rather than to Chronos."""
    default_requeues = p.rules.policy is ZombiePolicy.REQUEUE
    if not p.policy_overridden and not default_requeues:
        return false()
    policy = _effective(p, "zombie_policy", p.rules.policy.value, p.policy_overridden)
    limit = _effective(p, "max_reclaims", p.rules.max_reclaims, p.policy_overridden)
    return and_(policy == ZombiePolicy.REQUEUE.value, U.c.reclaim_count < limit)


def reclaim_batch(conn: Connection, p: ZombiePlan, now: datetime, limit: int) -> Moved:
    """Reclaim up to ``limit`` zombies in one conditional statement (plus their log rows)."""
    requeue = _requeues(p)
    stays = case((requeue, U.c.current_interaction_id), else_=chronos_of_instance())
    failure = failure_sql(
        conn,
        FailureRecord.zombie(at=now),
        actor_id=uuid_text(conn, U.c.lease_holder_id),
        details={
            "timeout_seconds": timeout_of(p),
            "last_seen": time_text(conn, _last_seen()),
            "from_interaction_id": uuid_text(conn, U.c.current_interaction_id),
        },
    )
    values = {
        "status": case((requeue, UowStatus.PENDING.value), else_=UowStatus.FAILED.value),
        "current_interaction_id": func.coalesce(stays, U.c.current_interaction_id),
        "failure": failure,
        "reclaim_count": U.c.reclaim_count + 1,
        "lease_id": None,
        "lease_holder_id": None,
        "leased_at": None,
        "last_heartbeat": None,
        "entered_at": now,
        "updated_at": now,
    }
    batch = BatchMove(
        is_zombie(p, now), values, "reclaim", UowStatus.ACTIVE, now, limit,
        order_by=(U.c.status, U.c.last_heartbeat),
    )  # fmt: skip
    return move_batch(conn, batch)


# Longest silent first. A zombie's last sign of life does not change while it stays a
# zombie (a heartbeat makes it live again), so pages neither skip nor repeat one.
LAST_SEEN = _last_seen().label("last_seen")
CANDIDATES = Keyset("zombies", (LAST_SEEN, U.c.id))


def candidates(
    conn: Connection, p: ZombiePlan, now: datetime, after: Key | None, limit: int
) -> Page[Row[Any]]:
    """The zombies a sweep would reclaim now, longest silent first, from after ``after``."""
    requeue = _requeues(p)
    stmt = select(
        U.c.id,
        U.c.instance_id,
        U.c.parent_id,
        U.c.current_role_id,
        U.c.current_interaction_id,
        U.c.lease_holder_id,
        U.c.leased_at,
        U.c.last_heartbeat,
        U.c.reclaim_count,
        timeout_of(p).label("timeout_seconds"),
        case((requeue, ZombiePolicy.REQUEUE.value), else_=ZombiePolicy.FAIL.value).label("policy"),
        LAST_SEEN,
    ).where(is_zombie(p, now))  # fmt: skip
    return CANDIDATES.fetch(conn, stmt, after, limit, lambda r: r)


def count(conn: Connection, p: ZombiePlan, now: datetime) -> int:
    return conn.scalar(select(func.count()).select_from(U).where(is_zombie(p, now))) or 0
