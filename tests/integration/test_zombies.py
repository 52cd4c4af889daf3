"""The zombie protocol on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from chameleon_workflow.domain.errors import InvalidInput, LeaseLost
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import InteractionLog, MaintenanceRun, Uow
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
U = Uow.__table__
MR = MaintenanceRun.__table__


def governed(workflow: dict[str, Any] | None = None, **roles: dict[str, Any]) -> str:
    """routing_workflow.yml with zombie settings on the workflow and on named roles."""
    data = yaml.safe_load(fixture_text("routing_workflow.yml"))
    data["workflow"].update(workflow or {})
    for role in data["workflow"]["roles"]:
        role.update(roles.get(role["name"], {}))
    return yaml.safe_dump(data)


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _runs(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(MR)) or 0


def _reclaim_logs(engine: Engine, uow_id: uuid.UUID) -> list[Any]:
    with engine.db.connect() as conn:
        return list(conn.execute(sa.select(L).where(L.c.uow_id == uow_id, L.c.event == "reclaim")))


# --- bad input changes nothing ----------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, True, 1.5, "300", 10 * 365 * 86_400 + 1, 10**30])
def test_a_timeout_that_is_not_a_positive_integer_is_refused(
    flow: Flow, clock: FakeClock, timeout: Any
) -> None:
    c = flow.take("Triage")
    clock.advance(10_000)
    with pytest.raises(InvalidInput, match="timeout_seconds"):
        flow.engine.maintenance.zombie_sweep(timeout)
    assert flow.where(c.uow_id) == ("ACTIVE", "Inbox")
    assert _runs(flow.engine) == 0


@pytest.mark.parametrize("batch", [0, -3, False])
def test_a_bad_batch_size_is_refused(flow: Flow, batch: Any) -> None:
    with pytest.raises(InvalidInput, match="batch_size"):
        flow.engine.maintenance.zombie_sweep(batch_size=batch)
    assert _runs(flow.engine) == 0


def test_the_longest_timeout_a_workflow_may_set_works(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, governed({"zombie_timeout_seconds": 2**31 - 1}), {"amount": 5})
    flow.take("Triage")
    clock.advance(10**6)
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 0
    assert engine.maintenance.zombie_candidates().count == 0


def test_a_live_lease_is_not_a_zombie(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    clock.advance(299)
    run = flow.engine.maintenance.zombie_sweep()
    assert run.counts["reclaimed"] == 0
    assert flow.where(c.uow_id) == ("ACTIVE", "Inbox")


def test_heartbeats_keep_a_lease_alive(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    for _ in range(3):
        clock.advance(200)
        flow.engine.runtime.heartbeat(c.uow_id, flow.actor, c.lease_id)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 0
    flow.submit(c, amount=10)  # the holder still holds it


# --- the default policy: FAILED into Chronos -----------------------------------------------------


def test_a_zombie_goes_to_chronos_as_failed_and_its_lease_is_cleared(
    flow: Flow, clock: FakeClock
) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    run = flow.engine.maintenance.zombie_sweep()
    assert run.counts == {"reclaimed": 1, "requeued": 0, "batches": 1}

    u = flow.uow(c.uow_id)
    assert (u.uow.status, u.interaction, u.uow.reclaim_count) == ("FAILED", "Timeouts", 1)
    assert (
        u.uow.lease_id is u.uow.lease_holder_id is u.uow.leased_at is u.uow.last_heartbeat is None
    )
    assert u.uow.entered_at == clock.now
    failure = u.uow.failure
    assert failure["kind"] == "zombie"
    assert (failure["code"], failure["role"], failure["at"]) == (
        "zombie",
        None,
        clock.now.isoformat(),
    )
    assert failure["details"]["timeout_seconds"] == 300
    assert failure["actor_id"] == str(flow.actor)
    assert failure["details"]["from_interaction_id"] == str(
        flow.engine.topologies.of_instance(flow.instance_id).interaction_ids["Inbox"]
    )


def test_a_reclaim_writes_one_log_row(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    flow.engine.maintenance.zombie_sweep()
    topo = flow.engine.topologies.of_instance(flow.instance_id)
    (log,) = _reclaim_logs(flow.engine, c.uow_id)
    assert (log.from_status, log.to_status) == ("ACTIVE", "FAILED")
    assert log.from_interaction_id == topo.interaction_ids["Inbox"]
    assert log.to_interaction_id == topo.interaction_ids["Timeouts"]
    assert log.role_id == flow.roles["Triage"] and log.instance_id == flow.instance_id
    assert log.at == clock.now and log.details["kind"] == "zombie"


def test_the_late_holder_gets_lease_lost_on_every_write(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    flow.engine.maintenance.zombie_sweep()
    before = flow.uow(c.uow_id)
    rt = flow.engine.runtime
    with pytest.raises(LeaseLost):
        rt.heartbeat(c.uow_id, flow.actor, c.lease_id)
    with pytest.raises(LeaseLost):
        rt.submit(c.uow_id, flow.actor, {"amount": 1}, lease_id=c.lease_id)
    with pytest.raises(LeaseLost):
        rt.fail(c.uow_id, flow.actor, "E1", lease_id=c.lease_id)
    assert flow.uow(c.uow_id) == before


def test_a_second_sweep_finds_nothing_more(flow: Flow, clock: FakeClock) -> None:
    flow.take("Triage")
    clock.advance(301)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 0


def test_without_a_heartbeat_the_lease_time_decides(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    with flow.engine.db.begin() as conn:
        conn.execute(sa.update(U).where(U.c.id == c.uow_id).values(last_heartbeat=None))
    clock.advance(299)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 0
    clock.advance(2)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 1


def test_the_timeout_given_to_the_sweep_is_the_default(flow: Flow, clock: FakeClock) -> None:
    flow.take("Triage")
    clock.advance(61)
    run = flow.engine.maintenance.zombie_sweep(60)
    assert run.counts["reclaimed"] == 1 and run.parameters["timeout_seconds"] == 60


def test_batches_reclaim_everything(flow: Flow, clock: FakeClock) -> None:
    for _ in range(4):
        flow.genesis(amount=5)
    taken = [flow.take("Triage") for _ in range(5)]
    clock.advance(301)
    run = flow.engine.maintenance.zombie_sweep(batch_size=2)
    assert run.counts == {"reclaimed": 5, "requeued": 0, "batches": 3}
    assert all(flow.where(c.uow_id) == ("FAILED", "Timeouts") for c in taken)


def test_a_reclaimed_child_refreshes_its_parent(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    flow.engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}, {"amount": 2}]
    )
    child = flow.take("Small")
    clock.advance(301)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    assert flow.where(child.uow_id) == ("FAILED", "Timeouts")
    parent = flow.uow(c.uow_id)
    assert (parent.uow.status, parent.uow.child_count, parent.uow.finished_child_count) == (
        "PENDING",
        2,
        0,
    )


# --- dry run and listing -------------------------------------------------------------------------


def test_a_dry_run_lists_the_candidates_and_changes_nothing(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    run = flow.engine.maintenance.zombie_sweep(dry_run=True)
    assert run.dry_run and run.counts == {"candidates": 1}
    assert [z.id for z in run.sample] == [c.uow_id]
    assert flow.where(c.uow_id) == ("ACTIVE", "Inbox")
    assert _reclaim_logs(flow.engine, c.uow_id) == []


def test_candidates_are_listed_longest_silent_first(flow: Flow, clock: FakeClock) -> None:
    flow.genesis(amount=3)
    first = flow.take("Triage")
    clock.advance(100)
    second = flow.take("Triage")
    clock.advance(301)
    listing = flow.engine.maintenance.zombie_candidates()
    assert listing.count == 2
    assert [z.id for z in listing.zombies] == [first.uow_id, second.uow_id]
    assert listing.zombies[0].policy == "fail"
    assert flow.engine.maintenance.zombie_candidates(limit=1).zombies[0].id == first.uow_id


# --- policies and timeouts from the workflow definition ------------------------------------------


def test_requeue_returns_the_uow_to_its_queue_up_to_max_reclaims(
    engine: Engine, clock: FakeClock
) -> None:
    flow = Flow(engine, governed({"zombie_policy": "requeue", "max_reclaims": 2}), {"amount": 5})
    for expected_count in (1, 2):
        c = flow.take("Triage")
        clock.advance(301)
        run = engine.maintenance.zombie_sweep()
        assert run.counts == {"reclaimed": 1, "requeued": 1, "batches": 1}
        u = flow.uow(c.uow_id)
        assert (u.uow.status, u.interaction, u.uow.reclaim_count) == (
            "PENDING",
            "Inbox",
            expected_count,
        )
        assert u.uow.lease_id is None
        with pytest.raises(LeaseLost):
            engine.runtime.heartbeat(c.uow_id, flow.actor, c.lease_id)
    flow.take("Triage")
    clock.advance(301)
    assert engine.maintenance.zombie_sweep().counts["requeued"] == 0
    u = flow.uow(flow.first_uow)
    assert (u.uow.status, u.interaction, u.uow.reclaim_count) == ("FAILED", "Timeouts", 3)
    events = [(t.event, t.to_status) for t in engine.instances.history(flow.first_uow).transitions]
    assert events.count(("reclaim", "PENDING")) == 2 and events.count(("reclaim", "FAILED")) == 1


def test_a_role_timeout_overrides_the_default(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, governed(Big={"zombie_timeout_seconds": 60}), {"amount": 5})
    big, small = _one_leased_in(flow, "Big"), _one_leased_in(flow, "Small")
    clock.advance(100)
    assert engine.maintenance.zombie_candidates().count == 1
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    assert flow.where(big) == ("FAILED", "Timeouts") and flow.where(small)[0] == "ACTIVE"
    clock.advance(201)
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 1


def test_a_workflow_timeout_overrides_the_default(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, governed({"zombie_timeout_seconds": 1000}), {"amount": 5})
    c = flow.take("Triage")
    clock.advance(400)
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 0
    clock.advance(601)
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    assert flow.uow(c.uow_id).uow.failure["details"]["timeout_seconds"] == 1000


def test_a_role_policy_overrides_the_workflow_policy(engine: Engine, clock: FakeClock) -> None:
    text = governed({"zombie_policy": "requeue"}, Small={"zombie_policy": "fail"})
    flow = Flow(engine, text, {"amount": 5})
    big, small = _one_leased_in(flow, "Big"), _one_leased_in(flow, "Small")
    clock.advance(301)
    assert engine.maintenance.zombie_sweep().counts == {"reclaimed": 2, "requeued": 1, "batches": 1}
    assert flow.where(big) == ("PENDING", "BigQ")
    assert flow.where(small) == ("FAILED", "Timeouts")


def test_overrides_of_one_workflow_leave_other_workflows_alone(
    engine: Engine, clock: FakeClock
) -> None:
    plain = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    custom = Flow(
        engine, governed({"zombie_timeout_seconds": 30, "zombie_policy": "requeue"}), {"amount": 5}
    )
    a, b = plain.take("Triage"), custom.take("Triage")
    clock.advance(100)
    assert engine.maintenance.zombie_sweep().counts == {"reclaimed": 1, "requeued": 1, "batches": 1}
    assert plain.where(a.uow_id)[0] == "ACTIVE" and custom.where(b.uow_id) == ("PENDING", "Inbox")


def _one_leased_in(flow: Flow, role: str) -> uuid.UUID:
    """A UOW that Triage routes to ``role`` (Big for large amounts) and that ``role`` leases."""
    amount = 5000 if role == "Big" else 5
    flow.genesis(amount=amount)
    triage = flow.take("Triage")
    flow.submit(triage, amount=amount)
    leased = flow.take(role)
    assert leased.uow_id == triage.uow_id
    return leased.uow_id
