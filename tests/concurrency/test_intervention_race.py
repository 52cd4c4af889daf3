"""Approve and reject racing on one request: exactly one wins (on PostgreSQL, by row locks)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from chameleon_workflow.domain.enums import InterventionType
from chameleon_workflow.domain.errors import InvalidState
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.interventions import Decision
from tests.flows import Flow, fixture_text

RACES = 8


@pytest.fixture
def flow(engine: Engine) -> Flow:
    # PostgreSQL: row locks (the UOW, then its request); SQLite: one writer at a time.
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _race(flow: Flow, request_id: uuid.UUID, uow_id: uuid.UUID) -> dict[str, Any]:
    svc = flow.engine.interventions
    barrier = threading.Barrier(3)
    results: dict[str, Any] = {}

    def act(name: str, call: Any) -> None:
        barrier.wait()
        try:
            results[name] = call()
        except BaseException as exc:  # noqa: BLE001 - inspected below
            results[name] = exc

    calls = {
        "approve": lambda: svc.answer(request_id, Decision.APPROVE, "yes", by="pilot A"),
        "reject": lambda: svc.answer(request_id, Decision.REJECT, "no", by="pilot B"),
        "cancel": lambda: svc.answer_uow(uow_id, Decision.REJECT, "stop", by="pilot C"),
    }
    threads = [threading.Thread(target=act, args=(n, c)) for n, c in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_approve_and_reject_racing_on_one_request_exactly_one_wins(flow: Flow) -> None:
    svc = flow.engine.interventions
    winners = set()
    for i in range(RACES):
        c = flow.take("Triage")
        made = svc.request(
            c.uow_id, flow.actor, type=InterventionType.APPROVAL, title=f"race {i}",
            lease_id=c.lease_id,
        )  # fmt: skip
        results = _race(flow, made.id, c.uow_id)
        won = [n for n, r in results.items() if not isinstance(r, BaseException)]
        lost = [r for r in results.values() if isinstance(r, BaseException)]
        assert len(won) == 1, results
        assert len(lost) == 2 and all(isinstance(e, InvalidState) for e in lost), results
        (winner,) = won
        final = svc.get(made.id)
        expected = "approved" if winner == "approve" else "rejected"
        assert final.status == expected
        # Each loser was told the status the winner left (or that the UOW moved on).
        for e in lost:
            assert expected in e.message or "has no pending" in e.message, e.message
        status = flow.where(c.uow_id)[0]
        assert status == ("PENDING" if winner == "approve" else "FAILED")
        resolved = flow.scalar(
            "SELECT count(*) FROM pilot_events WHERE kind = 'intervention.resolved' "
            "AND intervention_id = :i",
            i=made.id.hex,
        )
        answers = [
            t
            for t in flow.engine.instances.history(c.uow_id).transitions
            if t.event in ("pilot_approved", "pilot_rejected")
            and (t.details or {}).get("intervention_id") == str(made.id)
        ]
        assert resolved == 1 and len(answers) == 1
        winners.add(winner)
        flow.genesis(amount=10)
    assert winners  # who wins is up to the scheduler; every race had exactly one
