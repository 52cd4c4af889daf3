"""The kill switch and instance resume, on both databases: bad requests change nothing; a
pause stops all of an instance's live work, set-based, and resume restores it exactly."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import (
    InstancePaused,
    InvalidInput,
    InvalidState,
    UnknownInstance,
)
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store import pilot_events
from chameleon_workflow.store.tables import Instance, InteractionLog, PilotEvent, Uow
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text, statements

U = Uow.__table__
L = InteractionLog.__table__
I = Instance.__table__  # noqa: E741
E = PilotEvent.__table__
THREE_STEP = (Path(__file__).resolve().parents[2] / "bench" / "three_step.yml").read_text()
PILOT = "pilot Ada (key 1)"


def _uows(engine: Engine, instance_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    with engine.db.connect() as conn:
        rows = conn.execute(sa.select(U).where(U.c.instance_id == instance_id)).all()
    return {r.id: dict(r._mapping) for r in rows}


def _logs(engine: Engine, event: str | None = None) -> list[Any]:
    stmt = sa.select(L).order_by(L.c.id)
    if event is not None:
        stmt = stmt.where(L.c.event == event)
    with engine.db.connect() as conn:
        return conn.execute(stmt).all()


def _instance(engine: Engine, instance_id: uuid.UUID) -> Any:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(I).where(I.c.id == instance_id)).one()


def _events(engine: Engine) -> list[Any]:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(E).order_by(E.c.id)).all()


def _everything(engine: Engine, flow: Flow) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    inst = _instance(engine, flow.instance_id)
    return (
        _uows(engine, flow.instance_id),
        len(_logs(engine)),
        (inst.status, inst.paused_at, inst.paused_by, inst.pause_reason),
        len(_events(engine)),
    )


def _mixed(engine: Engine, clock: FakeClock) -> tuple[Flow, dict[str, uuid.UUID]]:
    """An instance with PENDING work in Q1 (oldest first), one ACTIVE in Step2, one FAILED in
    Ate and one COMPLETED-free history: what the kill switch must pause."""
    flow = Flow(engine, THREE_STEP, {"n": 0})
    for i in range(1, 5):
        clock.advance(1)
        flow.genesis(n=i)
    clock.advance(1)
    moved = flow.take("Step1")  # the oldest goes to Q2 ...
    flow.submit(moved, done1=True)
    clock.advance(1)
    active = flow.take("Step2")  # ... and is held there
    clock.advance(1)
    failing = flow.take("Step1")
    engine.runtime.fail(
        failing.uow_id, flow.actor, "E_BAD", details={"x": 1}, lease_id=failing.lease_id
    )
    return flow, {"active": active.uow_id, "failed": failing.uow_id, "lease": active.lease_id}


# --- unhappy paths first: nothing changes -----------------------------------------------------


def test_an_unknown_instance_is_not_found_for_both(engine: Engine) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    before = _everything(engine, flow)
    nowhere = uuid.uuid4()
    with pytest.raises(UnknownInstance, match=str(nowhere)):
        engine.kill_switch.pause(nowhere, "stop", by=PILOT)
    with pytest.raises(UnknownInstance, match=str(nowhere)):
        engine.kill_switch.resume(nowhere, "go", by=PILOT)
    assert _everything(engine, flow) == before


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_blank_reason_is_refused_and_nothing_changes(engine: Engine, reason: str) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    before = _everything(engine, flow)
    with pytest.raises(InvalidInput, match="reason"):
        engine.kill_switch.pause(flow.instance_id, reason, by=PILOT)
    assert _everything(engine, flow) == before
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    paused = _everything(engine, flow)
    with pytest.raises(InvalidInput, match="reason"):
        engine.kill_switch.resume(flow.instance_id, reason, by=PILOT)
    assert _everything(engine, flow) == paused


def test_killing_a_paused_instance_is_invalid_state_naming_paused(
    engine: Engine, clock: FakeClock
) -> None:
    flow, _ = _mixed(engine, clock)
    engine.kill_switch.pause(flow.instance_id, "first", by=PILOT)
    before = _everything(engine, flow)
    clock.advance(5)
    with pytest.raises(InvalidState, match="already PAUSED") as refused:
        engine.kill_switch.pause(flow.instance_id, "second", by="someone else")
    assert refused.value.details["status"] == "PAUSED"
    assert refused.value.details["paused_by"] == PILOT
    assert _everything(engine, flow) == before


def test_resuming_an_active_instance_is_invalid_state_naming_active(
    engine: Engine, clock: FakeClock
) -> None:
    flow, _ = _mixed(engine, clock)
    before = _everything(engine, flow)
    with pytest.raises(InvalidState, match="is ACTIVE, not PAUSED") as refused:
        engine.kill_switch.resume(flow.instance_id, "go", by=PILOT)
    assert refused.value.details["status"] == "ACTIVE"
    assert _everything(engine, flow) == before


# --- pause and resume -------------------------------------------------------------------------


def test_pause_then_resume_restores_every_uow_exactly(engine: Engine, clock: FakeClock) -> None:
    flow, ids = _mixed(engine, clock)
    before = _uows(engine, flow.instance_id)
    live = {i for i, u in before.items() if u["status"] in ("PENDING", "ACTIVE", "FAILED")}
    assert {before[ids["active"]]["status"], before[ids["failed"]]["status"]} == {
        "ACTIVE",
        "FAILED",
    }
    clock.advance(10)
    out = engine.kill_switch.pause(flow.instance_id, "runaway costs", by=PILOT)
    assert out.paused_uow_count == len(live) == 5

    paused = _uows(engine, flow.instance_id)
    for uid, row in paused.items():
        was = before[uid]
        assert row["status"] == "PAUSED"
        assert row["paused_from"] == ("PENDING" if was["status"] == "ACTIVE" else was["status"])
        assert row["lease_id"] is None and row["lease_holder_id"] is None
        for kept in ("current_interaction_id", "entered_at", "failure", "current_role_id"):
            assert row[kept] == was[kept], kept
    inst = _instance(engine, flow.instance_id)
    assert (inst.status, inst.paused_by, inst.pause_reason) == ("PAUSED", PILOT, "runaway costs")
    assert inst.paused_at == clock.now
    logs = _logs(engine, "paused")
    assert sorted(r.uow_id for r in logs) == sorted(live)
    by_uow = {r.uow_id: r for r in logs}
    held = by_uow[ids["active"]]
    assert (held.from_status, held.to_status, held.actor_id) == ("ACTIVE", "PAUSED", None)
    assert held.details == {
        "pilot": PILOT,
        "reason": "runaway costs",
        "instance_id": str(flow.instance_id),
        "lease_id": str(ids["lease"]),
    }
    assert by_uow[ids["failed"]].from_status == "FAILED"
    assert by_uow[ids["failed"]].details["lease_id"] is None
    events = _events(engine)
    assert [e.kind for e in events][-1] == pilot_events.INSTANCE_PAUSED
    assert events[-1].payload["paused_uow_count"] == 5
    assert events[-1].instance_id == flow.instance_id

    clock.advance(10)
    back = engine.kill_switch.resume(flow.instance_id, "costs fixed", by=PILOT)
    assert back.resumed_uow_count == 5
    after = _uows(engine, flow.instance_id)
    for uid, row in after.items():
        was = before[uid]
        assert row["status"] == ("PENDING" if was["status"] == "ACTIVE" else was["status"])
        assert row["paused_from"] is None
        for kept in ("current_interaction_id", "entered_at", "failure", "current_role_id"):
            assert row[kept] == was[kept], kept
    assert after[ids["failed"]]["failure"]["code"] == "E_BAD"
    resumed = _logs(engine, "resumed")
    assert len(resumed) == 5
    assert {(r.from_status, r.to_status) for r in resumed} == {
        ("PAUSED", "PENDING"),
        ("PAUSED", "FAILED"),
    }
    assert all(r.details["pilot"] == PILOT for r in resumed)
    inst = _instance(engine, flow.instance_id)
    assert (inst.status, inst.paused_at, inst.paused_by, inst.pause_reason) == (
        "ACTIVE",
        None,
        None,
        None,
    )
    assert _events(engine)[-1].kind == pilot_events.INSTANCE_RESUMED

    # Oldest first, as before: Step1 gets the PENDING work of Q1 in genesis order.
    q1 = sorted(
        (u for u in after.values() if u["status"] == "PENDING" and u["parent_id"] is None),
        key=lambda u: u["entered_at"],
    )
    first = flow.take("Step1")
    ix_q1 = engine.topologies.of_instance(flow.instance_id).interaction_ids["Q1"]
    assert first.uow_id == next(u["id"] for u in q1 if u["current_interaction_id"] == ix_q1)
    # The work held when the kill switch fell is waiting in Step2's queue again.
    again = flow.take("Step2")
    assert again.uow_id == ids["active"] and again.lease_id != ids["lease"]


def test_pause_is_set_based_a_few_statements_for_any_number(engine: Engine) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    for i in range(60):
        flow.genesis(n=i)
    with statements(engine) as seen:
        out = engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    assert out.paused_uow_count == 61
    writes = [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT", "WITH"))]
    assert len(writes) <= 5, writes
    with statements(engine) as seen:
        assert engine.kill_switch.resume(flow.instance_id, "go", by=PILOT).resumed_uow_count == 61
    writes = [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT", "WITH"))]
    assert len(writes) <= 5, writes


def test_work_of_other_instances_is_untouched(engine: Engine, clock: FakeClock) -> None:
    flow, _ = _mixed(engine, clock)
    other = Flow(engine, THREE_STEP, {"n": 99})
    held = other.take("Step1")
    theirs = _uows(engine, other.instance_id)
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    assert _uows(engine, other.instance_id) == theirs
    engine.kill_switch.resume(flow.instance_id, "go", by=PILOT)
    assert _uows(engine, other.instance_id) == theirs
    other.submit(held, fine=True)  # its lease never ended


# --- while paused -----------------------------------------------------------------------------


def test_the_lease_holder_gets_instance_paused_and_nothing_is_written(
    engine: Engine, clock: FakeClock
) -> None:
    flow, ids = _mixed(engine, clock)
    held = flow.take("Step1")
    engine.kill_switch.pause(flow.instance_id, "stop now", by=PILOT)
    before = _everything(engine, flow)
    calls = {
        "heartbeat": lambda: engine.runtime.heartbeat(ids["active"], flow.actor, ids["lease"]),
        "submit": lambda: engine.runtime.submit(
            ids["active"], flow.actor, {"x": 1}, lease_id=ids["lease"]
        ),
        "decomposing submit": lambda: engine.runtime.submit(
            held.uow_id,
            flow.actor,
            {"_learned_rule": {"key": "k", "value": 1}},
            lease_id=held.lease_id,
        ),  # fmt: skip
        "failure": lambda: engine.runtime.fail(
            ids["active"], flow.actor, "E", lease_id=ids["lease"]
        ),
        "heartbeat without lease id": lambda: engine.runtime.heartbeat(held.uow_id, flow.actor),
    }
    for name, call in calls.items():
        with pytest.raises(InstancePaused) as refused:
            call()
        message = refused.value.message
        assert str(flow.instance_id) in message and "stop now" in message and PILOT in message, (
            name,
            message,
        )
        assert refused.value.details["instance_id"] == str(flow.instance_id)
    assert _everything(engine, flow) == before


def test_a_submit_that_landed_before_the_kill_switch_still_replays(
    engine: Engine, clock: FakeClock
) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    c = flow.take("Step1")
    first = flow.submit(c, done=True)
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    again = flow.submit(c, done=True)
    assert again.replayed and again.status == first.status


def test_no_role_checks_out_paused_work(engine: Engine, clock: FakeClock) -> None:
    flow, _ = _mixed(engine, clock)
    fixer = flow.new_actor("fixer")
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    for role in ("Step1", "Step2", "Step3", "Finish", "Fixer", "Timer"):
        assert flow.checkout(role) is None, role
        assert flow.checkout(role, fixer) is None, role
    engine.kill_switch.resume(flow.instance_id, "go", by=PILOT)
    fixed = flow.take("Fixer", fixer)  # FAILED work waits for EPSILON again, failure and all
    assert fixed.failure is not None and fixed.failure["code"] == "E_BAD"


def test_genesis_is_refused_while_paused(engine: Engine) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    before = _everything(engine, flow)
    with pytest.raises(InstancePaused, match="PAUSED") as refused:
        flow.genesis(n=1)
    assert refused.value.details == {"instance_id": str(flow.instance_id), "status": "PAUSED"}
    assert _everything(engine, flow) == before
    engine.kill_switch.resume(flow.instance_id, "go", by=PILOT)
    assert flow.genesis(n=2) in _uows(engine, flow.instance_id)


def test_the_sweeps_leave_paused_work_alone(engine: Engine, clock: FakeClock) -> None:
    text = THREE_STEP.replace(
        "  name: Bench_Three_Step\n",
        "  name: Bench_Three_Step\n  stale_token_limit_seconds: 60\n  zombie_timeout_seconds: 60\n",
    )
    flow = Flow(engine, text, {"n": 0})
    flow.genesis(n=1)
    held = flow.take("Step1")
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    clock.advance(3600)
    paused = _uows(engine, flow.instance_id)
    zombies = engine.maintenance.zombie_sweep(60)
    stale = engine.maintenance.stale_token_sweep()
    assert zombies.counts.get("reclaimed", 0) == 0
    assert stale.counts.get("moved", 0) == 0
    assert _uows(engine, flow.instance_id) == paused
    # Resumed, the same sweeps do act on it: they were looking.
    engine.kill_switch.resume(flow.instance_id, "go", by=PILOT)
    clock.advance(3600)
    assert engine.maintenance.stale_token_sweep().counts["moved"] == 2
    assert held.uow_id in _uows(engine, flow.instance_id)


def test_instance_reads_show_the_pause(engine: Engine) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 0})
    engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
    described = engine.instances.describe(flow.instance_id)["instance"]
    assert (described.status, described.paused_by, described.pause_reason) == (
        "PAUSED",
        PILOT,
        "stop",
    )
    (listed,) = engine.instances.page().items
    assert listed.status == "PAUSED" and listed.paused_at is not None


# --- PostgreSQL: work other transactions hold -------------------------------------------------


@pytest.mark.postgres
def test_children_of_a_submit_committing_during_the_kill_switch_are_paused(
    pg_url: str,
) -> None:
    from chameleon_workflow.settings import Settings
    from tests.conftest import empty_database

    empty_database(pg_url)
    engine = Engine(Settings(database_url=pg_url, db_pool_size=5, scheduler_enabled=False))
    try:
        flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
        c = flow.take("Triage")
        inserted, release = threading.Event(), threading.Event()
        worker = threading.get_ident()

        def stall(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if threading.get_ident() != worker and "INSERT INTO uows " in statement:
                inserted.set()
                assert release.wait(30)

        outcome: list[Any] = []

        def decompose() -> None:
            outcome.append(
                engine.runtime.submit(
                    c.uow_id,
                    flow.actor,
                    {},
                    lease_id=c.lease_id,
                    children=[{"amount": a} for a in (1, 2, 3)],
                )  # fmt: skip
            )

        sa.event.listen(engine.db.engine, "after_cursor_execute", stall)
        submitter = threading.Thread(target=decompose)
        try:
            submitter.start()
            assert inserted.wait(30)  # the children are written, not yet committed
            timer = threading.Timer(0.3, release.set)  # let the kill switch pass once first
            timer.start()
            out = engine.kill_switch.pause(flow.instance_id, "stop", by=PILOT)
            submitter.join(30)
            timer.join()
        finally:
            release.set()
            sa.event.remove(engine.db.engine, "after_cursor_execute", stall)
        assert len(outcome) == 1 and len(outcome[0].children) == 3
        assert out.passes > 1  # it came back for the work the submit held
        rows = _uows(engine, flow.instance_id)
        assert {r["status"] for r in rows.values()} == {"PAUSED"}
        assert out.paused_uow_count == len(rows) == 4
        assert sorted(r.uow_id for r in _logs(engine, "paused")) == sorted(rows)
        assert flow.checkout("Small") is None and flow.checkout("Finish") is None
    finally:
        engine.close()
