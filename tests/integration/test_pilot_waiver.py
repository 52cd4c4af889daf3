"""The pilot's waiver: a gate's rejection undone once, on both databases (unhappy first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import (
    InstancePaused,
    InvalidInput,
    InvalidState,
    NotFound,
    UnknownUow,
)
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import Instance, InteractionLog, PilotWaiver, Uow
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
U = Uow.__table__
W = PilotWaiver.__table__
GATE = fixture_text("pilot/approval_gate.yml")
PILOT = "pilot-key (key 00000000-0000-0000-0000-000000000001)"


@pytest.fixture
def flow(engine: Engine) -> Flow:
    """The first UOW has a negative amount: Draft's gate 'amount_ok' rejected it into Ate."""
    f = Flow(engine, GATE, {"amount": -1})
    assert f.checkout("Draft") is None
    assert f.where(f.first_uow) == ("FAILED", "Errors")
    return f


def _state(flow: Flow, uow_id: uuid.UUID) -> tuple[Any, ...]:
    with flow.engine.db.connect() as conn:
        row = tuple(conn.execute(sa.select(U).where(U.c.id == uow_id)).one())
        logs = conn.execute(
            sa.select(sa.func.count()).select_from(L).where(L.c.uow_id == uow_id)
        ).scalar()
        waivers = conn.execute(sa.select(sa.func.count()).select_from(W)).scalar()
    return row + (logs, waivers)


def _waivers(flow: Flow) -> list[Any]:
    with flow.engine.db.connect() as conn:
        return list(conn.execute(sa.select(W).order_by(W.c.id)))


def _log(flow: Flow, uow_id: uuid.UUID) -> list[Any]:
    with flow.engine.db.connect() as conn:
        return list(conn.execute(sa.select(L).where(L.c.uow_id == uow_id).order_by(L.c.id)))


def _waive(flow: Flow, uow_id: uuid.UUID, guardian: str = "amount_ok", reason: Any = "ok") -> Any:
    return flow.engine.waivers.waive(uow_id, guardian, reason, PILOT)


# --- refusals: nothing changes ------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None, 7])
def test_a_blank_reason_is_422(flow: Flow, reason: Any) -> None:
    before = _state(flow, flow.first_uow)
    with pytest.raises(InvalidInput, match="reason is required"):
        _waive(flow, flow.first_uow, reason=reason)
    assert _state(flow, flow.first_uow) == before


def test_an_unknown_uow_is_404(flow: Flow) -> None:
    before = _state(flow, flow.first_uow)
    with pytest.raises(UnknownUow):
        _waive(flow, uuid.uuid4())
    assert _state(flow, flow.first_uow) == before


def test_a_guardian_the_workflow_does_not_have_is_404(flow: Flow) -> None:
    before = _state(flow, flow.first_uow)
    with pytest.raises(NotFound, match="no guardian 'amount_okay'"):
        _waive(flow, flow.first_uow, "amount_okay")
    assert _state(flow, flow.first_uow) == before


def test_waiving_another_guard_than_the_one_that_rejected_is_409_naming_it(flow: Flow) -> None:
    before = _state(flow, flow.first_uow)
    with pytest.raises(InvalidState, match="rejected by guardian 'amount_ok', not 'big_spend'"):
        _waive(flow, flow.first_uow, "big_spend")
    assert _state(flow, flow.first_uow) == before


def test_a_paused_instance_is_409_until_resumed(flow: Flow) -> None:
    """A rejected UOW the kill switch has not reached yet (its instance already PAUSED)."""
    with flow.engine.db.begin() as conn:
        conn.execute(
            sa.update(Instance.__table__)
            .where(Instance.__table__.c.id == flow.instance_id)
            .values(status="PAUSED", paused_by="ops", pause_reason="incident")
        )
    before = _state(flow, flow.first_uow)
    with pytest.raises(InstancePaused, match="resume it before waiving"):
        _waive(flow, flow.first_uow)
    assert _state(flow, flow.first_uow) == before


