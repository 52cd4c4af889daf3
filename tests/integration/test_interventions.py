"""Interventions in the engine: an agent's request, a pilot's answers, metrics and expiry."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import InterventionType, Priority
from chameleon_workflow.domain.errors import (
    InvalidInput,
    InvalidState,
    LeaseLost,
    UnknownIntervention,
    UnknownUow,
)
from chameleon_workflow.engine.checkout import Checkout
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.interventions import CLARIFICATIONS, Decision
from chameleon_workflow.engine.maintenance import JOBS
from chameleon_workflow.engine.parking import park
from chameleon_workflow.engine.scheduler import jobs_for
from chameleon_workflow.store.interventions import NewIntervention
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

PILOT = "pilot (key 1)"


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})


def ask(
    flow: Flow, c: Checkout, kind: InterventionType = InterventionType.APPROVAL, **kw: Any
) -> Any:
    return flow.engine.interventions.request(
        c.uow_id, flow.actor, type=kind, title="May I?", lease_id=c.lease_id, **kw
    )


def park_held(flow: Flow, c: Checkout, now: datetime, **kw: Any) -> uuid.UUID:
    """Park leased work as a guard would: with an expiry, a priority or a resume target."""
    engine = flow.engine
    with engine.db.begin() as conn:
        held = engine.db.sql.read_held(
            conn, c.uow_id, actor_id=flow.actor, lease_id=c.lease_id, lock=True
        )
        assert held.uow is not None
        new = NewIntervention(
            type=kw.pop("type", InterventionType.APPROVAL),
            title=kw.pop("title", "Approve?"),
            source="guardian",
            requested_by="guardian Gate",
            resume_interaction_id=kw.pop("resume_interaction_id", held.uow.current_interaction_id),
            **kw,
        )
        return park(conn, held.uow, new, now=now)


def log_events(flow: Flow, uow_id: uuid.UUID) -> list[str]:
    return [t.event for t in flow.engine.instances.history(uow_id).transitions]


def events(flow: Flow, kind: str) -> int:
    return int(flow.scalar("SELECT count(*) FROM pilot_events WHERE kind = :k", k=kind))


def paused_from(flow: Flow, uow_id: uuid.UUID) -> Any:
    return flow.scalar("SELECT paused_from FROM uows WHERE id = :i", i=uow_id.hex)


# --- unhappy paths -----------------------------------------------------------------------------


def test_a_request_needs_the_lease_and_a_title(flow: Flow) -> None:
    svc = flow.engine.interventions
    c = flow.take("Triage")
    other = flow.new_actor("other")
    with pytest.raises(UnknownUow):
        svc.request(uuid.uuid4(), flow.actor, type=InterventionType.APPROVAL, title="x")
    with pytest.raises(LeaseLost):
        svc.request(c.uow_id, other, type=InterventionType.APPROVAL, title="x")
    with pytest.raises(LeaseLost):
        svc.request(
            c.uow_id, flow.actor, type=InterventionType.APPROVAL, title="x", lease_id=uuid.uuid4()
        )
    with pytest.raises(InvalidInput, match="title"):
        svc.request(c.uow_id, flow.actor, type=InterventionType.APPROVAL, title="  ")
    assert flow.where(c.uow_id)[0] == "ACTIVE"
    assert svc.metrics().total == 0


def test_answers_to_nothing_change_nothing(flow: Flow) -> None:
    svc = flow.engine.interventions
    c = flow.take("Triage")
    with pytest.raises(UnknownUow):
        svc.answer_uow(uuid.uuid4(), Decision.APPROVE, "ok", by=PILOT)
    with pytest.raises(UnknownIntervention):
        svc.answer(uuid.uuid4(), Decision.APPROVE, "ok", by=PILOT)
    with pytest.raises(InvalidState, match="ACTIVE"):
        svc.answer_uow(c.uow_id, Decision.APPROVE, "ok", by=PILOT)
    with pytest.raises(InvalidState, match="ACTIVE"):
        svc.answer_uow(c.uow_id, Decision.CLARIFY, "an answer", by=PILOT)
    made = ask(flow, c)
    for blank in ("", "   "):
        with pytest.raises(InvalidInput, match="reason"):
            svc.answer(made.id, Decision.REJECT, blank, by=PILOT)
        with pytest.raises(InvalidInput, match="text"):
            svc.answer_uow(c.uow_id, Decision.CLARIFY, blank, by=PILOT)
    # An approval request is not answered with a clarification.
    with pytest.raises(InvalidState, match="approval"):
        svc.answer_uow(c.uow_id, Decision.CLARIFY, "here is what you asked", by=PILOT)
    assert svc.get(made.id).pending
    assert flow.where(c.uow_id)[0] == "PENDING_PILOT_APPROVAL"
    assert events(flow, "intervention.resolved") == 0


def test_a_request_is_answered_once(flow: Flow) -> None:
    svc = flow.engine.interventions
    made = ask(flow, flow.take("Triage"))
    svc.answer(made.id, Decision.APPROVE, "fine", by=PILOT)
    for decision in (Decision.APPROVE, Decision.REJECT):
        with pytest.raises(InvalidState, match="approved"):
            svc.answer(made.id, decision, "again", by=PILOT)
    with pytest.raises(InvalidState, match="PENDING"):
        svc.answer_uow(made.uow_id, Decision.REJECT, "again", by=PILOT)
    assert svc.get(made.id).resolution == "fine"
    assert events(flow, "intervention.resolved") == 1


# --- an agent asks -------------------------------------------------------------------------------


def test_an_agent_request_parks_the_work_and_ends_its_lease(flow: Flow) -> None:
    c = flow.take("Triage")
    made = ask(flow, c, description="the amount looks odd", priority=Priority.HIGH)
    assert made.pending and made.source == "agent" and made.actor_id == flow.actor
    assert made.priority == "high" and made.description == "the amount looks odd"
    assert made.resume_interaction_id == flow.uow(c.uow_id).uow.current_interaction_id
    assert made.requested_by == f"actor worker ({flow.actor})"
    assert flow.where(c.uow_id) == ("PENDING_PILOT_APPROVAL", "Inbox")
    assert flow.uow(c.uow_id).uow.lease_id is None
    with pytest.raises(LeaseLost, match="PENDING_PILOT_APPROVAL"):
        flow.engine.runtime.heartbeat(c.uow_id, flow.actor, c.lease_id)
    with pytest.raises(LeaseLost):
        flow.submit(c, amount=5)
    with pytest.raises(LeaseLost, match="parked_for_pilot"):  # the log says how it ended
        ask(flow, c)
    assert flow.checkout("Triage") is None  # parked work is not handed out
    assert log_events(flow, c.uow_id)[-1] == "parked_for_pilot"
    assert events(flow, "intervention.created") == 1


# --- a pilot answers ------------------------------------------------------------------------------


def test_resume_puts_the_work_back_where_it_was_going(flow: Flow) -> None:
    c = flow.take("Triage")
    made = ask(flow, c)
    done = flow.engine.interventions.answer_uow(c.uow_id, Decision.APPROVE, "go on", by=PILOT)
    assert done.uow_status == "PENDING"
    r = done.intervention
    assert (r.status, r.resolved_by, r.resolution) == ("approved", PILOT, "go on")
    assert r.resolved_at is not None and r.id == made.id
    assert flow.where(c.uow_id) == ("PENDING", "Inbox")
    again = flow.take("Triage")
    assert again.uow_id == c.uow_id
    history = flow.engine.instances.history(c.uow_id).transitions
    approved = next(t for t in history if t.event == "pilot_approved")
    assert approved.details is not None and approved.details["by"] == PILOT
    assert approved.details["reason"] == "go on"
    assert events(flow, "intervention.resolved") == 1


def test_resume_goes_to_the_requests_target(flow: Flow, clock: FakeClock) -> None:
    c = flow.take("Triage")
    small_q = flow.scalar(
        "SELECT id FROM interactions WHERE name = 'SmallQ' AND instance_id = :i",
        i=flow.instance_id.hex,
    )
    park_held(flow, c, clock(), resume_interaction_id=uuid.UUID(str(small_q)))
    flow.engine.interventions.answer_uow(c.uow_id, Decision.APPROVE, "ok", by=PILOT)
    assert flow.where(c.uow_id) == ("PENDING", "SmallQ")


def test_cancel_fails_the_work_into_ate_with_the_reason(flow: Flow) -> None:
    c = flow.take("Triage")
    made = ask(flow, c)
    done = flow.engine.interventions.answer(made.id, Decision.REJECT, "too risky", by=PILOT)
    assert done.intervention.status == "rejected" and done.uow_status == "FAILED"
    assert flow.where(c.uow_id) == ("FAILED", "Errors")
    failure = flow.uow(c.uow_id).uow.failure
    assert failure is not None
    assert failure["reason"] == "too risky" and failure["code"] == "pilot_rejected"
    assert failure["details"]["by"] == PILOT
    assert failure["details"]["intervention_id"] == str(made.id)
    assert flow.take("Fixer").uow_id == c.uow_id  # EPSILON picks it up
    assert "pilot_rejected" in log_events(flow, c.uow_id)


def test_a_clarification_is_added_to_the_attributes_seen_at_checkout(
    flow: Flow, clock: FakeClock
) -> None:
    svc = flow.engine.interventions
    c = flow.take("Triage")
    ask(flow, c, kind=InterventionType.CLARIFICATION)
    done = svc.answer_uow(c.uow_id, Decision.CLARIFY, "use EUR", by=PILOT)
    assert done.intervention.status == "approved" and done.intervention.resolution == "use EUR"
    c2 = flow.take("Triage")
    assert c2.attributes[CLARIFICATIONS] == [
        {"text": "use EUR", "by": PILOT, "at": clock().isoformat()}
    ]
    assert c2.attributes["amount"] == 5
    clock.advance(5)
    ask(flow, c2, kind=InterventionType.CLARIFICATION)
    svc.answer_uow(c.uow_id, Decision.CLARIFY, "and round up", by="someone else")
    c3 = flow.take("Triage")
    assert [x["text"] for x in c3.attributes[CLARIFICATIONS]] == ["use EUR", "and round up"]
    with flow.engine.db.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT version FROM uow_attributes WHERE uow_id = :u AND key = :k"),
            {"u": c.uow_id.hex, "k": CLARIFICATIONS},
        ).scalars()
        assert sorted(versions) == [1, 2]


def test_in_a_paused_instance_answered_work_waits_paused(flow: Flow) -> None:
    svc = flow.engine.interventions
    c = flow.take("Triage")
    second = flow.genesis(amount=7)
    made = ask(flow, c)
    c2 = flow.take("Triage")
    assert c2.uow_id == second
    ask(flow, c2)
    with flow.engine.db.begin() as conn:  # the kill switch's instance flag (another helper's)
        conn.execute(
            sa.text("UPDATE instances SET status = 'PAUSED' WHERE id = :i"),
            {"i": flow.instance_id.hex},
        )
    svc.answer(made.id, Decision.APPROVE, "ok", by=PILOT)
    assert flow.where(c.uow_id)[0] == "PAUSED" and paused_from(flow, c.uow_id) == "PENDING"
    svc.answer_uow(second, Decision.REJECT, "no", by=PILOT)
    assert flow.where(second) == ("PAUSED", "Errors") and paused_from(flow, second) == "FAILED"


def test_the_expiry_job_is_scheduled(flow: Flow) -> None:
    settings = flow.engine.settings.model_copy(update={"intervention_expiry_interval_seconds": 7})
    jobs = {j.name: j for j in jobs_for(flow.engine.maintenance, settings)}
    assert jobs["intervention_expiry"].interval_seconds == 7
    assert flow.engine.settings.intervention_expiry_interval_seconds == 30
    assert "intervention_expiry" in JOBS


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_by_status_type_and_priority(flow: Flow, clock: FakeClock) -> None:
    svc = flow.engine.interventions
    empty = svc.metrics()
    assert (empty.total, empty.pending, empty.average_resolution_seconds) == (0, 0, None)
    assert empty.by_type == {"approval": 0, "clarification": 0}
    ids = [flow.genesis(amount=i) for i in range(3)]
    made = []
    for i, priority in enumerate((Priority.CRITICAL, Priority.LOW, Priority.LOW)):
        c = flow.take("Triage")
        kind = InterventionType.CLARIFICATION if i == 0 else InterventionType.APPROVAL
        made.append(ask(flow, c, kind=kind, priority=priority))
    c = flow.take("Triage")
    made.append(ask(flow, c))
    assert len(ids) == 3
    clock.advance(10)
    svc.answer(made[1].id, Decision.APPROVE, "ok", by=PILOT)
    clock.advance(20)
    svc.answer(made[2].id, Decision.REJECT, "no", by=PILOT)
    m = svc.metrics()
    assert (m.total, m.pending, m.approved, m.rejected, m.expired) == (4, 2, 1, 1, 0)
    assert m.average_resolution_seconds == pytest.approx(20.0)  # (10 + 30) / 2
    assert m.by_type == {"approval": 3, "clarification": 1}
    assert m.by_priority == {"critical": 1, "high": 0, "normal": 1, "low": 2}


# --- expiry ---------------------------------------------------------------------------------------


def test_expired_requests_follow_on_expiry(flow: Flow, clock: FakeClock) -> None:
    maintenance = flow.engine.maintenance
    a, b, keep = flow.take("Triage"), None, None
    flow.genesis(amount=6)
    flow.genesis(amount=7)
    b = flow.take("Triage")
    keep = flow.take("Triage")
    now = clock()
    soon = now + timedelta(seconds=60)
    approve = park_held(flow, a, now, on_expiry="approve", expires_at=soon)
    cancel = park_held(flow, b, now, on_expiry="cancel", expires_at=soon)
    never = park_held(flow, keep, now)
    first = maintenance.intervention_expiry()
    assert first.counts["expired"] == 0
    clock.advance(61)
    run = maintenance.intervention_expiry()
    assert run.counts["expired"] == 2
    assert (run.counts["approved"], run.counts["cancelled"]) == (1, 1)
    svc = flow.engine.interventions
    assert svc.get(approve).status == "expired" and svc.get(cancel).status == "expired"
    assert svc.get(never).pending
    assert flow.where(a.uow_id) == ("PENDING", "Inbox")
    assert flow.where(b.uow_id) == ("FAILED", "Errors")
    failure = flow.uow(b.uow_id).uow.failure
    assert failure is not None and "expired" in failure["reason"]
    assert flow.where(keep.uow_id)[0] == "PENDING_PILOT_APPROVAL"
    assert events(flow, "intervention.expired") == 2
    assert svc.metrics().expired == 2
    assert maintenance.intervention_expiry().counts["expired"] == 0  # idempotent
    with pytest.raises(InvalidState, match="expired"):
        svc.answer(approve, Decision.REJECT, "too late", by=PILOT)
    (recorded, *_) = maintenance.runs(job="intervention_expiry")
    assert recorded.counts is not None and recorded.counts["expired"] == 0


def test_two_expiry_runs_at_once_expire_each_request_once(flow: Flow, clock: FakeClock) -> None:
    now = clock()
    uows = []
    for i in range(6):
        flow.genesis(amount=i)
    for i in range(6):
        c = flow.take("Triage")
        uows.append(c.uow_id)
        park_held(flow, c, now, on_expiry="cancel" if i % 2 else "approve", expires_at=now)
    clock.advance(1)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(flow.engine.maintenance.intervention_expiry(batch_size=2))
        except BaseException as exc:  # noqa: BLE001 - inspected below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, BaseException) for r in results), results
    expired = sum(r.counts["expired"] for r in results)
    left = flow.engine.maintenance.intervention_expiry().counts["expired"]
    assert expired + left == 6
    assert events(flow, "intervention.expired") == 6
    assert flow.engine.interventions.metrics().expired == 6
    ends = flow.scalar("SELECT count(*) FROM interaction_log WHERE event = 'pilot_expired'")
    assert ends == 6
    statuses = sorted(flow.where(u)[0] for u in uows)
    assert statuses == ["FAILED"] * 3 + ["PENDING"] * 3
