"""The stale token protocol on both databases (unhappy paths first)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from chameleon_workflow.domain.errors import InvalidInput
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import InteractionLog, Uow
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
U = Uow.__table__


def limited(workflow: int | None = None, **interactions: int) -> str:
    """routing_workflow.yml with stale-token limits on the workflow and on interactions."""
    data = yaml.safe_load(fixture_text("routing_workflow.yml"))
    if workflow is not None:
        data["workflow"]["stale_token_limit_seconds"] = workflow
    for ix in data["workflow"]["interactions"]:
        if ix["name"] in interactions:
            ix["stale_token_limit_seconds"] = interactions[ix["name"]]
    return yaml.safe_dump(data)


def _sweep(engine: Engine, **kw: Any) -> dict[str, Any]:
    return engine.maintenance.stale_token_sweep(**kw).counts


# --- unhappy paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [0, -1, True, 2.5])
def test_a_bad_batch_size_is_refused(engine: Engine, batch: Any) -> None:
    with pytest.raises(InvalidInput, match="batch_size"):
        engine.maintenance.stale_token_sweep(batch_size=batch)
    assert engine.maintenance.runs() == []


def test_without_limits_nothing_is_checked(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    clock.advance(10**7)
    assert _sweep(engine) == {"moved": 0, "batches": 0}
    assert flow.where(flow.first_uow) == ("PENDING", "Inbox")


def test_work_younger_than_the_limit_stays(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Inbox=120), {"amount": 5})
    clock.advance(119)
    assert _sweep(engine)["moved"] == 0
    assert flow.where(flow.first_uow) == ("PENDING", "Inbox")


def test_leased_work_is_not_a_stale_token(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Inbox=120), {"amount": 5})
    flow.take("Triage")
    clock.advance(121)
    assert _sweep(engine)["moved"] == 0


def test_a_parent_waiting_for_its_children_is_not_stale(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Done=60), {"amount": 5})
    c = flow.take("Triage")
    engine.runtime.submit(c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}])
    clock.advance(61)
    assert _sweep(engine)["moved"] == 0
    assert flow.where(c.uow_id) == ("PENDING", "Done")


def test_work_already_in_chronos_is_left_alone(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(workflow=60), {"amount": 5})
    topo = engine.topologies.of_instance(flow.instance_id)
    with engine.db.begin() as conn:
        conn.execute(
            sa.update(U)
            .where(U.c.id == flow.first_uow)
            .values(current_interaction_id=topo.interaction_ids["Timeouts"])
        )
    clock.advance(61)
    assert _sweep(engine)["moved"] == 0
    assert flow.where(flow.first_uow) == ("PENDING", "Timeouts")


# --- moving stale tokens to Chronos --------------------------------------------------------------


def test_a_stale_token_goes_to_chronos_with_the_reason(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Inbox=120), {"amount": 5})
    clock.advance(150)
    assert _sweep(engine) == {"moved": 1, "batches": 1}
    u = flow.uow(flow.first_uow)
    assert (u.uow.status, u.interaction, u.uow.entered_at) == ("FAILED", "Timeouts", clock.now)
    assert u.uow.failure["kind"] == "stale_token"
    assert u.uow.failure["details"]["limit"] == 120 and u.uow.failure["details"]["waited"] == 150
    assert u.uow.failure["at"] == clock.now.isoformat()
    topo = engine.topologies.of_instance(flow.instance_id)
    with engine.db.connect() as conn:
        (log,) = conn.execute(
            sa.select(L).where(L.c.uow_id == flow.first_uow, L.c.event == "stale_token")
        )
    assert (log.from_status, log.to_status) == ("PENDING", "FAILED")
    assert log.from_interaction_id == topo.interaction_ids["Inbox"]
    assert log.to_interaction_id == topo.interaction_ids["Timeouts"]
    assert log.details["details"]["limit"] == 120


def test_the_timer_role_can_take_the_stale_token(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Inbox=120), {"amount": 5})
    clock.advance(121)
    _sweep(engine)
    taken = flow.take("Timer")
    assert taken.uow_id == flow.first_uow and taken.failure["kind"] == "stale_token"


def test_the_workflow_default_applies_and_an_interaction_overrides_it(
    engine: Engine, clock: FakeClock
) -> None:
    flow = Flow(engine, limited(workflow=600, SmallQ=60), {"amount": 5})
    c = flow.take("Triage")
    flow.submit(c, amount=5)  # now PENDING in SmallQ
    waiting = flow.genesis(amount=7)  # PENDING in Inbox
    clock.advance(61)
    assert _sweep(engine)["moved"] == 1
    assert flow.where(c.uow_id) == ("FAILED", "Timeouts")
    assert flow.where(waiting) == ("PENDING", "Inbox")
    clock.advance(540)
    assert _sweep(engine)["moved"] == 1
    assert flow.uow(waiting).uow.failure["details"]["limit"] == 600


def test_stale_children_are_moved_and_their_parent_refreshed(
    engine: Engine, clock: FakeClock
) -> None:
    flow = Flow(engine, limited(SmallQ=60), {"amount": 5})
    c = flow.take("Triage")
    engine.runtime.submit(
        c.uow_id, flow.actor, {}, lease_id=c.lease_id, children=[{"amount": 1}, {"amount": 2}]
    )
    clock.advance(61)
    assert _sweep(engine, batch_size=1) == {"moved": 2, "batches": 3}
    parent = flow.uow(c.uow_id)
    assert [k.status for k in parent.children] == ["FAILED", "FAILED"]
    assert parent.uow.finished_child_count == 0


def test_a_dry_run_counts_and_changes_nothing(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, limited(Inbox=120), {"amount": 5})
    clock.advance(121)
    run = engine.maintenance.stale_token_sweep(dry_run=True)
    assert run.dry_run and run.counts == {"candidates": 1} and run.sample == [flow.first_uow]
    assert flow.where(flow.first_uow) == ("PENDING", "Inbox")
    assert engine.maintenance.runs()[0].parameters["dry_run"] is True
