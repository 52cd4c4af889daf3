"""Retried submits and failure reports on both databases (unhappy paths first).

A retry with the same lease and the same request replays the recorded outcome; anything
else on a used lease, and any request on a lease that was lost unused, is a LeaseLost.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import LeaseLost
from chameleon_workflow.engine.checkout import Checkout
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.lease_cache import LeaseCache, Leased
from chameleon_workflow.store.tables import InteractionLog, LeaseOutcome, UowAttribute
from chameleon_workflow.store.work import UowState
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
A = UowAttribute.__table__
O = LeaseOutcome.__table__  # noqa: E741


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _written(engine: Engine) -> tuple[int, int, int]:
    """Log rows, attribute versions and recorded outcomes in the whole database."""
    with engine.db.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in (L, A, O)
        )


def _fields(outcome: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(outcome).items() if k != "replayed"}


def _fail(flow: Flow, c: Checkout, code: str = "E1", **kw: Any) -> Any:
    return flow.engine.runtime.fail(c.uow_id, flow.actor, code, lease_id=c.lease_id, **kw)


# --- conflicts -------------------------------------------------------------------------------


def test_a_different_body_on_a_used_lease_is_409_and_changes_nothing(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.submit(c, amount=10)
    before = _written(flow.engine)
    with pytest.raises(LeaseLost, match="already used for a different request") as lost:
        flow.submit(c, amount=99)
    assert lost.value.details == {
        "uow_id": str(c.uow_id),
        "lease_id": str(c.lease_id),
        "used_for": "submit",
    }
    with pytest.raises(LeaseLost, match="different request"):
        flow.engine.runtime.submit(c.uow_id, flow.actor, {"amount": 10}, reasoning="why not")
    with pytest.raises(LeaseLost, match=r"a submit at"):
        _fail(flow, c)
    assert _written(flow.engine) == before
    assert flow.where(c.uow_id) == ("PENDING", "SmallQ")


def test_another_actor_replaying_a_used_lease_is_409(flow: Flow) -> None:
    c = flow.take("Triage")
    flow.submit(c, amount=10)
    intruder = flow.new_actor("intruder")
    with pytest.raises(LeaseLost, match="different request"):
        flow.submit(c, intruder, amount=10)


def test_a_lease_reclaimed_unused_is_409_saying_so(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    flow.engine.maintenance.zombie_sweep()
    before = _written(flow.engine)
    with pytest.raises(LeaseLost, match="reclaimed by the zombie sweep") as lost:
        flow.submit(c, amount=10)
    assert lost.value.details["ended_by"] == "reclaim"
    with pytest.raises(LeaseLost, match="reclaimed"):
        _fail(flow, c)
    assert _written(flow.engine) == before


def test_a_lease_never_issued_or_held_by_another_is_409_as_before(flow: Flow) -> None:
    c = flow.take("Triage")
    with pytest.raises(LeaseLost, match="does not hold"):
        flow.engine.runtime.submit(c.uow_id, flow.actor, {}, lease_id=uuid.uuid4())
    with pytest.raises(LeaseLost, match="does not hold"):
        flow.submit(c, flow.new_actor("other"), amount=10)
    assert flow.where(c.uow_id) == ("ACTIVE", "Inbox")


def test_a_lease_taken_over_after_the_reclaim_says_it_was_reclaimed(
    flow: Flow, clock: FakeClock
) -> None:
    c = flow.take("Triage")
    clock.advance(301)
    flow.engine.maintenance.zombie_sweep()
    timer = flow.take("Timer", flow.new_actor("timer"))
    assert timer.uow_id == c.uow_id
    with pytest.raises(LeaseLost, match="reclaimed"):
        flow.submit(c, amount=10)
    assert flow.where(c.uow_id) == ("ACTIVE", "Timeouts")


# --- replays ---------------------------------------------------------------------------------


def test_a_retried_submit_replays_the_original_outcome(flow: Flow) -> None:
    c = flow.take("Triage")
    first = flow.submit(c, amount=10)
    assert first.replayed is False
    before = _written(flow.engine)
    again = flow.submit(c, amount=10)
    assert again.replayed is True and _fields(again) == _fields(first)
    assert _written(flow.engine) == before


def test_the_body_is_compared_as_json_not_as_text(flow: Flow) -> None:
    c = flow.take("Triage")
    rt = flow.engine.runtime
    first = rt.submit(c.uow_id, flow.actor, {"amount": 10, "note": {"a": 1, "b": 2}})
    again = rt.submit(
        c.uow_id, flow.actor, {"note": {"b": 2, "a": 1}, "amount": 10}, lease_id=c.lease_id
    )
    assert again.replayed and _fields(again) == _fields(first)


def test_a_replay_survives_the_uow_moving_on_to_another_actor(flow: Flow) -> None:
    c = flow.take("Triage")
    first = flow.submit(c, amount=10)
    other = flow.new_actor("other")
    small = flow.take("Small", other)
    assert small.uow_id == c.uow_id
    assert _fields(flow.submit(c, amount=10)) == _fields(first)
    flow.submit(small, other, done=True)
    finish = flow.take("Finish", other)
    flow.submit(finish, other)
    assert flow.where(c.uow_id)[0] == "COMPLETED"
    again = flow.submit(c, amount=10)
    assert again.replayed and _fields(again) == _fields(first)


def test_a_retry_without_the_lease_id_replays_the_actors_latest_lease(flow: Flow) -> None:
    c = flow.take("Triage")
    rt = flow.engine.runtime
    first = rt.submit(c.uow_id, flow.actor, {"amount": 10})
    again = rt.submit(c.uow_id, flow.actor, {"amount": 10})
    assert again.replayed and _fields(again) == _fields(first)
    with pytest.raises(LeaseLost, match="different request"):
        rt.submit(c.uow_id, flow.actor, {"amount": 11})


def test_a_decomposing_submit_replays_its_children(flow: Flow) -> None:
    c = flow.take("Triage")
    rt = flow.engine.runtime
    kids = [{"amount": 1}, {"amount": 2000}]
    first = rt.submit(c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=kids)
    assert len(first.children) == 2
    before = _written(flow.engine)
    again = rt.submit(c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=kids)
    assert again.replayed and again.children == first.children
    assert _written(flow.engine) == before


def test_a_retried_failure_report_replays_even_after_the_fixer_took_it(flow: Flow) -> None:
    c = flow.take("Triage")
    first = _fail(flow, c, details={"why": "bad"})
    assert (first.status.value, first.interaction, first.replayed) == ("FAILED", "Errors", False)
    fixer = flow.take("Fixer", flow.new_actor("fixer"))
    assert fixer.uow_id == c.uow_id
    before = _written(flow.engine)
    again = _fail(flow, c, details={"why": "bad"})
    assert again.replayed and _fields(again) == _fields(first)
    with pytest.raises(LeaseLost, match="different request"):
        _fail(flow, c, details={"why": "worse"})
    with pytest.raises(LeaseLost, match="a failure at"):
        flow.submit(c, amount=10)
    assert _written(flow.engine) == before
    assert flow.where(c.uow_id) == ("ACTIVE", "Errors")


def test_many_leases_some_landed_some_reclaimed(flow: Flow, clock: FakeClock) -> None:
    """The issue's scenario: the landed submits replay, the reclaimed ones stay 409."""
    for amount in range(1, 6):
        flow.genesis(amount=amount)
    leases = [flow.take("Triage") for _ in range(6)]
    for c in leases[:3]:
        flow.submit(c, amount=10)
    clock.advance(301)
    assert flow.engine.maintenance.zombie_sweep().counts["reclaimed"] == 3
    before = _written(flow.engine)
    replayed, refused = [], []
    for c in leases:
        try:
            replayed.append(flow.submit(c, amount=10).uow_id)
        except LeaseLost as lost:
            assert "reclaimed" in lost.message
            refused.append(c.uow_id)
    assert replayed == [c.uow_id for c in leases[:3]]
    assert refused == [c.uow_id for c in leases[3:]]
    assert _written(flow.engine) == before
    submits = flow.scalar("SELECT count(*) FROM interaction_log WHERE event = 'submit'")
    assert submits == 3


# --- the per-process lease cache ---------------------------------------------------------------


def _entry(holder: uuid.UUID, lease: uuid.UUID) -> Leased:
    uow = UowState(
        id=uuid.UUID(int=1),
        instance_id=uuid.UUID(int=2),
        parent_id=None,
        status="ACTIVE",
        current_interaction_id=None,
        current_role_id=uuid.UUID(int=3),
        lease_id=lease,
        lease_holder_id=holder,
        child_count=0,
        finished_child_count=0,
        failure=None,
    )
    return Leased(uow, {})


def test_a_late_retry_leaves_the_new_holders_cached_lease_alone() -> None:
    cache = LeaseCache()
    old, new, holder, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(_entry(holder, new))
    uow_id = uuid.UUID(int=1)
    assert cache.take(uow_id, late, old) is None
    assert cache.take(uow_id, holder, old) is None
    taken = cache.take(uow_id, holder, None)
    assert taken is not None and taken.uow.lease_id == new
    assert cache.take(uow_id, holder, new) is None
