"""Approval gates and the loop guard park work for a pilot at submit (both databases)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import DefinitionInvalid
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.submit import plain_submit
from chameleon_workflow.store.tables import InteractionLog, Intervention, Template, Uow
from chameleon_workflow.store.work import UowState
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text, statements

I = Intervention.__table__  # noqa: E741
L = InteractionLog.__table__
U = Uow.__table__

GATE = fixture_text("pilot/approval_gate.yml")
LOOP = fixture_text("pilot/loop_guard.yml")
GATE_SETTINGS = """            condition: "amount > 1000"
            priority: high
            expires_in_seconds: 3600
            on_expiry: approve
            title: Approve a big spend
"""


def _requests(flow: Flow, uow_id: uuid.UUID | None = None) -> list[Any]:
    with flow.engine.db.connect() as conn:
        stmt = sa.select(I).where(I.c.instance_id == flow.instance_id)
        if uow_id is not None:
            stmt = stmt.where(I.c.uow_id == uow_id)
        return list(conn.execute(stmt.order_by(I.c.created_at)))


def _events(flow: Flow, uow_id: uuid.UUID) -> list[Any]:
    with flow.engine.db.connect() as conn:
        return list(conn.execute(sa.select(L).where(L.c.uow_id == uow_id).order_by(L.c.id)))


def _row(flow: Flow, uow_id: uuid.UUID) -> Any:
    with flow.engine.db.connect() as conn:
        return conn.execute(sa.select(U).where(U.c.id == uow_id)).one()


def _interaction_id(flow: Flow, name: str) -> uuid.UUID:
    return flow.engine.topologies.of_instance(flow.instance_id).interaction_ids[name]


# --- validation at import -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["            priority: urgent\n", "            expires_in_seconds: 0\n"],
)
def test_a_bad_gate_is_refused_at_import_and_nothing_is_stored(engine: Engine, bad: str) -> None:
    with pytest.raises(DefinitionInvalid) as caught:
        engine.templates.import_yaml(GATE.replace(GATE_SETTINGS, bad))
    assert any("'big_spend'" in v.message for v in caught.value.violations)
    with engine.db.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(Template.__table__)).scalar() == 0
        )


# --- approval gates -------------------------------------------------------------------------


def test_work_the_condition_does_not_match_moves_on_without_a_request(engine: Engine) -> None:
    flow = Flow(engine, GATE, {"amount": 10})
    out = flow.submit(flow.take("Draft"), amount=999)
    assert (out.status.value, out.interaction, out.intervention_id) == ("PENDING", "Reviews", None)
    assert flow.where(flow.first_uow) == ("PENDING", "Reviews")
    assert _requests(flow) == []


def test_matching_work_is_parked_where_it_was_with_a_request(
    engine: Engine, clock: FakeClock
) -> None:
    flow = Flow(engine, GATE, {"amount": 10})
    c = flow.take("Draft")
    out = flow.submit(c, amount=5000)  # the condition sees the submitted attributes
    assert (out.status.value, out.interaction) == ("PENDING_PILOT_APPROVAL", "Inbox")
    assert out.intervention_id is not None and "Approve a big spend" in out.route
    row = _row(flow, flow.first_uow)
    assert (row.status, row.lease_id, row.lease_holder_id) == ("PENDING_PILOT_APPROVAL", None, None)
    assert flow.uow(flow.first_uow).attributes["amount"] == 5000
    [request] = _requests(flow)
    assert request.id == out.intervention_id and request.uow_id == flow.first_uow
    assert (request.type, request.status, request.source) == ("approval", "pending", "guardian")
    assert (request.priority, request.priority_rank) == ("high", 1)
    assert (request.guardian_name, request.title) == ("big_spend", "Approve a big spend")
    assert request.description == "Spends over 1000 need a pilot"
    assert request.resume_interaction_id == _interaction_id(flow, "Reviews")
    assert request.on_expiry == "approve"
    expected = clock.now + timedelta(seconds=3600)
    assert request.expires_at.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert request.details["condition"] == "amount > 1000"
    assert request.details["target_interaction"] == "Reviews"
    events = [e.event for e in _events(flow, flow.first_uow)]
    assert events[-2:] == ["submit", "parked_for_pilot"] and "route" not in events[1:]
    # Parked work is nobody's: neither role can take it.
    assert flow.checkout("Draft") is None and flow.checkout("Review") is None


def test_a_condition_that_cannot_be_evaluated_parks_to_be_safe(engine: Engine) -> None:
    flow = Flow(engine, GATE, {"amount": 10})
    out = flow.submit(flow.take("Draft"), amount="lots")  # a string cannot be ordered with 1000
    assert out.status.value == "PENDING_PILOT_APPROVAL"
    [request] = _requests(flow)
    assert "could not be evaluated" in request.details["why"]
    assert "parked to be safe" in request.details["why"]


def test_only_matching_work_is_parked(engine: Engine) -> None:
    flow = Flow(engine, GATE, {"amount": 2000})
    small = flow.genesis(amount=5)
    big = flow.take("Draft")
    assert big.uow_id == flow.first_uow
    assert flow.submit(big).status.value == "PENDING_PILOT_APPROVAL"
    assert flow.submit(flow.take("Draft")).status.value == "PENDING"
    assert flow.where(small) == ("PENDING", "Reviews")
    assert [r.uow_id for r in _requests(flow)] == [flow.first_uow]


def test_a_gate_without_settings_parks_everything_at_normal_priority_forever(
    engine: Engine,
) -> None:
    flow = Flow(engine, GATE.replace(GATE_SETTINGS, ""), {"amount": 1})
    out = flow.submit(flow.take("Draft"))
    [request] = _requests(flow)
    assert out.intervention_id == request.id
    assert (request.priority, request.priority_rank) == ("normal", 2)
    assert (request.expires_at, request.on_expiry) == (None, None)
    assert request.title == "Approval needed: big_spend (into Reviews)"


def test_a_gate_on_the_next_roles_inbound_component_parks_the_submit(engine: Engine) -> None:
    inbound = GATE.replace(
        "    - {name: Review_In, role: Review, interaction: Reviews, direction: INBOUND}",
        "    - name: Review_In\n      role: Review\n      interaction: Reviews\n"
        "      direction: INBOUND\n"
        "      guardian: {name: second_look, type: PILOT_APPROVAL, config: "
        "{condition: 'flagged == true', priority: critical}}",
    )
    flow = Flow(engine, inbound, {"amount": 1})
    out = flow.submit(flow.take("Draft"), flagged=True)
    [request] = _requests(flow)
    assert (out.status.value, request.guardian_name, request.priority) == (
        "PENDING_PILOT_APPROVAL",
        "second_look",
        "critical",
    )
    assert request.resume_interaction_id == _interaction_id(flow, "Reviews")
    flow.genesis(amount=1)
    assert flow.submit(flow.take("Draft"), flagged=False).status.value == "PENDING"


def test_a_retried_submit_that_parked_replays_the_same_request(engine: Engine) -> None:
    flow = Flow(engine, GATE, {"amount": 5000})
    c = flow.take("Draft")
    first = flow.submit(c)
    again = flow.submit(c)
    assert again.replayed and again.intervention_id == first.intervention_id
    assert len(_requests(flow)) == 1


def test_a_gated_role_never_takes_the_one_statement_path(engine: Engine) -> None:
    flow = Flow(engine, GATE, {"amount": 1})
    topo = engine.topologies.of_instance(flow.instance_id)
    draft = flow.take("Draft")
    with engine.db.connect() as conn:
        state = UowState.from_row(conn.execute(sa.select(U).where(U.c.id == draft.uow_id)).one())
    assert plain_submit({"amount": 1}, None) is True  # before the UOW is known
    assert plain_submit({"amount": 1}, None, topo, state) is False
    flow.submit(draft)
    review = flow.take("Review")
    with engine.db.connect() as conn:
        state = UowState.from_row(conn.execute(sa.select(U).where(U.c.id == review.uow_id)).one())
    assert plain_submit({}, None, topo, state) is True


@pytest.mark.postgres
def test_postgres_a_gated_submit_locks_and_an_ungated_one_is_one_statement(
    pg_url: str, clock: FakeClock
) -> None:
    from chameleon_workflow.settings import Settings
    from tests.conftest import empty_database

    empty_database(pg_url)
    engine = Engine(Settings(database_url=pg_url, scheduler_enabled=False), clock=clock)
    try:
        flow = Flow(engine, GATE, {"amount": 1})
        c = flow.take("Draft")
        with statements(engine) as sent:
            flow.submit(c)
        assert len(sent) > 1 and any("FOR UPDATE" in s for s in sent), sent
        c = flow.take("Review")
        with statements(engine) as sent:
            flow.submit(c)
        assert len(sent) == 1, sent
    finally:
        engine.close()


# --- the loop guard -------------------------------------------------------------------------


def _lap(flow: Flow) -> Any:
    """Draft hands the work to Review, which sends it back; Review's outcome."""
    flow.submit(flow.take("Draft"))
    return flow.submit(flow.take("Review"), approved=False)


