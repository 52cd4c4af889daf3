"""Instances: sandboxes cloned from a template version, with their own roles and queues."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ..domain.definition import WorkflowDefinition
from .definitions import INSTANCE_ROWS, DefinitionIds, write_definition
from .pagination import Key, Keyset, Page
from .tables import Instance, Interaction, Role, Uow, table

I = table(Instance)  # noqa: E741
# Oldest first; the id breaks ties between instances created in the same instant.
INSTANCES = Keyset("instances", (I.c.created_at, I.c.id))
R = table(Role)
X = table(Interaction)
U = table(Uow)


@dataclass(frozen=True)
class InstanceRow:
    id: uuid.UUID
    template_id: uuid.UUID
    name: str
    description: str | None
    definition_yaml: str
    definition: dict[str, Any]
    ate_interaction_id: uuid.UUID | None
    chronos_interaction_id: uuid.UUID | None
    created_at: datetime
    # The kill switch (read fresh by the instance views; a cached topology's copy may be old).
    status: str = "ACTIVE"
    paused_at: datetime | None = None
    paused_by: str | None = None
    pause_reason: str | None = None


@dataclass(frozen=True)
class RoleRow:
    id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    role_type: str
    strategy: str | None
    description: str | None


@dataclass(frozen=True)
class InteractionRow:
    id: uuid.UUID
    instance_id: uuid.UUID
    name: str
    description: str | None
    stale_token_limit_seconds: int | None


def _instance(r: Any) -> InstanceRow:
    return InstanceRow(
        r.id,
        r.template_id,
        r.name,
        r.description,
        r.definition_yaml,
        r.definition,
        r.ate_interaction_id,
        r.chronos_interaction_id,
        r.created_at,
        r.status,
        r.paused_at,
        r.paused_by,
        r.pause_reason,
    )


def clone_template(
    conn: Connection,
    *,
    template_id: uuid.UUID,
    defn: WorkflowDefinition,
    definition_yaml: str,
    mapping: dict[str, Any],
    name: str,
    description: str | None,
    now: datetime,
) -> InstanceRow:
    """Create an instance with its own copy of every role, interaction and component.

    ``mapping`` is the stored form of ``defn`` (the template's, reused as it is).
    """
    instance_id = uuid.uuid4()
    ids = DefinitionIds.fresh(defn)
    ate = ids.interactions.get(defn.ate_interaction or "")
    chronos = ids.interactions.get(defn.chronos_interaction or "")
    conn.execute(
        insert(I).values(
            id=instance_id,
            template_id=template_id,
            name=name,
            description=description,
            definition_yaml=definition_yaml,
            definition=mapping,
            ate_interaction_id=ate,
            chronos_interaction_id=chronos,
            zombie_timeout_seconds=defn.zombie_timeout_seconds,
            zombie_policy=defn.zombie_policy.value if defn.zombie_policy else None,
            max_reclaims=defn.max_reclaims,
            stale_token_limit_seconds=defn.stale_token_limit_seconds,
            created_at=now,
        )
    )
    write_definition(conn, defn, INSTANCE_ROWS, instance_id, ids)
    return InstanceRow(
        instance_id, template_id, name, description, definition_yaml, mapping, ate, chronos, now
    )


def get_instance(conn: Connection, instance_id: uuid.UUID) -> InstanceRow | None:
    r = conn.execute(select(I).where(I.c.id == instance_id)).first()
    return _instance(r) if r else None


def list_instances(conn: Connection) -> list[InstanceRow]:
    return [_instance(r) for r in conn.execute(select(I).order_by(I.c.created_at))]


def page_instances(conn: Connection, after: Key | None, limit: int) -> Page[InstanceRow]:
    return INSTANCES.fetch(conn, select(I), after, limit, _instance)


def roles_of(conn: Connection, instance_id: uuid.UUID) -> list[RoleRow]:
    rows = conn.execute(
        select(R.c.id, R.c.instance_id, R.c.name, R.c.role_type, R.c.strategy, R.c.description)
        .where(R.c.instance_id == instance_id)
        .order_by(R.c.name)
    )
    return [RoleRow(*r) for r in rows]


def interactions_of(conn: Connection, instance_id: uuid.UUID) -> list[InteractionRow]:
    rows = conn.execute(
        select(X.c.id, X.c.instance_id, X.c.name, X.c.description, X.c.stale_token_limit_seconds)
        .where(X.c.instance_id == instance_id)
        .order_by(X.c.name)
    )
    return [InteractionRow(*r) for r in rows]


def instance_of_role(conn: Connection, role_id: uuid.UUID) -> uuid.UUID | None:
    return conn.scalar(select(R.c.instance_id).where(R.c.id == role_id))


def queue_depths(conn: Connection, instance_id: uuid.UUID) -> dict[uuid.UUID, dict[str, int]]:
    """Count of UOWs per interaction and status."""
    rows = conn.execute(
        select(U.c.current_interaction_id, U.c.status, func.count())
        .where(U.c.instance_id == instance_id, U.c.current_interaction_id.is_not(None))
        .group_by(U.c.current_interaction_id, U.c.status)
    )
    depths: dict[uuid.UUID, dict[str, int]] = {}
    for ix, status, n in rows:
        depths.setdefault(ix, {})[status] = n
    return depths
