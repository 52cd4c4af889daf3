"""Templates: versioned, immutable copies of imported workflow definitions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ..domain.definition import WorkflowDefinition
from .tables import (
    Template,
    TemplateComponent,
    TemplateGuardian,
    TemplateInteraction,
    TemplateRole,
    table,
)

T = table(Template)


@dataclass(frozen=True)
class TemplateRow:
    id: uuid.UUID
    name: str
    version: int
    description: str | None
    source_yaml: str
    canonical_yaml: str
    imported_at: datetime


def _row(r: Any) -> TemplateRow:
    return TemplateRow(
        id=r.id,
        name=r.name,
        version=r.version,
        description=r.description,
        source_yaml=r.source_yaml,
        canonical_yaml=r.canonical_yaml,
        imported_at=r.imported_at,
    )


def next_version(conn: Connection, name: str) -> int:
    current = conn.scalar(select(func.max(T.c.version)).where(T.c.name == name))
    return (current or 0) + 1


def insert_template(
    conn: Connection,
    *,
    name: str,
    version: int,
    source_yaml: str,
    canonical_yaml: str,
    defn: WorkflowDefinition,
    now: datetime,
) -> TemplateRow:
    """Write a template and its roles, interactions, components and guardians."""
    template_id = uuid.uuid4()
    conn.execute(
        insert(T).values(
            id=template_id,
            name=name,
            version=version,
            description=defn.description,
            source_yaml=source_yaml,
            canonical_yaml=canonical_yaml,
            imported_at=now,
        )
    )
    role_ids = {r.name: uuid.uuid4() for r in defn.roles}
    interaction_ids = {i.name: uuid.uuid4() for i in defn.interactions}
    conn.execute(
        insert(table(TemplateRole)),
        [
            {
                "id": role_ids[r.name],
                "template_id": template_id,
                "name": r.name,
                "description": r.description,
                "ai_context": r.ai_context,
                "role_type": r.type.value,
                "strategy": r.strategy.value if r.strategy else None,
                "zombie_timeout_seconds": r.zombie_timeout_seconds,
                "zombie_policy": r.zombie_policy.value if r.zombie_policy else None,
                "max_reclaims": r.max_reclaims,
            }
            for r in defn.roles
        ],
    )
    conn.execute(
        insert(table(TemplateInteraction)),
        [
            {
                "id": interaction_ids[i.name],
                "template_id": template_id,
                "name": i.name,
                "description": i.description,
                "ai_context": i.ai_context,
                "stale_token_limit_seconds": i.stale_token_limit_seconds,
            }
            for i in defn.interactions
        ],
    )
    components, guardians = [], []
    for position, c in enumerate(defn.components):
        component_id = uuid.uuid4()
        components.append(
            {
                "id": component_id,
                "template_id": template_id,
                "name": c.name,
                "description": c.description,
                "ai_context": c.ai_context,
                "role_id": role_ids[c.role],
                "interaction_id": interaction_ids[c.interaction],
                "direction": c.direction.value,
                "position": position,
            }
        )
        guardians += [
            {
                "id": uuid.uuid4(),
                "template_id": template_id,
                "component_id": component_id,
                "name": g.name,
                "description": g.description,
                "ai_context": g.ai_context,
                "guardian_type": g.type.value,
                "config": dict(g.config),
                "position": gpos,
            }
            for gpos, g in enumerate(c.guardians)
        ]
    if components:
        conn.execute(insert(table(TemplateComponent)), components)
    if guardians:
        conn.execute(insert(table(TemplateGuardian)), guardians)
    return TemplateRow(
        template_id, name, version, defn.description, source_yaml, canonical_yaml, now
    )


def get_template(conn: Connection, template_id: uuid.UUID) -> TemplateRow | None:
    r = conn.execute(select(T).where(T.c.id == template_id)).first()
    return _row(r) if r else None


def find_template(conn: Connection, name: str, version: int | None = None) -> TemplateRow | None:
    """The named template at ``version``, or its latest version."""
    stmt = select(T).where(T.c.name == name)
    stmt = (
        stmt.where(T.c.version == version)
        if version is not None
        else stmt.order_by(T.c.version.desc()).limit(1)
    )
    r = conn.execute(stmt).first()
    return _row(r) if r else None


def list_templates(conn: Connection) -> list[TemplateRow]:
    return [_row(r) for r in conn.execute(select(T).order_by(T.c.name, T.c.version))]
