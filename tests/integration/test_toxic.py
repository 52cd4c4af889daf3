"""The toxic knowledge filter on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.domain.errors import InvalidInput, UnknownMemory
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.records import MemoryEntry
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def remember(flow: Flow, key: str, value: Any, *, personal: bool = False) -> uuid.UUID:
    scope = MemoryScope.ACTOR if personal else MemoryScope.GLOBAL
    actor = flow.actor if personal else None
    row = flow.engine.memory.write(
        flow.roles["Triage"], key=key, value=value, scope=scope, actor_id=actor
    )
    return row.id


def memory(flow: Flow, memory_id: uuid.UUID) -> MemoryEntry:
    return flow.engine.memory.get(memory_id)


# --- unhappy paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", None, 42])
def test_a_reason_is_required(flow: Flow, reason: Any) -> None:
    m = remember(flow, "tip", 1)
    with pytest.raises(InvalidInput, match="reason"):
        flow.engine.toxic.mark(m, reason)
    with pytest.raises(InvalidInput, match="reason"):
        flow.engine.toxic.mark_many([m], reason)
    assert memory(flow, m).is_toxic is False
    assert flow.engine.toxic.history(m) == []


def test_an_overlong_reason_is_refused(flow: Flow) -> None:
    m = remember(flow, "tip", 1)
    with pytest.raises(InvalidInput, match="reason"):
        flow.engine.toxic.mark(m, "x" * 2001)
    assert memory(flow, m).is_toxic is False


def test_a_blank_actor_name_is_refused(flow: Flow) -> None:
    m = remember(flow, "tip", 1)
    with pytest.raises(InvalidInput, match="by"):
        flow.engine.toxic.mark(m, "bad", by=" ")


def test_an_unknown_memory_is_404(flow: Flow) -> None:
    with pytest.raises(UnknownMemory):
        flow.engine.toxic.mark(uuid.uuid4(), "bad")
    with pytest.raises(UnknownMemory):
        flow.engine.toxic.unmark(uuid.uuid4(), "fine after all")


def test_unmarking_needs_a_reason_too(flow: Flow) -> None:
    m = remember(flow, "tip", 1)
    flow.engine.toxic.mark(m, "bad")
    with pytest.raises(InvalidInput, match="reason"):
        flow.engine.toxic.unmark(m, " ")
    assert memory(flow, m).is_toxic is True


@pytest.mark.parametrize("count", [0, 1001])
def test_bulk_marks_need_between_one_and_a_thousand_ids(flow: Flow, count: int) -> None:
    with pytest.raises(InvalidInput, match="memory_ids"):
        flow.engine.toxic.mark_many([uuid.uuid4() for _ in range(count)], "bad")


# --- marking, auditing, filtering ----------------------------------------------------------------


def test_marking_stores_reason_who_and_when(flow: Flow, clock: FakeClock) -> None:
    m = remember(flow, "tip", 1)
    change = flow.engine.toxic.mark(m, "  Led to incorrect results ", by="alice")
    assert (change.found, change.changed, change.toxic) == (True, True, True)
    row = memory(flow, m)
    assert row.is_toxic is True
    assert (row.toxic_reason, row.toxic_by, row.toxic_at) == (
        "Led to incorrect results", "alice", clock.now,
    )  # fmt: skip
    (event,) = flow.engine.toxic.history(m)
    assert (event["action"], event["reason"], event["by"], event["at"]) == (
        "mark_toxic", "Led to incorrect results", "alice", clock.now,
    )  # fmt: skip


def test_toxic_memories_are_never_injected(flow: Flow) -> None:
    bad = remember(flow, "shortcut", "skip checks")
    good = remember(flow, "rule", "check totals")
    personal = remember(flow, "mine", "p", personal=True)
    flow.engine.toxic.mark(bad, "wrong")
    flow.engine.toxic.mark(personal, "wrong too")
    c = flow.take("Triage")
    assert c.context == {"rule": "check totals"}
    assert [e["memory_id"] for e in c.injected] == [str(good)]


def test_marking_twice_changes_nothing_the_second_time(flow: Flow, clock: FakeClock) -> None:
    m = remember(flow, "tip", 1)
    flow.engine.toxic.mark(m, "first", by="alice")
    clock.advance(60)
    again = flow.engine.toxic.mark(m, "second", by="bob")
    assert (again.changed, again.toxic) == (False, True)
    assert memory(flow, m).toxic_by == "alice"
    assert len(flow.engine.toxic.history(m)) == 1


def test_unmarking_restores_injection_and_is_audited(flow: Flow, clock: FakeClock) -> None:
    m = remember(flow, "tip", 1)
    flow.engine.toxic.mark(m, "bad", by="alice")
    clock.advance(60)
    change = flow.engine.toxic.unmark(m, "it was fine", by="bob")
    assert (change.changed, change.toxic) == (True, False)
    row = memory(flow, m)
    assert (row.is_toxic, row.toxic_reason, row.toxic_by, row.toxic_at) == (
        False, None, None, None,
    )  # fmt: skip
    assert [(e["action"], e["by"]) for e in flow.engine.toxic.history(m)] == [
        ("mark_toxic", "alice"), ("unmark_toxic", "bob"),
    ]  # fmt: skip
    assert flow.take("Triage").context == {"tip": 1}
    assert flow.engine.toxic.unmark(m, "again").changed is False


def test_bulk_marking_reports_per_id(flow: Flow) -> None:
    a, b = remember(flow, "a", 1), remember(flow, "b", 2)
    flow.engine.toxic.mark(b, "already")
    missing = uuid.uuid4()
    changes = flow.engine.toxic.mark_many([a, missing, b, a], "bad batch", by="ops")
    assert [(c.memory_id, c.found, c.changed) for c in changes] == [
        (a, True, True), (missing, False, False), (b, True, False),
    ]  # fmt: skip
    assert memory(flow, a).toxic_reason == "bad batch"
    assert memory(flow, b).toxic_reason == "already"
    assert len(flow.engine.toxic.history(a)) == 1
