"""Store records read the fields they name: a column they do not name never reaches a caller."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store import memory, uows
from chameleon_workflow.store.records import (
    ActorRecord,
    InjectionRecord,
    MemoryEntry,
    TransitionRecord,
    UowRecord,
)
from chameleon_workflow.store.tables import Actor, InteractionLog, Memory, Uow, table
from tests.flows import Flow, fixture_text

UOW_FIELDS = (
    "id", "instance_id", "parent_id", "status", "current_interaction_id", "current_role_id",
    "child_count", "finished_child_count", "created_at", "updated_at", "entered_at",
    "lease_id", "lease_holder_id", "leased_at", "last_heartbeat", "reclaim_count", "failure",
)  # fmt: skip


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


def _wider(model: type, where: sa.ColumnElement[bool]) -> sa.Select[tuple[object, ...]]:
    """Every column of the table plus one no record names, as a new column would be."""
    t = table(model)
    return sa.select(t, sa.literal("surprise").label("column_added_later")).where(where)


def test_a_record_ignores_a_column_it_does_not_name(flow: Flow) -> None:
    c = flow.take("Triage")
    m = flow.engine.memory.write(flow.roles["Triage"], key="k", value=1, scope=MemoryScope.GLOBAL)
    U, M, L, AC = table(Uow), table(Memory), table(InteractionLog), table(Actor)
    with flow.engine.db.connect() as conn:
        uow_row = conn.execute(_wider(Uow, U.c.id == c.uow_id)).one()
        memory_row = conn.execute(_wider(Memory, M.c.id == m.id)).one()
        log_rows = conn.execute(_wider(InteractionLog, L.c.uow_id == c.uow_id).order_by(L.c.id))
        actor_row = conn.execute(_wider(Actor, AC.c.id == flow.actor)).one()
        pairs = [
            (UowRecord.from_row(uow_row), uows.record(conn, c.uow_id)),
            (MemoryEntry.from_row(memory_row), memory.get(conn, m.id)),
            ([TransitionRecord.from_row(r) for r in log_rows], uows.log_history(conn, c.uow_id)),
            (ActorRecord.from_row(actor_row), flow.engine.instances.actor(flow.actor).actor),
        ]
    assert uow_row.column_added_later == "surprise"
    for built, read in pairs:
        assert built == read
    assert not hasattr(pairs[0][0], "column_added_later")
    assert _names(UowRecord) == UOW_FIELDS


def test_a_record_names_its_fields_so_a_missing_column_fails_loudly(flow: Flow) -> None:
    U = table(Uow)
    with flow.engine.db.connect() as conn:
        narrow = conn.execute(sa.select(U.c.id, U.c.status).where(U.c.id == flow.first_uow)).one()
    with pytest.raises(AttributeError, match="instance_id"):
        UowRecord.from_row(narrow)


def test_records_are_frozen(flow: Flow) -> None:
    detail = flow.uow(flow.first_uow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        detail.uow.status = "COMPLETED"  # type: ignore[misc]


def test_injected_memory_ids_are_uuids_on_both_databases(flow: Flow) -> None:
    m = flow.engine.memory.write(flow.roles["Triage"], key="k", value=1, scope=MemoryScope.GLOBAL)
    c = flow.take("Triage")
    with flow.engine.db.connect() as conn:
        (injection,) = memory.injections_of_uow(conn, c.uow_id, None, 10).items
        (influenced,) = memory.uows_influenced_by(conn, m.id, None, 10).items
    assert isinstance(injection, InjectionRecord) and injection == influenced
    assert injection.memory_ids == (m.id,) and isinstance(injection.memory_ids[0], uuid.UUID)
    assert injection.version_of(m.id) == 1
    with pytest.raises(ValueError):
        injection.version_of(uuid.uuid4())
