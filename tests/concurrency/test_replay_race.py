"""A submit racing the zombie sweep: exactly one wins, and the retry tells which."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import LeaseLost
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import InteractionLog
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

RACES = 6
L = InteractionLog.__table__


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})


def _race(flow: Flow, clock: FakeClock) -> tuple[Any, Any]:
    """Submit and sweep at once, on a lease already past its timeout."""
    c = flow.take("Triage")
    clock.advance(301)
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def submit() -> None:
        barrier.wait()
        try:
            results["submit"] = flow.submit(c, amount=10)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            results["submit"] = exc

    def sweep() -> None:
        barrier.wait()
        results["sweep"] = flow.engine.maintenance.zombie_sweep()

    threads = [threading.Thread(target=submit), threading.Thread(target=sweep)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return c, results


def _ends(flow: Flow, uow_id: uuid.UUID) -> int:
    """How many times the lease ended: by the submit or by the reclaim."""
    ended = L.c.event.in_(("submit", "reclaim"))
    with flow.engine.db.connect() as conn:
        stmt = sa.select(sa.func.count()).where(L.c.uow_id == uow_id, ended)
        return conn.scalar(stmt) or 0


def test_a_submit_racing_a_reclaim_lands_or_is_reclaimed_never_both(
    flow: Flow, clock: FakeClock
) -> None:
    outcomes = set()
    for _ in range(RACES):
        c, results = _race(flow, clock)
        assert _ends(flow, c.uow_id) == 1
        if isinstance(results["submit"], LeaseLost):
            assert results["sweep"].counts["reclaimed"] == 1
            with pytest.raises(LeaseLost, match="reclaimed"):
                flow.submit(c, amount=10)
            outcomes.add("reclaimed")
        else:
            assert results["submit"].replayed is False
            assert results["sweep"].counts.get("reclaimed", 0) == 0
            again = flow.submit(c, amount=10)
            assert again.replayed and again.status == results["submit"].status
            outcomes.add("landed")
        flow.genesis(amount=10)
    assert outcomes  # which side wins is up to the scheduler; each race had exactly one
