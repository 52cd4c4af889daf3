"""Checkout, heartbeat, submit and failure on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import (
    InvalidInput,
    InvalidState,
    LeaseLost,
    NotAssigned,
    UnknownActor,
    UnknownRole,
    UnknownUow,
)
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import InteractionLog, Uow, UowAttribute
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
A = UowAttribute.__table__
U = Uow.__table__


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _snapshot(engine: Engine, uow_id: uuid.UUID) -> tuple[object, ...]:
    with engine.db.connect() as conn:
        row = conn.execute(sa.select(U).where(U.c.id == uow_id)).one()
        attrs = conn.execute(
            sa.select(sa.func.count()).select_from(A).where(A.c.uow_id == uow_id)
        ).scalar()
        logs = conn.execute(
            sa.select(sa.func.count()).select_from(L).where(L.c.uow_id == uow_id)
        ).scalar()
    return tuple(row) + (attrs, logs)


# --- checkout: who may take work ------------------------------------------------------------


def test_checkout_by_unknown_actor_is_404(flow: Flow) -> None:
    with pytest.raises(UnknownActor):
        flow.engine.runtime.checkout(uuid.uuid4(), flow.roles["Triage"])


def test_checkout_for_unknown_role_is_404(flow: Flow) -> None:
    with pytest.raises(UnknownRole):
        flow.engine.runtime.checkout(flow.actor, uuid.uuid4())


def test_checkout_by_unassigned_actor_is_403_and_takes_nothing(flow: Flow) -> None:
    stranger = flow.new_actor("stranger", assign=False)
    with pytest.raises(NotAssigned):
        flow.checkout("Triage", stranger)
    assert flow.where(flow.first_uow) == ("PENDING", "Inbox")


def test_alpha_never_checks_out(flow: Flow) -> None:
    with pytest.raises(InvalidState):
        flow.engine.runtime.checkout(flow.actor, flow.roles["Origin"])


def test_no_work_returns_none(flow: Flow) -> None:
    assert flow.checkout("Big") is None


def test_checkout_takes_the_oldest_first(flow: Flow, clock: FakeClock) -> None:
    clock.advance(1)
    second = flow.genesis(amount=2)
    clock.advance(1)
    flow.genesis(amount=3)
    assert flow.take("Triage").uow_id == flow.first_uow
    assert flow.take("Triage").uow_id == second


def test_checkout_leases_and_logs(flow: Flow) -> None:
    c = flow.take("Triage")
    u = flow.uow(c.uow_id)
    assert u.uow.status == "ACTIVE"
    assert u.uow.lease_id == c.lease_id
    assert u.uow.lease_holder_id == flow.actor
    assert u.uow.last_heartbeat is not None
    assert c.attributes == {"amount": 10}
    events = [t.event for t in flow.engine.instances.history(c.uow_id).transitions]
    assert events == ["genesis", "checkout"]


# --- gates ------------------------------------------------------------------------------------


def test_gate_rejection_moves_work_to_ate_and_checkout_goes_on(
    flow: Flow, clock: FakeClock
) -> None:
    clock.advance(1)
    bad = flow.genesis(amount=-5)  # Triage_In requires amount >= 0
    clock.advance(1)
    missing = flow.genesis(note="no amount")
    assert flow.take("Triage").uow_id == flow.first_uow
    assert flow.checkout("Triage") is None
    for rejected in (bad, missing):
        status, where = flow.where(rejected)
        assert (status, where) == ("FAILED", "Errors")
        assert flow.uow(rejected).uow.failure["kind"] == "gate_rejection"
    events = [t.event for t in flow.engine.instances.history(bad).transitions]
    assert events == ["genesis", "gate_rejected"]


# --- fencing ------------------------------------------------------------------------------------


def test_heartbeat_fencing(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    other = flow.new_actor("other")
    with pytest.raises(UnknownUow):
        flow.engine.runtime.heartbeat(uuid.uuid4(), flow.actor, c.lease_id)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.heartbeat(c.uow_id, other, None)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.heartbeat(c.uow_id, flow.actor, uuid.uuid4())
    clock.advance(5)
    at = flow.engine.runtime.heartbeat(c.uow_id, flow.actor, c.lease_id)
    assert flow.uow(c.uow_id).uow.last_heartbeat == at
    flow.submit(c, amount=10)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.heartbeat(c.uow_id, flow.actor, c.lease_id)


def test_submit_by_someone_else_is_refused_and_changes_nothing(flow: Flow) -> None:
    c = flow.take("Triage")
    other = flow.new_actor("other")
    before = _snapshot(flow.engine, c.uow_id)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.submit(c.uow_id, other, {"amount": 5000}, lease_id=c.lease_id)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.submit(c.uow_id, flow.actor, {"amount": 5000}, lease_id=uuid.uuid4())
    with pytest.raises(LeaseLost):
        flow.engine.runtime.fail(c.uow_id, other, "E1")
    assert _snapshot(flow.engine, c.uow_id) == before


def test_second_submit_is_refused(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.submit(c, amount=10)
    before = _snapshot(flow.engine, c.uow_id)
    with pytest.raises(LeaseLost):
        flow.submit(c, amount=99)
    assert _snapshot(flow.engine, c.uow_id) == before


def test_submit_unknown_uow_is_404(flow: Flow) -> None:
    with pytest.raises(UnknownUow):
        flow.engine.runtime.submit(uuid.uuid4(), flow.actor, {})


def test_submit_with_bad_learned_rule_changes_nothing(flow: Flow) -> None:
    c = flow.take("Triage")
    before = _snapshot(flow.engine, c.uow_id)
    for bad in ({"key": ""}, "text", {"key": "k"}, {"key": "k", "value": 1, "extra": 2}):
        with pytest.raises(InvalidInput):
            flow.engine.runtime.submit(
                c.uow_id, flow.actor, {"x": 1, "_learned_rule": bad}, lease_id=c.lease_id
            )
    assert _snapshot(flow.engine, c.uow_id) == before


# --- attributes and routing ---------------------------------------------------------------------


def test_submit_versions_only_changed_attributes(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.submit(
        c.uow_id,
        flow.actor,
        {"amount": 10, "checked": True},
        reasoning="looks fine",
        lease_id=c.lease_id,
    )
    assert out.versions_written == 1
    history = flow.engine.instances.history(c.uow_id).attributes
    assert [(h.key, h.version) for h in history] == [("amount", 1), ("checked", 1)]
    assert history[1].actor_id == flow.actor
    assert history[1].reasoning == "looks fine"
    assert flow.where(c.uow_id) == ("PENDING", "SmallQ")


def test_routes_follow_conditions_and_new_versions(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.submit(c, amount=5000)
    assert (out.status.value, out.interaction) == ("PENDING", "BigQ")
    versions = [
        (h.key, h.version, h.value) for h in flow.engine.instances.history(c.uow_id).attributes
    ]
    assert versions == [("amount", 1, 10), ("amount", 2, 5000)]
    assert flow.uow(c.uow_id).uow.lease_id is None


def test_no_matching_route_fails_into_ate_with_reason(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.submit(c, amount="lots")  # neither condition can compare a string with a number
    assert (out.status.value, out.interaction) == ("FAILED", "Errors")
    failure = flow.uow(c.uow_id).uow.failure
    assert failure["kind"] == "routing_error" and failure["reason"]


# --- failures, EPSILON and TAU -------------------------------------------------------------------


def test_failure_goes_to_ate_and_epsilon_remediates(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.fail(
        c.uow_id, flow.actor, "BAD_DATA", details={"field": "amount"}, lease_id=c.lease_id
    )
    assert (out.status.value, out.interaction) == ("FAILED", "Errors")
    assert flow.checkout("Triage") is None
    fix = flow.take("Fixer")
    assert fix.uow_id == c.uow_id and fix.previous_status == "FAILED"
    assert fix.failure is not None and fix.failure["code"] == "BAD_DATA"
    done = flow.submit(fix, amount=20)
    assert (done.status.value, done.interaction) == ("PENDING", "Inbox")
    assert flow.uow(c.uow_id).uow.failure is None
    assert flow.take("Triage").attributes["amount"] == 20


def test_epsilon_giving_up_abandons_and_purges_learned_memory(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.engine.runtime.submit(
        c.uow_id,
        flow.actor,
        {"amount": 10, "_learned_rule": {"key": "tip", "value": "x"}},
        lease_id=c.lease_id,
    )
    assert len(flow.engine.memory.list_for_role(flow.roles["Triage"])) == 1
    small = flow.take("Small")
    flow.engine.runtime.fail(small.uow_id, flow.actor, "BROKEN", lease_id=small.lease_id)
    fix = flow.take("Fixer")
    out = flow.engine.runtime.fail(fix.uow_id, flow.actor, "GIVE_UP", lease_id=fix.lease_id)
    assert out.status.value == "ABANDONED" and out.memories_purged == 1
    assert flow.engine.memory.list_for_role(flow.roles["Triage"]) == []
    assert flow.checkout("Fixer") is None


def test_epsilon_submit_takes_its_normal_route_not_the_failure_path(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.engine.runtime.fail(c.uow_id, flow.actor, "E", lease_id=c.lease_id)
    fix = flow.take("Fixer")
    # The Fixer's only normal route is Inbox; escalation is a failure path used by failures.
    assert flow.submit(fix).interaction == "Inbox"


# --- decomposition and Cerberus ---


def test_heterogeneous_children_route_individually_and_cerberus_waits(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 5}, {"amount": 5000}]
    )
    assert (out.status.value, out.interaction) == ("PENDING", "Done")
    small_child, big_child = out.children
    assert flow.where(small_child) == ("PENDING", "SmallQ")
    assert flow.where(big_child) == ("PENDING", "BigQ")
    assert flow.uow(c.uow_id).uow.child_count == 2
    assert flow.checkout("Finish") is None  # children still travelling
    flow.submit(flow.take("Small"), done=True)
    assert flow.uow(c.uow_id).uow.finished_child_count == 1
    assert flow.checkout("Finish") is None
    flow.submit(flow.take("Big"), done=True)
    assert flow.uow(c.uow_id).uow.finished_child_count == 2
    final = flow.take("Finish")
    assert final.uow_id == c.uow_id
    assert sorted(k["attributes"]["amount"] for k in final.children) == [5, 5000]
    assert flow.checkout("Finish") is None  # children are never handed out on their own
    assert flow.submit(final, reconciled=True).status.value == "COMPLETED"
    for uow in (c.uow_id, small_child, big_child):
        assert flow.uow(uow).uow.status == "COMPLETED"


def test_decomposition_is_refused_for_children_and_non_beta(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}]
    )
    child = flow.take("Small")
    with pytest.raises(InvalidInput):
        flow.engine.runtime.submit(
            child.uow_id, flow.actor, {}, lease_id=child.lease_id, children=[{"a": 1}]
        )
    with pytest.raises(InvalidInput):
        flow.engine.runtime.submit(
            child.uow_id, flow.actor, {}, lease_id=child.lease_id, children=["x"]
        )
    assert flow.uow(child.uow_id).uow.status == "ACTIVE"
    assert out.children == [child.uow_id]


def test_abandoned_child_does_not_block_cerberus(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}, {"amount": 2}]
    )
    first = flow.take("Small")
    flow.engine.runtime.fail(first.uow_id, flow.actor, "E", lease_id=first.lease_id)
    fix = flow.take("Fixer")
    flow.engine.runtime.fail(fix.uow_id, flow.actor, "GIVE_UP", lease_id=fix.lease_id)
    flow.submit(flow.take("Small"))
    final = flow.take("Finish")
    assert final.uow_id == c.uow_id
    flow.submit(final)
    assert flow.uow(first.uow_id).uow.status == "ABANDONED"


def test_abandoning_a_base_abandons_its_children(flow: Flow) -> None:
    c = flow.take("Triage")
    out = flow.engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}]
    )
    # the parked parent goes stale-free; make it fail by hand through EPSILON: fail the child's base
    child = flow.take("Small")
    with flow.engine.db.begin() as conn:
        conn.execute(sa.update(U).where(U.c.id == c.uow_id).values(status="FAILED"))
    # EPSILON takes the failed base (its Ate interaction is not where the parent waits, so move it)
    with flow.engine.db.begin() as conn:
        errors = flow.engine.topologies.of_instance(flow.instance_id).interaction_ids["Errors"]
        conn.execute(sa.update(U).where(U.c.id == c.uow_id).values(current_interaction_id=errors))
    fix = flow.take("Fixer")
    assert fix.uow_id == c.uow_id
    flow.engine.runtime.fail(fix.uow_id, flow.actor, "GIVE_UP", lease_id=fix.lease_id)
    assert flow.uow(out.children[0]).uow.status == "ABANDONED"
    with pytest.raises(LeaseLost):
        flow.submit(child)


# --- audit ---


def test_every_transition_is_logged_with_ids(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.submit(c, amount=5000)
    big = flow.take("Big")
    flow.submit(big)
    final = flow.take("Finish")
    flow.submit(final)
    rows = flow.engine.instances.history(c.uow_id).transitions
    events = [r.event for r in rows]
    assert events == [
        "genesis",
        "checkout",
        "submit",
        "route",
        "checkout",
        "submit",
        "route",
        "checkout",
        "submit",
        "finalize",
    ]
    ids = [r.id for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(r.instance_id == flow.instance_id for r in rows)
    route = rows[3]
    assert route.from_status == "ACTIVE" and route.to_status == "PENDING"


def test_a_late_holder_is_refused_after_the_work_was_re_leased(
    flow: Flow, clock: FakeClock
) -> None:
    """Reclaimed (requeued) work leased again: the old lease is dead, the new one works."""
    first = flow.take("Triage")
    clock.advance(600)
    flow.engine.maintenance.zombie_sweep(timeout_seconds=300)
    with flow.engine.db.begin() as conn:  # requeue instead of failing, as a requeue policy would
        inbox = flow.engine.topologies.of_instance(flow.instance_id).interaction_ids["Inbox"]
        conn.execute(
            sa.update(U)
            .where(U.c.id == first.uow_id)
            .values(status="PENDING", current_interaction_id=inbox)
        )
    other = flow.new_actor("other")
    second = flow.take("Triage", other)
    assert second.uow_id == first.uow_id and second.lease_id != first.lease_id
    before = _snapshot(flow.engine, first.uow_id)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.submit(first.uow_id, flow.actor, {"amount": 1}, lease_id=first.lease_id)
    with pytest.raises(LeaseLost):
        flow.engine.runtime.submit(first.uow_id, flow.actor, {"amount": 1})
    with pytest.raises(LeaseLost):
        flow.engine.runtime.heartbeat(first.uow_id, flow.actor, first.lease_id)
    assert _snapshot(flow.engine, first.uow_id) == before
    out = flow.engine.runtime.submit(second.uow_id, other, {"amount": 2000})
    assert out.interaction == "BigQ"


def test_same_actor_re_leased_without_lease_id_still_submits(flow: Flow, clock: FakeClock) -> None:
    first = flow.take("Triage")
    clock.advance(600)
    flow.engine.maintenance.zombie_sweep(timeout_seconds=300)
    with flow.engine.db.begin() as conn:
        inbox = flow.engine.topologies.of_instance(flow.instance_id).interaction_ids["Inbox"]
        conn.execute(
            sa.update(U)
            .where(U.c.id == first.uow_id)
            .values(status="PENDING", current_interaction_id=inbox)
        )
    second = flow.take("Triage")
    assert second.lease_id != first.lease_id
    with pytest.raises(LeaseLost):
        flow.engine.runtime.submit(first.uow_id, flow.actor, {"x": 1}, lease_id=first.lease_id)
    # Without a lease id the actor is judged by holding the current lease, which it does.
    assert (
        flow.engine.runtime.submit(first.uow_id, flow.actor, {"amount": 5}).interaction == "SmallQ"
    )
