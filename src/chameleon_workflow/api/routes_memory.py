"""Role memory: explicit writes, browsing, and the audit of influence."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..domain.enums import MemoryScope
from .deps import EngineDep
from .encode import plain
from .responses import COMMON, WITH_BODY, responses
from .schemas import MemoryRequest, QueryBool

router = APIRouter(tags=["memory"], responses=COMMON)
NOT_FOUND = responses(404)

# SQL OFFSET is a signed 64-bit integer on both databases; beyond it the driver fails.
MAX_OFFSET = 2**63 - 1


@router.post("/roles/{role_id}/memories", status_code=201, responses=NOT_FOUND | WITH_BODY)
def write_memory(role_id: uuid.UUID, body: MemoryRequest, engine: EngineDep) -> dict[str, Any]:
    row = engine.memory.write(
        role_id,
        key=body.key,
        value=body.value,
        scope=body.scope,
        actor_id=body.actor_id,
        confidence=body.confidence,
    )
    return plain(row)


@router.get("/roles/{role_id}/memories", responses=NOT_FOUND)
def list_memories(
    role_id: uuid.UUID,
    engine: EngineDep,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    include_toxic: QueryBool = True,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    rows = engine.memory.list_for_role(
        role_id,
        scope=scope,
        actor_id=actor_id,
        include_toxic=include_toxic,
        limit=limit,
        offset=offset,
    )
    return plain(rows)


@router.get("/memories/{memory_id}", responses=NOT_FOUND)
def get_memory(memory_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    return plain(engine.memory.get(memory_id))


@router.get("/memories/{memory_id}/influence", responses=NOT_FOUND)
def memory_influence(memory_id: uuid.UUID, engine: EngineDep) -> list[dict[str, Any]]:
    return plain(engine.memory.influence(memory_id))


@router.get("/uows/{uow_id}/memory-injections", responses=NOT_FOUND)
def uow_injections(uow_id: uuid.UUID, engine: EngineDep) -> list[dict[str, Any]]:
    return plain(engine.memory.injected_into(uow_id))
