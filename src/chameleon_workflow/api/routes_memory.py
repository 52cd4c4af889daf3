"""Role memory: explicit writes, browsing, and the audit of influence."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..domain.enums import MemoryScope
from .deps import EngineDep
from .encode import plain
from .schemas import MemoryRequest

router = APIRouter(tags=["memory"])

# SQL OFFSET is a signed 64-bit integer on both databases; beyond it the driver fails.
MAX_OFFSET = 2**63 - 1


@router.post("/roles/{role_id}/memories", status_code=201)
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


@router.get("/roles/{role_id}/memories")
def list_memories(
    role_id: uuid.UUID,
    engine: EngineDep,
    scope: MemoryScope | None = None,
    actor_id: uuid.UUID | None = None,
    include_toxic: bool = True,
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


@router.get("/memories/{memory_id}")
def get_memory(memory_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    return plain(engine.memory.get(memory_id))


@router.get("/memories/{memory_id}/influence")
def memory_influence(memory_id: uuid.UUID, engine: EngineDep) -> list[dict[str, Any]]:
    return plain(engine.memory.influence(memory_id))


@router.get("/uows/{uow_id}/memory-injections")
def uow_injections(uow_id: uuid.UUID, engine: EngineDep) -> list[dict[str, Any]]:
    return plain(engine.memory.injected_into(uow_id))
