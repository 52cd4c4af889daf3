"""POST /pilot/kill-switch and POST /pilot/instances/{id}/resume over HTTP, both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from chameleon_workflow.settings import Settings
from tests.api.conftest import Run, ok, problem, unknown
from tests.conftest import bearer, make_key

KILL = "/pilot/kill-switch"


def _resume(run: Run) -> str:
    return f"/pilot/instances/{run.instance_id}/resume"


def _seen(run: Run, *uow_ids: str) -> tuple[Any, ...]:
    c = run.api.c
    return (
        ok(c.get(f"/instances/{run.instance_id}")),
        [run.api.state(u) for u in uow_ids],
    )


# --- refused: nothing changes -----------------------------------------------------------------


def test_bad_bodies_are_422_and_change_nothing(run: Run) -> None:
    c = run.api.c
    before = _seen(run, run.uow_id)
    bodies = [
        {},
        {"instance_id": run.instance_id},
        {"instance_id": run.instance_id, "reason": ""},
        {"instance_id": run.instance_id, "reason": "   "},
        {"instance_id": "not-a-uuid", "reason": "stop"},
        {"instance_id": run.instance_id, "reason": "stop", "extra": 1},
    ]
    for body in bodies:
        problem(c.post(KILL, json=body), 422)
    for body in [{}, {"reason": " "}, {"reason": "go", "by": "me"}]:
        problem(c.post(_resume(run), json=body), 422)
    assert _seen(run, run.uow_id) == before


def test_an_unknown_instance_is_404(run: Run) -> None:
    nowhere = unknown()
    problem(run.api.c.post(KILL, json={"instance_id": nowhere, "reason": "x"}), 404, nowhere)
    problem(run.api.c.post(f"/pilot/instances/{nowhere}/resume", json={"reason": "x"}), 404)


def test_kill_twice_and_resume_active_are_409_naming_the_status(run: Run) -> None:
    c = run.api.c
    before = _seen(run, run.uow_id)
    body = problem(c.post(_resume(run), json={"reason": "go"}), 409, "ACTIVE", "not PAUSED")
    assert body["error"] == "InvalidState" and body["details"]["status"] == "ACTIVE"
    assert _seen(run, run.uow_id) == before
    ok(c.post(KILL, json={"instance_id": run.instance_id, "reason": "stop"}))
    paused = _seen(run, run.uow_id)
    body = problem(c.post(KILL, json={"instance_id": run.instance_id, "reason": "again"}), 409)
    assert body["error"] == "InvalidState" and body["details"]["status"] == "PAUSED"
    assert _seen(run, run.uow_id) == paused


def test_rights_kill_switch_needs_admin_resume_needs_operator(run: Run, settings: Settings) -> None:
    operator = TestClient(run.api.c.app, headers=bearer(make_key(settings, "operator")))
    body = {"instance_id": run.instance_id, "reason": "stop"}
    problem(operator.post(KILL, json=body), 403, "admin")
    ok(run.api.c.post(KILL, json=body))
    reader = TestClient(run.api.c.app, headers=bearer(make_key(settings, "viewer")))
    problem(reader.post(_resume(run), json={"reason": "go"}), 403)
    ok(operator.post(_resume(run), json={"reason": "go"}))


# --- the kill switch ------------------------------------------------------------------------


def test_kill_switch_pauses_everything_and_resume_brings_it_back(run: Run) -> None:
    c = run.api.c
    second = run.genesis(amount=20)
    held = run.take("Triage")
    beat = f"/workflow/uow/{held['uow_id']}/heartbeat"
    ok(c.post(beat, json={"actor_id": run.actor, "lease_id": held["lease_id"]}))

    out = ok(c.post(KILL, json={"instance_id": run.instance_id, "reason": "budget blown"}))
    assert out["success"] is True and out["paused_uow_count"] == 2
    assert out["status"] == "PAUSED" and "PAUSED" in out["message"]
    described = ok(c.get(f"/instances/{run.instance_id}"))
    assert described["status"] == "PAUSED" and described["pause_reason"] == "budget blown"
    assert described["paused_by"] and described["paused_at"]
    (listed,) = ok(c.get("/instances"))["items"]
    assert (listed["status"], listed["pause_reason"]) == ("PAUSED", "budget blown")
    for uow_id in (run.uow_id, second):
        assert run.api.uow(uow_id)["status"] == "PAUSED"
    history = ok(c.get(f"/uows/{held['uow_id']}/history"))["transitions"]
    assert history[-1]["event"] == "paused" and history[-1]["to_status"] == "PAUSED"

    # While paused: no work for any role, genesis refused, the ended lease is 409.
    for role in run.roles:
        if role != "Origin":
            assert run.checkout(role).status_code == 204, role
    genesis = c.post(f"/instances/{run.instance_id}/genesis", json={"initial_context": {}})
    assert problem(genesis, 409, "PAUSED")["error"] == "InstancePaused"
    refused = c.post(beat, json={"actor_id": run.actor, "lease_id": held["lease_id"]})
    body = problem(refused, 409, run.instance_id, "budget blown")
    assert body["error"] == "InstancePaused"
    submitted = run.api.submit(held, run.actor, done=True)
    assert problem(submitted, 409, run.instance_id)["error"] == "InstancePaused"
    failure = {
        "uow_id": held["uow_id"],
        "actor_id": run.actor,
        "lease_id": held["lease_id"],
        "error_code": "E",
    }
    assert problem(c.post("/workflow/failure", json=failure), 409)["error"] == "InstancePaused"

    back = ok(c.post(_resume(run), json={"reason": "budget raised"}))
    assert back["success"] is True and back["resumed_uow_count"] == 2
    assert back["status"] == "ACTIVE"
    described = ok(c.get(f"/instances/{run.instance_id}"))
    assert (described["status"], described["paused_at"], described["pause_reason"]) == (
        "ACTIVE",
        None,
        None,
    )
    # The oldest comes back first, with a new lease.
    again = run.take("Triage")
    assert again["uow_id"] == run.uow_id and again["lease_id"] != held["lease_id"]
    ok(run.api.submit(again, run.actor, done=True))


def test_both_actions_are_in_the_admin_audit(run: Run) -> None:
    c = run.api.c
    ok(c.post(KILL, json={"instance_id": run.instance_id, "reason": "stop"}))
    ok(c.post(_resume(run), json={"reason": "go"}))
    problem(c.post(_resume(run), json={"reason": "again"}), 409)
    trail = ok(c.get("/admin/audit"))["items"]
    mine = [e for e in trail if e["action"] in ("pilot.kill_switch", "pilot.instance_resume")]
    assert sorted((e["action"], e["parameters"]["reason"], e["outcome"]) for e in mine) == [
        ("pilot.instance_resume", "again", "refused"),
        ("pilot.instance_resume", "go", "ok"),
        ("pilot.kill_switch", "stop", "ok"),
    ], trail
    assert all(e["parameters"]["instance_id"] == run.instance_id for e in mine)
