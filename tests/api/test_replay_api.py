"""Retrying a submit or a failure report over HTTP: replayed, or 409 saying why."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, Run, ok, problem, start_run
from tests.conftest import FakeClock


@pytest.fixture
def crun(clocked_client: TestClient) -> Run:
    return start_run(Api(clocked_client))


def _failure(run: Run, lease: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"uow_id": lease["uow_id"], "actor_id": run.actor, "lease_id": lease["lease_id"]}
    return body | {"error_code": "BAD_DATA"} | extra


def _without_replayed(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "replayed"}


def test_a_different_body_on_a_used_lease_is_409(run: Run) -> None:
    lease = run.take("Triage")
    ok(run.api.submit(lease, run.actor, amount=10))
    after = run.api.state(run.uow_id)
    found = problem(
        run.api.submit(lease, run.actor, amount=11), 409, "already used", "different request"
    )
    assert found["error"] == "LeaseLost"
    failed = run.api.c.post("/workflow/failure", json=_failure(run, lease))
    problem(failed, 409, "different request", "a submit at")
    assert run.api.state(run.uow_id) == after


def test_a_reclaimed_lease_is_409_saying_it_was_reclaimed(crun: Run, clock: FakeClock) -> None:
    lease = crun.take("Triage")
    clock.advance(301)
    ok(crun.api.c.post("/admin/run-zombie-protocol", json={}))
    before = crun.api.state(crun.uow_id)
    found = problem(crun.api.submit(lease, crun.actor, amount=10), 409, "reclaimed", "zombie")
    assert found["details"]["ended_by"] == "reclaim"
    failed = crun.api.c.post("/workflow/failure", json=_failure(crun, lease))
    problem(failed, 409, "reclaimed")
    assert crun.api.state(crun.uow_id) == before


def test_a_lost_submit_response_is_replayed_after_the_uow_moved_on(run: Run) -> None:
    lease = run.take("Triage")
    first = ok(run.api.submit(lease, run.actor, amount=10))
    assert first["replayed"] is False
    other = run.api.actor("other", [run.roles["Small"]])
    assert run.take("Small", other)["uow_id"] == run.uow_id
    before = run.api.state(run.uow_id)
    again = ok(run.api.submit(lease, run.actor, amount=10))
    assert again["replayed"] is True
    assert _without_replayed(again) == _without_replayed(first)
    assert run.api.state(run.uow_id) == before


def test_a_lost_failure_response_is_replayed(run: Run) -> None:
    lease = run.take("Triage")
    body = _failure(run, lease, details={"field": "amount"})
    first = ok(run.api.c.post("/workflow/failure", json=body))
    assert first["replayed"] is False
    run.take("Fixer")
    before = run.api.state(run.uow_id)
    again = ok(run.api.c.post("/workflow/failure", json=body))
    assert again["replayed"] is True
    assert _without_replayed(again) == _without_replayed(first)
    other = body | {"details": {"field": "other"}}
    problem(run.api.c.post("/workflow/failure", json=other), 409, "different request")
    assert run.api.state(run.uow_id) == before


def test_landed_leases_replay_and_reclaimed_ones_are_409(crun: Run, clock: FakeClock) -> None:
    """The issue's scenario, small: nothing is done twice."""
    for amount in range(4):
        crun.genesis(amount=amount)
    leases = [crun.take("Triage") for _ in range(5)]
    for lease in leases[:2]:
        ok(crun.api.submit(lease, crun.actor, amount=10))
    clock.advance(301)
    swept = ok(crun.api.c.post("/admin/run-zombie-protocol", json={}))
    assert swept["zombies_reclaimed"] == 3
    histories = [crun.api.state(lease["uow_id"]) for lease in leases]
    statuses = []
    for lease in leases:
        response = crun.api.submit(lease, crun.actor, amount=10)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.json()["replayed"] is True
        else:
            problem(response, 409, "reclaimed")
    assert statuses == [200, 200, 409, 409, 409]
    assert [crun.api.state(lease["uow_id"]) for lease in leases] == histories
