"""Stale tokens: UOWs left PENDING in an interaction for longer than its limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    func,
    or_,
    select,
    union,
)

from ...domain.enums import UowStatus
from ...domain.failures import FailureRecord
from ..tables import Instance, Interaction, Uow
from .moves import (
    BatchMove,
    Moved,
    chronos_of_instance,
    cutoff,
    failure_sql,
    move_batch,
    seconds_between,
    uuid_text,
)

U = cast(Table, Uow.__table__)
X = cast(Table, Interaction.__table__)
I = cast(Table, Instance.__table__)  # noqa: E741


def limits(conn: Connection) -> frozenset[int]:
    """Every limit in force: per interaction, or the workflow default of an instance."""
    return frozenset(
        conn.scalars(
            union(
                select(X.c.stale_token_limit_seconds).where(
                    X.c.stale_token_limit_seconds.is_not(None)
                ),
                select(I.c.stale_token_limit_seconds).where(
                    I.c.stale_token_limit_seconds.is_not(None)
                ),
            )
        )
    )


def _limit_of_interaction() -> Any:
    """An interaction's own limit, else its workflow's default (joined to ``instances``)."""
    return func.coalesce(X.c.stale_token_limit_seconds, I.c.stale_token_limit_seconds)


def _watched(seconds: int) -> Any:
    """Interactions whose limit is ``seconds``; Chronos itself is never watched."""
    return (
        select(X.c.id)
        .join(I, I.c.id == X.c.instance_id)
        .where(
            _limit_of_interaction() == seconds,
            I.c.chronos_interaction_id.is_not(None),
            X.c.id != I.c.chronos_interaction_id,
        )
    )


def is_stale(limits_in_force: frozenset[int], now: datetime) -> ColumnElement[bool]:
    """PENDING (and not a parent waiting for its children) for longer than the limit."""
    waited_too_long = [
        and_(
            U.c.current_interaction_id.in_(_watched(s)),
            U.c.entered_at < cutoff(now, s),
        )
        for s in sorted(limits_in_force)
    ]
    return and_(U.c.status == UowStatus.PENDING.value, U.c.child_count == 0, or_(*waited_too_long))


def limit_of_uow() -> Any:
    return (
        select(_limit_of_interaction())
        .select_from(X.join(I, I.c.id == X.c.instance_id))
        .where(X.c.id == U.c.current_interaction_id)
        .scalar_subquery()
    )


def move_batch_to_chronos(
    conn: Connection, limits_in_force: frozenset[int], now: datetime, limit: int
) -> Moved:
    """Move up to ``limit`` stale tokens to Chronos as FAILED, with the reason recorded."""
    failure = failure_sql(
        conn,
        FailureRecord.stale_token(at=now),
        details={
            "limit": limit_of_uow(),
            "waited": seconds_between(conn, now, U.c.entered_at),
            "from_interaction_id": uuid_text(conn, U.c.current_interaction_id),
        },
    )
    values = {
        "status": UowStatus.FAILED.value,
        "current_interaction_id": chronos_of_instance(),
        "failure": failure,
        "entered_at": now,
        "updated_at": now,
    }
    batch = BatchMove(
        is_stale(limits_in_force, now), values, "stale_token", UowStatus.PENDING, now, limit,
        order_by=(U.c.current_interaction_id, U.c.status, U.c.entered_at),
    )  # fmt: skip
    return move_batch(conn, batch)


def count(conn: Connection, limits_in_force: frozenset[int], now: datetime) -> int:
    stmt = select(func.count()).select_from(U).where(is_stale(limits_in_force, now))
    return conn.scalar(stmt) or 0


def sample(conn: Connection, limits_in_force: frozenset[int], now: datetime, n: int) -> list[Any]:
    stmt = select(U.c.id).where(is_stale(limits_in_force, now)).order_by(U.c.entered_at).limit(n)
    return list(conn.scalars(stmt))