def test_the_loop_guard_parks_the_entry_past_the_roles_max_visits(engine: Engine) -> None:
    flow = Flow(engine, LOOP, {"approved": False})  # genesis: Draft's 1st visit
    first = _lap(flow)  # Draft's 2nd visit: allowed (max_visits 2)
    assert (first.status.value, first.interaction) == ("PENDING", "Inbox")
    assert _requests(flow) == []
    second = _lap(flow)  # would be the 3rd
    assert (second.status.value, second.interaction) == ("PENDING_PILOT_APPROVAL", "Reviews")
    [request] = _requests(flow)
    assert second.intervention_id == request.id
    assert (request.type, request.source, request.priority) == (
        "clarification",
        "loop_guard",
        "high",
    )
    assert "'Draft'" in request.title and "3rd time" in request.title
    assert "max_visits 2" in request.title
    assert request.resume_interaction_id == _interaction_id(flow, "Inbox")
    assert request.details == {
        "role": "Draft",
        "visits": 2,
        "max_visits": 2,
        "route": "Review_Back",
        "target_interaction": "Inbox",
    }
    assert (request.guardian_name, request.expires_at, request.on_expiry) == (None, None, None)
    assert flow.checkout("Draft") is None and flow.checkout("Review") is None


def test_the_workflows_max_visits_applies_to_roles_without_their_own(engine: Engine) -> None:
    text = LOOP.replace("  max_visits: 5\n", "  max_visits: 1\n").replace(
        ", max_visits: 2}", ", max_visits: 3}"
    )
    flow = Flow(engine, text, {"approved": False})
    assert _lap(flow).status.value == "PENDING"  # Draft's 2nd visit of 3; Review's 1st of 1
    flow.submit(flow.take("Draft"))  # Review's 2nd: over the workflow's limit
    [request] = _requests(flow)
    assert "'Review'" in request.title and "2nd time" in request.title
    assert flow.where(flow.first_uow) == ("PENDING_PILOT_APPROVAL", "Inbox")


def test_work_that_does_not_loop_is_never_stopped(engine: Engine) -> None:
    flow = Flow(engine, LOOP, {"approved": False})
    flow.submit(flow.take("Draft"))
    out = flow.submit(flow.take("Review"), approved=True)
    assert (out.status.value, out.interaction) == ("PENDING", "Done")
    assert _requests(flow) == []


def test_a_workflow_without_max_visits_loops_unguarded(engine: Engine) -> None:
    text = LOOP.replace("  max_visits: 5\n", "").replace(", max_visits: 2}", "}")
    flow = Flow(engine, text, {"approved": False})
    for _ in range(4):
        assert _lap(flow).status.value == "PENDING"
    assert _requests(flow) == []
    assert engine.topologies.of_instance(flow.instance_id).defn.pilot_checked_roles == frozenset()