def test_work_no_gate_rejected_is_409_naming_its_status(flow: Flow) -> None:
    fine = flow.genesis(amount=5)
    before = _state(flow, fine)
    with pytest.raises(InvalidState, match=f"UOW {fine} is PENDING, not rejected by a gate"):
        _waive(flow, fine)
    assert _state(flow, fine) == before
    c = flow.take("Draft")
    flow.engine.runtime.fail(c.uow_id, flow.actor, "E_BAD", lease_id=c.lease_id)
    before = _state(flow, fine)
    with pytest.raises(InvalidState, match=r"is FAILED \(explicit\), not rejected by a gate"):
        _waive(flow, fine)
    assert _state(flow, fine) == before


def test_work_the_ate_role_took_is_409(flow: Flow) -> None:
    c = flow.take("Fixer")
    assert c.uow_id == flow.first_uow
    before = _state(flow, flow.first_uow)
    with pytest.raises(InvalidState, match="is ACTIVE"):
        _waive(flow, flow.first_uow)
    assert _state(flow, flow.first_uow) == before


# --- the waiver -------------------------------------------------------------------------------


def test_a_waiver_sends_the_work_back_and_is_logged_with_the_pilot(flow: Flow) -> None:
    rejection = flow.uow(flow.first_uow).uow.failure
    assert rejection is not None and rejection["guardian"] == "amount_ok"
    done = _waive(flow, flow.first_uow, reason="the customer refunds count as negative")
    assert (done.status.value, done.interaction, done.guardian_name) == (
        "PENDING",
        "Inbox",
        "amount_ok",
    )
    u = flow.uow(flow.first_uow)
    assert (u.uow.status, u.interaction, u.uow.failure) == ("PENDING", "Inbox", None)
    [waiver] = _waivers(flow)
    assert (waiver.id, waiver.uow_id, waiver.guardian_name) == (
        done.waiver_id,
        flow.first_uow,
        "amount_ok",
    )
    assert (waiver.granted_by, waiver.used_at) == (PILOT, None)
    assert waiver.reason == "the customer refunds count as negative"
    entry = _log(flow, flow.first_uow)[-1]
    assert (entry.event, entry.from_status, entry.to_status) == (
        "CONSTITUTIONAL_WAIVER",
        "FAILED",
        "PENDING",
    )
    assert entry.details["pilot"] == PILOT and entry.details["guardian"] == "amount_ok"
    assert entry.details["reason"] == "the customer refunds count as negative"
    assert entry.details["rejection"] == rejection["reason"]
    # Waived again before it was used: it is no longer a rejected UOW.
    with pytest.raises(InvalidState, match="is PENDING"):
        _waive(flow, flow.first_uow)


def test_the_guard_lets_the_waived_uow_pass_once(flow: Flow) -> None:
    _waive(flow, flow.first_uow)
    c = flow.take("Draft")  # amount -1: the gate fails, the waiver is spent
    assert c.uow_id == flow.first_uow and c.attributes["amount"] == -1
    [waiver] = _waivers(flow)
    assert waiver.used_at is not None
    used = [e for e in _log(flow, flow.first_uow) if e.event == "waiver_used"]
    assert len(used) == 1 and used[0].details["guardian"] == "amount_ok"
    assert used[0].details["waiver_id"] == waiver.id
    # Back to Draft through Ate: this time the guard rejects it again.
    flow.engine.runtime.fail(c.uow_id, flow.actor, "E_RETRY", lease_id=c.lease_id)
    flow.submit(flow.take("Fixer"))  # Fixer_Out: back to Inbox
    assert flow.where(flow.first_uow) == ("PENDING", "Inbox")
    assert flow.checkout("Draft") is None
    assert flow.where(flow.first_uow) == ("FAILED", "Errors")
    assert flow.uow(flow.first_uow).uow.failure["guardian"] == "amount_ok"
    # A second waiver works like the first.
    _waive(flow, flow.first_uow, reason="once more")
    assert flow.take("Draft").uow_id == flow.first_uow
    assert [w.used_at is not None for w in _waivers(flow)] == [True, True]


def test_a_waiver_is_only_for_its_uow(flow: Flow) -> None:
    other = flow.genesis(amount=-2)
    _waive(flow, flow.first_uow)
    assert flow.take("Draft").uow_id == flow.first_uow
    assert flow.checkout("Draft") is None  # the other one has no waiver: rejected
    assert flow.where(other) == ("FAILED", "Errors")
    assert [w.uow_id for w in _waivers(flow)] == [flow.first_uow]
