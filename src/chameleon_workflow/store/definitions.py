"""Writing a workflow definition's rows, for a template or for an instance's clone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Table, insert

from ..domain.definition import WorkflowDefinition
from .tables import (
    Component,
    Guardian,
    Interaction,
    Role,
    TemplateComponent,
    TemplateGuardian,
    TemplateInteraction,
    TemplateRole,
    table,
)


@dataclass(frozen=True)
class DefinitionTables:
    owner_column: str
    roles: Table
    interactions: Table
    components: Table
    guardians: Table


TEMPLATE_ROWS = DefinitionTables(
    "template_id",
    table(TemplateRole),
    table(TemplateInteraction),
    table(TemplateComponent),
    table(TemplateGuardian),
)
INSTANCE_ROWS = DefinitionTables(
    "instance_id", table(Role), table(Interaction), table(Component), table(Guardian)
)


@dataclass(frozen=True)
class DefinitionIds:
    roles: dict[str, uuid.UUID]
    interactions: dict[str, uuid.UUID]

    @classmethod
    def fresh(cls, defn: WorkflowDefinition) -> DefinitionIds:
        return cls(
            {r.name: uuid.uuid4() for r in defn.roles},
            {i.name: uuid.uuid4() for i in defn.interactions},
        )


def write_definition(
    conn: Connection,
    defn: WorkflowDefinition,
    tables: DefinitionTables,
    owner_id: uuid.UUID,
    ids: DefinitionIds,
) -> None:
    """Insert the roles, interactions, components and guardians (four statements)."""
    owner = {tables.owner_column: owner_id}
    conn.execute(
        insert(tables.roles),
        [
            owner
            | {
                "id": ids.roles[r.name],
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
        insert(tables.interactions),
        [
            owner
            | {
                "id": ids.interactions[i.name],
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
            owner
            | {
                "id": component_id,
                "name": c.name,
                "description": c.description,
                "ai_context": c.ai_context,
                "role_id": ids.roles[c.role],
                "interaction_id": ids.interactions[c.interaction],
                "direction": c.direction.value,
                "position": position,
            }
        )
        guardians += [
            owner
            | {
                "id": uuid.uuid4(),
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
        conn.execute(insert(tables.components), components)
    if guardians:
        conn.execute(insert(tables.guardians), guardians)
