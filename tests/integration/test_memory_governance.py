"""Memory governance at the engine, on both databases: provenance and versions, archive and
restore, legal hold, playbook reset, experience validation, last access and the audit of
influence (unhappy paths first)."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import ExperienceValidation, MemoryScope
from chameleon_workflow.domain.errors import (
    InvalidInput,
    InvalidState,
    MemoryHeld,
    UnknownActor,
    UnknownMemory,
    UnknownRole,
)
from chameleon_workflow.domain.memory import MAX_VALUE_BYTES
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import memory as store
from chameleon_workflow.store.records import MemoryEntry
from chameleon_workflow.store.tables import (
    Memory,
    MemoryEvent,
    MemoryInjection,
    MemoryVersion,
    table,
)
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

M = table(Memory)
MV = table(MemoryVersion)
ME = table(MemoryEvent)
MI = table(MemoryInjection)
DAY = 86_400
GLOBAL, ACTOR = MemoryScope.GLOBAL, MemoryScope.ACTOR


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def write(flow: Flow, key: str, value: Any = 1, *, role: str = "Triage", **kw: Any) -> MemoryEntry:
    kw.setdefault("scope", GLOBAL)
    kw.setdefault("reasoning", f"test writes {key}")
    return flow.engine.memory.write(flow.roles[role], key=key, value=value, **kw)


def snapshot(engine: Engine) -> tuple[list[dict[str, Any]], ...]:
    """Every memory row, version, lifecycle event and injection row."""
    with engine.db.connect() as conn:
        return tuple(
            [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for t in (M, MV, ME, MI)
        )


def events(engine: Engine, memory_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return [(e["action"], e["reason"], e["by"]) for e in engine.toxic.history(memory_id)]


def version_count(engine: Engine, memory_id: uuid.UUID) -> int:
    with engine.db.connect() as conn:
        found = conn.scalar(
            sa.select(sa.func.count()).select_from(MV).where(MV.c.memory_id == memory_id)
        )
    return int(found or 0)


def injected_keys(
    flow: Flow, role: str = "Triage", actor: uuid.UUID | None = None
) -> dict[str, Any]:
    """Start a new UOW and check it out: the context the memories made."""
    flow.genesis(amount=1)
    return flow.take(role, actor).context


# --- refusals change nothing ------------------------------------------------------------------


def test_unknown_memory_role_or_actor_is_refused_and_changes_nothing(flow: Flow) -> None:
    mem = flow.engine.memory
    write(flow, "tone", "formal")
    before = snapshot(flow.engine)
    ghost = uuid.uuid4()
    for call in (
        lambda: mem.archive(ghost, "r", by="t"),
        lambda: mem.restore(ghost, "r", by="t"),
        lambda: mem.hold(ghost, "r", by="t"),
        lambda: mem.release(ghost, "r", by="t"),
        lambda: mem.versions(ghost),
        lambda: mem.get(ghost),
    ):
        with pytest.raises(UnknownMemory, match=str(ghost)):
            call()
    with pytest.raises(UnknownRole):
        mem.write(ghost, key="k", value=1, scope=GLOBAL, reasoning="r")
    with pytest.raises(UnknownRole):
        mem.reset_playbook(ghost, flow.actor, "r", by="t")
    with pytest.raises(UnknownRole):
        mem.list_for_role(ghost)
    with pytest.raises(UnknownActor):
        write(flow, "k", scope=ACTOR, actor_id=ghost)
    with pytest.raises(UnknownActor):
        mem.reset_playbook(flow.roles["Triage"], ghost, "r", by="t")
    assert snapshot(flow.engine) == before


def test_state_conflicts_are_refused_and_change_nothing(flow: Flow) -> None:
    mem = flow.engine.memory
    held = write(flow, "held").id
    archived = write(flow, "archived").id
    live = write(flow, "live").id
    mem.hold(held, "litigation 7", by="legal")
    mem.archive(archived, "outdated", by="ops")
    before = snapshot(flow.engine)

    with pytest.raises(MemoryHeld, match="litigation 7"):
        mem.archive(held, "tidy", by="ops")
    with pytest.raises(InvalidState, match="already archived"):
        mem.archive(archived, "again", by="ops")
    with pytest.raises(InvalidState, match="not archived"):
        mem.restore(live, "why", by="ops")
    with pytest.raises(InvalidState, match="already under legal hold"):
        mem.hold(held, "again", by="legal")
    with pytest.raises(InvalidState, match="not under legal hold"):
        mem.release(live, "why", by="legal")
    assert snapshot(flow.engine) == before


BAD_WRITES: list[tuple[str, dict[str, Any], str]] = [
    ("blank key", {"key": "  "}, "key"),
    ("empty key", {"key": ""}, "key"),
    ("long key", {"key": "k" * 201}, "key"),
    ("key not text", {"key": 7}, "key"),
    ("NaN", {"value": math.nan}, "value"),
    ("NaN inside", {"value": {"x": [1, math.inf]}}, "value"),
    ("not JSON", {"value": {1, 2}}, "value"),
    ("too big", {"value": "x" * (MAX_VALUE_BYTES - 1)}, "65536"),
    ("too big in UTF-8", {"value": "é" * 32_768}, "65536"),
    ("blank reasoning", {"reasoning": " \n"}, "reasoning"),
    ("long reasoning", {"reasoning": "r" * 2001}, "reasoning"),
]


@pytest.mark.parametrize("case, change, word", BAD_WRITES, ids=[c[0] for c in BAD_WRITES])
def test_bad_writes_are_invalid_input_and_change_nothing(
    flow: Flow, case: str, change: dict[str, Any], word: str
) -> None:
    kept = write(flow, "k", "v1")
    before = snapshot(flow.engine)
    body: dict[str, Any] = {"key": "k", "value": "v2", "scope": GLOBAL, "reasoning": "r"} | change
    with pytest.raises(InvalidInput, match=word):
        flow.engine.memory.write(flow.roles["Triage"], **body)
    assert snapshot(flow.engine) == before
    assert flow.engine.memory.get(kept.id).version == 1


def test_a_value_of_exactly_the_limit_is_accepted_counted_in_utf8(flow: Flow) -> None:
    # '"' + 65534 x + '"' and '"' + 32767 two-byte characters + '"' are 65536 bytes each
    ascii_ = write(flow, "ascii", "x" * (MAX_VALUE_BYTES - 2))
    wide = write(flow, "wide", "é" * 32_767)
    assert len(flow.engine.memory.get(ascii_.id).value) == MAX_VALUE_BYTES - 2
    assert flow.engine.memory.get(wide.id).value == "é" * 32_767


REASON_CALLS: dict[str, Callable[[Flow, uuid.UUID, str], Any]] = {
    "archive": lambda f, m, r: f.engine.memory.archive(m, r, by="t"),
    "restore": lambda f, m, r: f.engine.memory.restore(m, r, by="t"),
    "hold": lambda f, m, r: f.engine.memory.hold(m, r, by="t"),
    "release": lambda f, m, r: f.engine.memory.release(m, r, by="t"),
    "reset": lambda f, m, r: f.engine.memory.reset_playbook(f.roles["Triage"], f.actor, r, by="t"),
}


@pytest.mark.parametrize("call", sorted(REASON_CALLS))
@pytest.mark.parametrize("reason", ["", "   ", "r" * 2001])
def test_lifecycle_calls_need_a_reason_and_change_nothing_without_one(
    flow: Flow, call: str, reason: str
) -> None:
    personal = write(flow, "p", scope=ACTOR, actor_id=flow.actor).id
    archived = write(flow, "a", scope=ACTOR, actor_id=flow.actor).id
    held = write(flow, "h").id
    flow.engine.memory.archive(archived, "set up", by="t")
    flow.engine.memory.hold(held, "set up", by="t")
    target = {"restore": archived, "release": held}.get(call, personal)
    before = snapshot(flow.engine)
    with pytest.raises(InvalidInput, match="reason"):
        REASON_CALLS[call](flow, target, reason)
    assert snapshot(flow.engine) == before


def test_a_bad_learned_rule_refuses_the_submit_and_writes_no_memory(flow: Flow) -> None:
    c = flow.take("Triage")
    before = snapshot(flow.engine)
    for rule in (
        {"key": "k", "value": math.nan},
        {"key": "k", "value": "x" * MAX_VALUE_BYTES},
        {"key": " ", "value": 1},
        {"key": "k", "value": 1, "reasoning": ""},
    ):
        with pytest.raises(InvalidInput, match="_learned_rule"):
            flow.submit(c, amount=10, _learned_rule=rule)
    assert snapshot(flow.engine) == before
    assert flow.uow(c.uow_id).uow.status == "ACTIVE"


# --- versions and provenance --------------------------------------------------------------------


def test_three_writes_keep_one_id_and_three_versions_with_provenance(
    flow: Flow, clock: FakeClock
) -> None:
    other = flow.new_actor("other")
    source = flow.first_uow
    times = []
    ids = set()
    for n, (by, why, uow, actor) in enumerate(
        [
            ("alice", "first guess", None, None),
            ("bob", "measured", source, other),
            ("carol", "corrected", source, flow.actor),
        ],
        1,
    ):
        entry = write(
            flow, "limit", n * 10, by=by, reasoning=why, source_uow_id=uow, source_actor_id=actor
        )
        ids.add(entry.id)
        times.append(clock.now)
        assert (entry.version, entry.value, entry.written_by, entry.reasoning) == (
            n,
            n * 10,
            by,
            why,
        )
        clock.advance(60)
    (memory_id,) = ids
    versions = flow.engine.memory.versions(memory_id)
    assert [
        (v.version, v.value, v.written_by, v.reasoning, v.source_uow_id, v.source_actor_id)
        for v in versions
    ] == [
        (1, 10, "alice", "first guess", None, None),
        (2, 20, "bob", "measured", source, other),
        (3, 30, "carol", "corrected", source, flow.actor),
    ]
    assert [v.written_at for v in versions] == times
    current = flow.engine.memory.get(memory_id)
    assert (current.version, current.source_uow_id, current.source_actor_id) == (
        3,
        source,
        flow.actor,
    )
    page = flow.engine.memory.versions_page(memory_id, limit=2)
    assert [v.version for v in page.items] == [1, 2] and page.next_key is not None
    rest = flow.engine.memory.versions_page(memory_id, after=page.next_key, limit=2)
    assert [v.version for v in rest.items] == [3] and rest.next_key is None


def test_a_learned_rule_records_the_uow_the_actor_and_the_reasoning(flow: Flow) -> None:
    c = flow.take("Triage")
    rule = {"key": "hint", "value": "check totals", "reasoning": "totals were off twice"}
    out = flow.submit(c, amount=10, _learned_rule=rule)
    assert out.learned_memory_id is not None
    entry = flow.engine.memory.get(out.learned_memory_id)
    assert (entry.scope, entry.actor_id, entry.role_id) == (
        "ACTOR",
        flow.actor,
        flow.roles["Triage"],
    )
    assert (entry.source_uow_id, entry.source_actor_id) == (c.uow_id, flow.actor)
    assert entry.reasoning == "totals were off twice"
    assert entry.written_by == f"actor {flow.actor} (submit)"
    (v1,) = flow.engine.memory.versions(entry.id)
    assert (v1.version, v1.value, v1.reasoning, v1.source_uow_id, v1.source_actor_id) == (
        1,
        "check totals",
        "totals were off twice",
        c.uow_id,
        flow.actor,
    )
    # Learned again without a reasoning: the default names the UOW.
    flow.genesis(amount=3)
    again = flow.take("Triage")
    out2 = flow.submit(again, amount=3, _learned_rule={"key": "hint", "value": "check twice"})
    assert out2.learned_memory_id == entry.id
    v2 = flow.engine.memory.versions(entry.id)[1]
    assert (v2.version, v2.value, v2.source_uow_id) == (2, "check twice", again.uow_id)
    assert v2.reasoning == f"learned while working on UOW {again.uow_id}"


# --- archive and restore ----------------------------------------------------------------------


def test_an_archived_memory_is_not_injected_and_a_restored_one_is(
    flow: Flow, clock: FakeClock
) -> None:
    tip = write(flow, "tip", "look twice")
    write(flow, "tone", "formal")
    assert flow.take("Triage").context == {"tip": "look twice", "tone": "formal"}
    clock.advance(3600)
    done = flow.engine.memory.archive(tip.id, "misleading", by="ops")
    assert (done.archived, done.archived_at, done.archived_by, done.archive_reason) == (
        True,
        clock.now,
        "ops",
        "misleading",
    )
    assert injected_keys(flow) == {"tone": "formal"}
    assert [
        m.id for m in flow.engine.memory.list_for_role(flow.roles["Triage"], archived=True)
    ] == [tip.id]
    assert tip.id not in {m.id for m in flow.engine.memory.list_for_role(flow.roles["Triage"])}

    clock.advance(7 * DAY)
    back = flow.engine.memory.restore(tip.id, "was right after all", by="ops")
    assert back.last_accessed_at == clock.now
    assert (back.archived, back.archived_by, back.archive_reason) == (False, None, None)
    assert injected_keys(flow) == {"tip": "look twice", "tone": "formal"}
    assert events(flow.engine, tip.id) == [
        ("archive", "misleading", "ops"),
        ("restore", "was right after all", "ops"),
    ]
    assert flow.engine.memory.list_for_role(flow.roles["Triage"], archived=True) == []


def test_writing_the_key_of_an_archived_memory_brings_it_back(flow: Flow, clock: FakeClock) -> None:
    old = write(flow, "tip", "v1")
    flow.engine.memory.archive(old.id, "stale", by="ops")
    clock.advance(DAY)
    again = write(flow, "tip", "v2", by="author")
    assert (again.id, again.version, again.value, again.archived) == (old.id, 2, "v2", False)
    assert again.last_accessed_at == clock.now and again.archived_by is None
    assert events(flow.engine, old.id) == [
        ("archive", "stale", "ops"),
        ("restore", "written again (version 2)", "author"),
    ]
    assert injected_keys(flow) == {"tip": "v2"}


def test_a_toxic_memory_stays_toxic_when_written_again(flow: Flow) -> None:
    bad = write(flow, "bad", "advice")
    flow.engine.toxic.mark(bad.id, "harmful")
    again = write(flow, "bad", "better advice")
    assert (again.id, again.version, again.is_toxic, again.toxic_reason) == (
        bad.id,
        2,
        True,
        "harmful",
    )
    assert injected_keys(flow) == {}


# --- legal hold ---------------------------------------------------------------------------------


def test_a_hold_blocks_archive_reset_and_decay_until_released(flow: Flow, clock: FakeClock) -> None:
    mem = flow.engine.memory
    role = flow.roles["Triage"]
    held = write(flow, "held", scope=ACTOR, actor_id=flow.actor)
    entry = mem.hold(held.id, "case 42", by="legal")
    assert (entry.held, entry.held_at, entry.held_by, entry.hold_reason) == (
        True,
        clock.now,
        "legal",
        "case 42",
    )
    with pytest.raises(MemoryHeld):
        mem.archive(held.id, "tidy", by="ops")
    reset = mem.reset_playbook(role, flow.actor, "fresh start", by="ops")
    assert (reset.archived, reset.held) == ([], [held.id])
    clock.advance(400 * DAY)
    assert flow.engine.maintenance.memory_decay(archive=True).counts["deleted"] == 0
    assert flow.engine.maintenance.memory_decay().counts["deleted"] == 0
    assert not mem.get(held.id).archived

    released = mem.release(held.id, "case closed", by="legal")
    assert (released.held, released.held_by, released.hold_reason) == (False, None, None)
    assert mem.archive(held.id, "tidy", by="ops").archived
    assert [a for a, _, _ in events(flow.engine, held.id)] == ["hold", "release", "archive"]


# --- playbook reset -----------------------------------------------------------------------------


def test_a_playbook_reset_archives_only_that_actors_own_entries(flow: Flow) -> None:
    mem = flow.engine.memory
    other = flow.new_actor("other")
    shared = write(flow, "tone", "formal")
    mine = write(flow, "tone", "casual", scope=ACTOR, actor_id=flow.actor)
    kept = write(flow, "limit", 5, scope=ACTOR, actor_id=flow.actor)
    mem.hold(kept.id, "audit", by="legal")
    theirs = write(flow, "tone", "curt", scope=ACTOR, actor_id=other)
    elsewhere = write(flow, "tone", "brisk", role="Small", scope=ACTOR, actor_id=flow.actor)
    already = write(flow, "old", 0, scope=ACTOR, actor_id=flow.actor)
    mem.archive(already.id, "earlier", by="ops")
    assert injected_keys(flow) == {"tone": "casual", "limit": 5}

    reset = mem.reset_playbook(flow.roles["Triage"], flow.actor, "drifted", by="ops")
    assert (reset.role_id, reset.actor_id) == (flow.roles["Triage"], flow.actor)
    assert (reset.archived, reset.held) == ([mine.id], [kept.id])
    assert mem.get(mine.id).archive_reason == "drifted"
    for untouched in (shared, kept, theirs, elsewhere):
        assert not mem.get(untouched.id).archived, untouched.key
    assert mem.get(already.id).archive_reason == "earlier"  # not archived twice
    assert [a for a, _, _ in events(flow.engine, already.id)] == ["archive"]
    # The global twin comes back for this actor; the held entry stays.
    assert injected_keys(flow) == {"tone": "formal", "limit": 5}
    assert injected_keys(flow, actor=other) == {"tone": "curt"}
    again = mem.reset_playbook(flow.roles["Triage"], flow.actor, "again", by="ops")
    assert (again.archived, again.held) == ([], [kept.id])


# --- experience validation ----------------------------------------------------------------------


@pytest.fixture
def engine_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[[str], Engine]]:
    made: list[Engine] = []

    def build(mode: str) -> Engine:
        tuned = settings.model_copy(update={"experience_validation": ExperienceValidation(mode)})
        made.append(Engine(tuned, clock=clock))
        return made[-1]

    yield build
    for e in made:
        e.close()


VALIDATION_REASON = "learned from UOW {}, which was abandoned (experience validation)"


@pytest.mark.parametrize("mode", ["archive", "delete", "keep"])
def test_experience_validation_when_epsilon_gives_up_on_a_base_uow(
    engine_with: Callable[[str], Engine], mode: str, clock: FakeClock
) -> None:
    flow = Flow(engine_with(mode), fixture_text("routing_workflow.yml"), {"amount": 10})
    mem = flow.engine.memory
    base = flow.take("Triage")
    split = flow.engine.runtime.submit(
        base.uow_id,
        flow.actor,
        {"_learned_rule": {"key": "from-base", "value": 1}},
        lease_id=base.lease_id,
        children=[{"amount": 1}, {"amount": 2}],
    )
    from_base = split.learned_memory_id
    kid1, kid2 = flow.take("Small"), flow.take("Small")
    assert {kid1.uow_id, kid2.uow_id} == set(split.children)
    from_child = flow.submit(kid1, _learned_rule={"key": "from-child", "value": 2})
    held_child = flow.submit(kid2, _learned_rule={"key": "held", "value": 3})
    assert from_base and from_child.learned_memory_id and held_child.learned_memory_id
    mem.hold(held_child.learned_memory_id, "evidence", by="legal")
    # learned elsewhere: an unrelated UOW
    flow.genesis(amount=5)
    unrelated = flow.take("Triage")
    assert unrelated.context == {"from-base": 1}  # the base's lesson reached this checkout
    elsewhere = flow.submit(unrelated, amount=5, _learned_rule={"key": "other", "value": 4})
    # the base fails at its Cerberus and EPSILON gives up on it
    final = flow.take("Finish")
    assert final.uow_id == base.uow_id
    flow.engine.runtime.fail(final.uow_id, flow.actor, "MISMATCH", lease_id=final.lease_id)
    fix = flow.take("Fixer")
    assert fix.uow_id == base.uow_id
    out = flow.engine.runtime.fail(fix.uow_id, flow.actor, "GIVE_UP", lease_id=fix.lease_id)
    assert out.status.value == "ABANDONED"

    learned = [from_base, from_child.learned_memory_id]
    assert out.memories_purged == (0 if mode == "keep" else 2)
    reason = VALIDATION_REASON.format(base.uow_id)
    for memory_id in learned:
        if mode == "keep":
            assert not mem.get(memory_id).archived
        elif mode == "archive":
            entry = mem.get(memory_id)
            assert (entry.archived_at, entry.archived_by, entry.archive_reason) == (
                clock.now,
                "engine (experience validation)",
                reason,
            )
            assert version_count(flow.engine, memory_id) == 1
            assert events(flow.engine, memory_id) == [
                ("archive", reason, "engine (experience validation)")
            ]
        else:
            with pytest.raises(UnknownMemory):
                mem.get(memory_id)
            assert version_count(flow.engine, memory_id) == 0
            assert events(flow.engine, memory_id) == [
                ("purge", reason, "engine (experience validation)")
            ]
    # whatever happened to it, the audit of influence still names the lesson and its version
    assert [(i.uow_id, i.version, i.key) for i in mem.influence(from_base)] == [
        (unrelated.uow_id, 1, "from-base")
    ]
    for kept in (held_child.learned_memory_id, elsewhere.learned_memory_id):
        assert kept is not None and not mem.get(kept).archived


@pytest.mark.parametrize("mode", ["archive", "delete"])
def test_experience_validation_when_tau_gives_up(
    engine_with: Callable[[str], Engine], mode: str, clock: FakeClock
) -> None:
    flow = Flow(engine_with(mode), fixture_text("routing_workflow.yml"), {"amount": 10})
    c = flow.take("Triage")
    learned = flow.submit(c, amount=10, _learned_rule={"key": "tip", "value": 1})
    assert learned.learned_memory_id is not None
    flow.take("Small")
    clock.advance(301)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    timer = flow.take("Timer")
    assert timer.uow_id == c.uow_id
    out = flow.engine.runtime.fail(timer.uow_id, flow.actor, "GIVE_UP", lease_id=timer.lease_id)
    assert (out.status.value, out.memories_purged) == ("ABANDONED", 1)
    assert flow.engine.memory.list_for_role(flow.roles["Triage"]) == []
    archived = flow.engine.memory.list_for_role(flow.roles["Triage"], archived=True)
    assert [m.id for m in archived] == ([learned.learned_memory_id] if mode == "archive" else [])


# --- last access ------------------------------------------------------------------------------


def test_only_injection_moves_last_access(flow: Flow, clock: FakeClock) -> None:
    mem = flow.engine.memory
    role = flow.roles["Triage"]
    live = write(flow, "live")
    toxic = write(flow, "toxic")
    archived = write(flow, "archived")
    flow.engine.toxic.mark(toxic.id, "wrong")
    mem.archive(archived.id, "old", by="ops")
    created = clock.now
    clock.advance(3600)
    mem.get(live.id)
    mem.list_for_role(role)
    mem.list_for_role(role, archived=True)
    mem.versions(live.id)
    mem.influence(live.id)
    mem.injected_into(flow.first_uow)
    assert {m.last_accessed_at for m in (mem.get(live.id), mem.get(toxic.id))} == {created}

    assert flow.take("Triage").context == {"live": 1}
    assert mem.get(live.id).last_accessed_at == clock.now
    assert mem.get(toxic.id).last_accessed_at == created
    assert mem.get(archived.id).last_accessed_at == created
    # at most once a minute: a checkout soon after leaves the stamp alone
    touched = clock.now
    clock.advance(30)
    assert injected_keys(flow) == {"live": 1}
    assert mem.get(live.id).last_accessed_at == touched


def test_a_global_entry_the_actors_own_replaces_keeps_its_clock(
    flow: Flow, clock: FakeClock
) -> None:
    """Only what is injected is accessed: a global entry shadowed by the actor's personal
    entry of the same key was not given to that actor."""
    mem = flow.engine.memory
    shadowed = write(flow, "tone", "formal")
    own = write(flow, "tone", "casual", scope=ACTOR, actor_id=flow.actor)
    created = clock.now
    clock.advance(3600)
    assert injected_keys(flow) == {"tone": "casual"}
    assert mem.get(own.id).last_accessed_at == clock.now
    assert mem.get(shadowed.id).last_accessed_at == created
    other = flow.new_actor("other")
    clock.advance(3600)
    assert injected_keys(flow, actor=other) == {"tone": "formal"}
    assert mem.get(shadowed.id).last_accessed_at == clock.now


def test_restoring_beside_a_live_twin_is_refused_and_writes_take_the_live_one(
    flow: Flow,
) -> None:
    """Two memories of one key (a decay archive that migration 0008 brought back beside a
    live entry): a write versions the live one, and restoring the archived one is a 409."""
    live = write(flow, "k", "live")
    archived = write(flow, "k2", "old")
    flow.engine.memory.archive(archived.id, "old", by="ops")
    with flow.engine.db.begin() as conn:  # as 0008 leaves it: same key, one archived
        conn.execute(sa.update(M).where(M.c.id == archived.id).values(key="k"))
    before = snapshot(flow.engine)
    with pytest.raises(InvalidState, match=str(live.id)):
        flow.engine.memory.restore(archived.id, "bring back", by="ops")
    assert snapshot(flow.engine) == before
    again = write(flow, "k", "newer")
    assert (again.id, again.version) == (live.id, 2)
    assert flow.engine.memory.get(archived.id).archived


def test_the_lifecycle_trail_of_an_unknown_memory_is_404(flow: Flow) -> None:
    with pytest.raises(UnknownMemory):
        flow.engine.toxic.history(uuid.uuid4())
    assert flow.engine.toxic.history(write(flow, "k").id) == []


# --- the audit of influence survives archive and hard decay ---------------------------------


def test_influence_keeps_key_and_version_after_archive_and_hard_decay(
    flow: Flow, clock: FakeClock
) -> None:
    mem = flow.engine.memory
    tip = write(flow, "tip", "v1")
    first = flow.take("Triage")
    write(flow, "tip", "v2")
    clock.advance(120)
    flow.genesis(amount=1)
    second = flow.take("Triage")
    assert second.context == {"tip": "v2"}

    def seen() -> list[tuple[Any, ...]]:
        return [(i.uow_id, i.version, i.key) for i in mem.influence(tip.id)]

    def given(uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        return [
            (e.memory_id, e.version, e.key) for i in mem.injected_into(uow_id) for e in i.entries
        ]

    expected = [(first.uow_id, 1, "tip"), (second.uow_id, 2, "tip")]
    assert seen() == expected
    mem.archive(tip.id, "retired", by="ops")
    assert seen() == expected
    assert given(first.uow_id) == [(tip.id, 1, "tip")]

    clock.advance(91 * DAY)
    assert flow.engine.maintenance.memory_decay().counts["deleted"] == 1  # archived, then gone
    with pytest.raises(UnknownMemory):
        mem.get(tip.id)
    assert version_count(flow.engine, tip.id) == 0
    assert seen() == expected
    assert given(second.uow_id) == [(tip.id, 2, "tip")]


# --- concurrent writes of one key ----------------------------------------------------------------


def test_two_concurrent_first_writes_of_a_key_make_one_memory(
    flow: Flow, db_url: str, request: pytest.FixtureRequest
) -> None:
    """Write A creates the key and has not committed when write B of the same key starts:
    B must wait for A and then write version 2 of the same memory (never a second memory
    with that key)."""
    engine = flow.engine

    def upsert(conn: sa.Connection, value: int) -> MemoryEntry:
        return store.upsert(
            conn,
            instance_id=flow.instance_id,
            role_id=flow.roles["Triage"],
            scope=GLOBAL,
            actor_id=None,
            key="race",
            value=value,
            now=engine.clock(),
            provenance=store.Provenance(written_by=f"writer {value}"),
        )

    second: list[MemoryEntry] = []
    with engine.db.begin() as first:
        upsert(first, 1)
        writer = threading.Thread(target=lambda: second.append(_in_own_transaction(engine, upsert)))
        writer.start()
        writer.join(timeout=5)  # a correct store blocks it until the first commits
    writer.join()
    with engine.db.connect() as conn:
        rows = conn.execute(sa.select(M.c.id, M.c.version).where(M.c.key == "race")).all()
    assert len(rows) == 1, rows
    assert [e.version for e in second] == [2] and second[0].id == rows[0].id


def _in_own_transaction(
    engine: Engine, upsert: Callable[[sa.Connection, int], MemoryEntry]
) -> MemoryEntry:
    with engine.db.begin() as conn:
        return upsert(conn, 2)
