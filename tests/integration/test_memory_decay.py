"""Memory decay on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.domain.errors import InvalidInput, UnknownInstance
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import Memory
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

M = Memory.__table__
DAY = 86_400


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def remember(flow: Flow, n: int = 1, *, role: str = "Triage", prefix: str = "k") -> list[uuid.UUID]:
    return [
        flow.engine.memory.write(
            flow.roles[role], key=f"{prefix}{i}", value=i, scope=MemoryScope.GLOBAL
        ).id
        for i in range(n)
    ]


def ids(engine: Engine, *, archived: bool = False) -> set[uuid.UUID]:
    """The ids of the live (or archived) memories."""
    state = M.c.archived_at.is_not(None) if archived else M.c.archived_at.is_(None)
    with engine.db.connect() as conn:
        return set(conn.scalars(sa.select(M.c.id).where(state)))


# --- bad input changes nothing -------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, -5, True, 1.5, "90", 36_501, 10**30])
def test_a_retention_that_is_not_a_positive_integer_is_refused(
    flow: Flow, clock: FakeClock, days: Any
) -> None:
    kept = remember(flow, 2)
    clock.advance(1000 * DAY)
    with pytest.raises(InvalidInput, match="retention_days"):
        flow.engine.maintenance.memory_decay(days)
    assert ids(flow.engine) == set(kept)
    assert flow.engine.maintenance.runs() == []


def test_an_unknown_instance_scope_is_404(flow: Flow, clock: FakeClock) -> None:
    remember(flow)
    clock.advance(100 * DAY)
    with pytest.raises(UnknownInstance):
        flow.engine.maintenance.memory_decay(instance_id=uuid.uuid4())
    assert len(ids(flow.engine)) == 1


# --- what goes and what stays --------------------------------------------------------------------


def test_memories_older_than_the_retention_are_deleted(flow: Flow, clock: FakeClock) -> None:
    old = remember(flow, 3, prefix="old")
    clock.advance(91 * DAY)
    fresh = remember(flow, 2, prefix="new")
    run = flow.engine.maintenance.memory_decay()
    assert run.counts == {"deleted": 3, "batches": 1}
    assert ids(flow.engine) == set(fresh)
    assert not set(old) & ids(flow.engine)


def test_the_retention_given_is_used(flow: Flow, clock: FakeClock) -> None:
    remember(flow, 2)
    clock.advance(8 * DAY)
    assert flow.engine.maintenance.memory_decay(30).counts["deleted"] == 0
    assert flow.engine.maintenance.memory_decay(7).counts["deleted"] == 2


def test_memories_without_a_timestamp_are_kept(flow: Flow, clock: FakeClock) -> None:
    legacy = remember(flow, 2)
    with flow.engine.db.begin() as conn:
        conn.execute(sa.update(M).values(last_accessed_at=None))
    clock.advance(10_000 * DAY)
    assert flow.engine.maintenance.memory_decay(1).counts["deleted"] == 0
    assert ids(flow.engine) == set(legacy)


def test_injection_at_checkout_keeps_a_memory_alive_but_browsing_does_not(
    flow: Flow, clock: FakeClock
) -> None:
    (used,) = remember(flow, 1, role="Triage")
    (browsed,) = remember(flow, 1, role="Small")
    clock.advance(89 * DAY)
    flow.engine.memory.list_for_role(flow.roles["Small"])
    assert flow.take("Triage").context == {"k0": 0}
    clock.advance(2 * DAY)
    assert flow.engine.maintenance.memory_decay().counts["deleted"] == 1
    assert ids(flow.engine) == {used}
    assert browsed not in ids(flow.engine)


def test_decay_works_in_bounded_batches(flow: Flow, clock: FakeClock) -> None:
    remember(flow, 10)
    clock.advance(91 * DAY)
    run = flow.engine.maintenance.memory_decay(batch_size=3)
    assert run.counts == {"deleted": 10, "batches": 4}
    assert ids(flow.engine) == set()


def test_a_dry_run_reports_and_changes_nothing(flow: Flow, clock: FakeClock) -> None:
    old = remember(flow, 3)
    clock.advance(91 * DAY)
    run = flow.engine.maintenance.memory_decay(dry_run=True)
    assert run.dry_run and run.counts == {"candidates": 3}
    assert set(run.sample) == set(old)
    assert ids(flow.engine) == set(old)


def test_archive_mode_archives_the_rows_with_why(flow: Flow, clock: FakeClock) -> None:
    old = remember(flow, 4)
    clock.advance(91 * DAY)
    kept = remember(flow, 1, prefix="fresh")
    run = flow.engine.maintenance.memory_decay(archive=True, batch_size=3)
    assert run.counts == {"deleted": 4, "batches": 2, "archived": True}
    assert ids(flow.engine) == set(kept)
    assert ids(flow.engine, archived=True) == set(old)
    entry = flow.engine.memory.get(old[0])
    assert entry.archived_at == clock.now and entry.key == "k0" and entry.value == 0
    assert entry.archived_by == "engine (memory decay)"
    assert entry.archive_reason == "not injected for 90 days (memory decay)"
    assert [e["action"] for e in flow.engine.toxic.history(old[0])] == ["archive"]
    # A second run finds nothing more to archive: archived rows are not candidates.
    again = flow.engine.maintenance.memory_decay(archive=True, batch_size=3)
    assert again.counts["deleted"] == 0


def test_decay_skips_held_memories_in_both_modes(flow: Flow, clock: FakeClock) -> None:
    held, loose = remember(flow, 2)
    flow.engine.memory.hold(held, "litigation 42", by="legal")
    clock.advance(91 * DAY)
    run = flow.engine.maintenance.memory_decay(archive=True)
    assert run.counts["deleted"] == 1
    assert ids(flow.engine) == {held} and ids(flow.engine, archived=True) == {loose}
    run = flow.engine.maintenance.memory_decay()
    assert run.counts["deleted"] == 1  # the archived one, whose clock ran out
    assert ids(flow.engine) == {held} and ids(flow.engine, archived=True) == set()
    assert flow.engine.memory.get(held).held


def test_decay_can_be_scoped_to_one_instance(engine: Engine, clock: FakeClock) -> None:
    a = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    b = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    remember(a, 2)
    in_b = remember(b, 3)
    clock.advance(91 * DAY)
    run = engine.maintenance.memory_decay(instance_id=a.instance_id)
    assert run.counts["deleted"] == 2 and run.parameters["instance_id"] == str(a.instance_id)
    assert ids(engine) == set(in_b)


def test_every_run_is_recorded(flow: Flow, clock: FakeClock) -> None:
    remember(flow, 1)
    clock.advance(91 * DAY)
    flow.engine.maintenance.memory_decay(dry_run=True)
    flow.engine.maintenance.memory_decay(45)
    runs = flow.engine.maintenance.runs(job="memory_decay")
    assert [r.parameters["retention_days"] for r in runs] == [45, 90]
    assert runs[0].counts == {"deleted": 1, "batches": 1} and runs[0].trigger == "admin"
    assert runs[0].finished_at == clock.now and runs[0].error is None
