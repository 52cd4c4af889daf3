"""What a checkout with memory injection costs, counted in statements sent to the real driver
(SQLAlchemy's ``before_cursor_execute``, as in test_storage_seam.py): the count must not grow
with the number of memories, their versions, or the archived and toxic ones among them."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import memory as store
from tests.conftest import FakeClock, empty_database
from tests.flows import Flow, fixture_text, statements

# (memories, versions each) of the role checked out
SIZES = [(0, 1), (10, 1), (10, 5), (200, 1), (200, 5)]


def _ready_flow(engine: Engine) -> Flow:
    """A flow whose first UOW waits in SmallQ, read by Small: a role without a gate, whose
    checkout takes the store's single-statement path."""
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})
    flow.submit(flow.take("Triage"), amount=10)
    return flow


def _populate(flow: Flow, n: int, versions: int) -> int:
    """``n`` memories of role Small, each written ``versions`` times: a fifth personal (half
    of those another actor's), one in ten archived, one in ten toxic. How many the worker's
    checkout must see."""
    role = flow.roles["Small"]
    other = flow.new_actor("other")
    ids: list[uuid.UUID] = []
    owners: list[uuid.UUID | None] = []
    with flow.engine.db.begin() as conn:
        for i in range(n):
            owner = (flow.actor if i % 10 == 3 else other) if i % 5 == 3 else None
            for v in range(versions):
                entry = store.upsert(
                    conn,
                    instance_id=flow.instance_id,
                    role_id=role,
                    scope=MemoryScope.GLOBAL if owner is None else MemoryScope.ACTOR,
                    actor_id=owner,
                    key=f"k{i:04d}",
                    value={"i": i, "v": v},
                    now=flow.engine.clock(),
                    provenance=store.Provenance(written_by="tests", reasoning="load"),
                )
            ids.append(entry.id)
            owners.append(owner)
    archived = ids[0::10]
    toxic = ids[1::10]
    for memory_id in archived:
        flow.engine.memory.archive(memory_id, "old", by="tests")
    if toxic:
        flow.engine.toxic.mark_many(toxic, "wrong")
    hidden = set(archived) | set(toxic)
    return sum(
        1
        for memory_id, owner in zip(ids, owners, strict=True)
        if memory_id not in hidden and owner in (None, flow.actor)
    )


def _checkout_cost(engine: Engine, n: int, versions: int) -> int:
    """Statements sent by one checkout of Small with ``n`` memories of ``versions`` each."""
    flow = _ready_flow(engine)
    expected = _populate(flow, n, versions)
    with statements(engine) as sent:
        c = flow.take("Small")
    assert len(c.context) == expected and len(c.injected) == expected
    if expected:
        (injection,) = engine.memory.injected_into(c.uow_id)
        assert len(injection.entries) == expected
    return len(sent)


@pytest.fixture
def pg_engine(pg_url: str, clock: FakeClock) -> Iterator[Engine]:
    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, scheduler_enabled=False), clock=clock)
    yield eng
    eng.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path, clock: FakeClock) -> Iterator[Engine]:
    path = tmp_path / "chameleon.db"
    shutil.copy(sqlite_template, path)
    eng = Engine(Settings(database_url=f"sqlite:///{path}", scheduler_enabled=False), clock=clock)
    yield eng
    eng.close()


@pytest.mark.postgres
def test_postgres_a_checkout_with_memory_is_one_statement_whatever_the_memory(
    pg_engine: Engine,
) -> None:
    costs = {size: _checkout_cost(pg_engine, *size) for size in SIZES}
    assert set(costs.values()) == {1}, costs


def test_sqlite_a_checkout_with_memory_costs_a_fixed_number_of_statements(
    sqlite_engine: Engine,
) -> None:
    costs = {size: _checkout_cost(sqlite_engine, *size) for size in SIZES}
    with_memory = {cost for (n, _), cost in costs.items() if n}
    assert len(with_memory) == 1, costs
    # No memory to inject: no access stamp and no injection row to write, two fewer.
    assert costs[(0, 1)] == with_memory.pop() - 2, costs
