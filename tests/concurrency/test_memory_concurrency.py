"""Concurrent writes of one memory key on PostgreSQL: one memory, every version kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.tables import Memory, MemoryVersion
from tests.flows import Flow, fixture_text

M = Memory.__table__
MV = MemoryVersion.__table__
WRITERS = 12


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    from tests.conftest import empty_database

    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, db_pool_size=WRITERS + 2, scheduler_enabled=False))
    yield eng
    eng.close()


@pytest.mark.postgres
@pytest.mark.parametrize("scope", [MemoryScope.GLOBAL, MemoryScope.ACTOR])
def test_first_writes_of_one_key_at_once_make_one_memory(
    pg_engine: Engine, scope: MemoryScope
) -> None:
    flow = Flow(pg_engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    role = flow.roles["Triage"]
    actor = flow.new_actor("writer") if scope is MemoryScope.ACTOR else None
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            pg_engine.memory.write(
                role, key="shared", value=i, scope=scope, actor_id=actor, reasoning=f"w{i}"
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg_engine.db.connect() as conn:
        memories = conn.execute(sa.select(M.c.id, M.c.version).where(M.c.key == "shared")).all()
        versions = conn.scalars(sa.select(MV.c.version).order_by(MV.c.version)).all()
    assert len(memories) == 1 and memories[0].version == WRITERS
    assert versions == list(range(1, WRITERS + 1))
