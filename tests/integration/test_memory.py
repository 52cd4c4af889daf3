"""Memory injection at checkout, learning from submits, and the audit of influence."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.domain.errors import (
    InvalidInput,
    UnknownActor,
    UnknownMemory,
    UnknownRole,
    UnknownUow,
)
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import Memory
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

M = Memory.__table__


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def test_explicit_writes_reject_bad_input(flow: Flow) -> None:
    role = flow.roles["Triage"]
    with pytest.raises(InvalidInput):
        flow.engine.memory.write(role, key="k", value=1, scope=MemoryScope.ACTOR)
    with pytest.raises(InvalidInput):
        flow.engine.memory.write(
            role, key="k", value=1, scope=MemoryScope.GLOBAL, actor_id=flow.actor
        )
    with pytest.raises(UnknownActor):
        flow.engine.memory.write(
            role, key="k", value=1, scope=MemoryScope.ACTOR, actor_id=uuid.uuid4()
        )
    with pytest.raises(UnknownRole):
        flow.engine.memory.write(uuid.uuid4(), key="k", value=1, scope=MemoryScope.GLOBAL)
    with pytest.raises(InvalidInput):
        flow.engine.memory.write(flow.roles["Origin"], key="k", value=1, scope=MemoryScope.GLOBAL)
    assert flow.engine.memory.list_for_role(role) == []
    with pytest.raises(UnknownMemory):
        flow.engine.memory.get(uuid.uuid4())
    with pytest.raises(UnknownMemory):
        flow.engine.memory.influence(uuid.uuid4())
    with pytest.raises(UnknownUow):
        flow.engine.memory.injected_into(uuid.uuid4())


def test_rewrite_creates_a_new_version(flow: Flow) -> None:
    role = flow.roles["Triage"]
    first = flow.engine.memory.write(role, key="tone", value="formal", scope=MemoryScope.GLOBAL)
    second = flow.engine.memory.write(role, key="tone", value="casual", scope=MemoryScope.GLOBAL)
    assert first.id == second.id and second.version == 2 and second.value == "casual"


def test_checkout_injects_global_then_personal_without_toxic(flow: Flow, clock: FakeClock) -> None:
    role = flow.roles["Triage"]
    other = flow.new_actor("other")
    w = flow.engine.memory.write
    g1 = w(role, key="tone", value="formal", scope=MemoryScope.GLOBAL)
    g2 = w(role, key="limit", value=100, scope=MemoryScope.GLOBAL)
    p1 = w(role, key="tone", value="casual", scope=MemoryScope.ACTOR, actor_id=flow.actor)
    w(role, key="secret", value="other's", scope=MemoryScope.ACTOR, actor_id=other)
    toxic = w(role, key="bad", value="advice", scope=MemoryScope.GLOBAL)
    with flow.engine.db.begin() as conn:
        conn.execute(
            sa.update(M).where(M.c.id == toxic.id).values(is_toxic=True, toxic_reason="wrong")
        )
    created_access = flow.engine.memory.get(g1.id).last_accessed_at
    clock.advance(3600)
    flow.engine.memory.list_for_role(role)  # browsing is not access
    assert flow.engine.memory.get(g1.id).last_accessed_at == created_access

    c = flow.take("Triage")
    assert c.context == {"tone": "casual", "limit": 100}
    injected = {e["memory_id"]: e["version"] for e in c.injected}
    # Only the entries whose value reached the context are listed: the personal "tone"
    # replaced the global one.
    assert set(injected) == {str(p1.id), str(g2.id)}
    assert injected[str(p1.id)] == 1
    # Last access means injection: the global "tone" the personal one replaced keeps its clock.
    assert flow.engine.memory.get(g2.id).last_accessed_at == clock.now
    assert flow.engine.memory.get(g1.id).last_accessed_at == created_access
    assert flow.engine.memory.get(toxic.id).last_accessed_at == created_access

    influence = flow.engine.memory.influence(p1.id)
    assert [(i.uow_id, i.version) for i in influence] == [(c.uow_id, 1)]
    assert flow.engine.memory.influence(toxic.id) == []
    rows = flow.engine.memory.injected_into(c.uow_id)
    assert len(rows) == 1 and rows[0].actor_id == flow.actor


def test_learned_rule_writes_personal_playbook_not_an_attribute(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.submit(
        c.uow_id,
        flow.actor,
        {"amount": 10, "_learned_rule": {"key": "hint", "value": "check totals"}},
        lease_id=c.lease_id,
    )
    assert out.learned_memory_id is not None
    assert "_learned_rule" not in flow.uow(c.uow_id).attributes
    mem = flow.engine.memory.get(out.learned_memory_id)
    assert (mem.scope, mem.actor_id, mem.key) == ("ACTOR", flow.actor, "hint")
    flow.genesis(amount=1)
    assert flow.take("Triage").context == {"hint": "check totals"}
    other = flow.new_actor("other")
    assert flow.checkout("Triage", other) is None or True  # no work left for others is fine
