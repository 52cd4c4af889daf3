"""The intervention endpoints: an agent's request, the pilot's answers, the inbox, long-poll."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.engine.interventions import Decision
from chameleon_workflow.settings import Settings
from tests.api.conftest import Api, Run, ok, problem, unknown
from tests.conftest import bearer, make_key

REASON = {"reason": "looked at it"}


def ask(run: Run, lease: dict[str, Any], **body: Any) -> Any:
    payload = {"actor_id": run.actor, "lease_id": lease["lease_id"], "title": "May I?", **body}
    return run.api.c.post(f"/workflow/uow/{lease['uow_id']}/intervention", json=payload)


def parked(run: Run, **body: Any) -> dict[str, Any]:
    """A new UOW parked by its worker's request (the request's answer)."""
    run.genesis(amount=10)
    lease = run.take("Triage")
    made: dict[str, Any] = ok(ask(run, lease, **body), 201)
    return made


def status_of(api: Api, uow_id: str) -> str:
    return str(api.uow(uow_id)["status"])


# --- unhappy paths -----------------------------------------------------------------------------


def test_bad_agent_requests_are_refused_and_change_nothing(api: Api, run: Run) -> None:
    lease = run.take("Triage")
    url = f"/workflow/uow/{lease['uow_id']}/intervention"
    base = {"actor_id": run.actor, "lease_id": lease["lease_id"], "title": "t"}
    problem(api.c.post(url, json={**base, "title": "  "}), 422, "title")
    problem(api.c.post(url, json={**base, "type": "poll"}), 422, "type")
    problem(api.c.post(url, json={**base, "priority": "urgent"}), 422, "priority")
    problem(api.c.post(url, json={**base, "lease_id": unknown()}), 409, "LeaseLost")
    problem(api.c.post(f"/workflow/uow/{unknown()}/intervention", json=base), 404, "does not exist")
    assert status_of(api, lease["uow_id"]) == "ACTIVE"
    assert ok(api.c.get("/api/interventions/metrics"))["total"] == 0


def test_bad_pilot_answers_are_refused_and_change_nothing(api: Api, run: Run) -> None:
    lease = run.take("Triage")
    uow = lease["uow_id"]
    for path in ("resume", "cancel"):
        problem(api.c.post(f"/pilot/{path}/{unknown()}", json=REASON), 404, "does not exist")
        problem(api.c.post(f"/pilot/{path}/{uow}", json=REASON), 409, "ACTIVE")
        problem(api.c.post(f"/pilot/{path}/{uow}", json={"reason": "  "}), 422, "reason")
        problem(api.c.post(f"/pilot/{path}/{uow}", json={}), 422, "reason")
    problem(api.c.post(f"/pilot/clarification/{uow}", json={"text": "x"}), 409, "ACTIVE")
    problem(api.c.post(f"/pilot/clarification/{uow}", json={"text": " "}), 422, "text")
    for verb in ("approve", "reject"):
        problem(api.c.post(f"/api/interventions/{unknown()}/{verb}", json=REASON), 404)
    problem(api.c.get(f"/api/interventions/{unknown()}"), 404, "does not exist")
    problem(api.c.get(f"/api/interventions/{unknown()}?wait=61"), 422, "wait")
    made = ok(ask(run, lease), 201)
    for verb in ("approve", "reject"):
        url = f"/api/interventions/{made['id']}/{verb}"
        problem(api.c.post(url, json={"reason": ""}), 422, "reason")
    problem(api.c.post(f"/pilot/clarification/{uow}", json={"text": "x"}), 409, "approval")
    assert ok(api.c.get(f"/api/interventions/{made['id']}"))["status"] == "pending"
    assert status_of(api, uow) == "PENDING_PILOT_APPROVAL"


def test_keys_without_the_right_are_refused(
    settings: Settings, client: TestClient, run: Run
) -> None:
    made = parked(run)
    viewer = TestClient(client.app, headers=bearer(make_key(settings, "viewer")))
    problem(viewer.post(f"/pilot/resume/{made['uow_id']}", json=REASON), 403, "operator")
    problem(viewer.post(f"/api/interventions/{made['id']}/approve", json=REASON), 403)
    assert ok(viewer.get(f"/api/interventions/{made['id']}"))["status"] == "pending"
    stranger = TestClient(
        client.app, headers=bearer(make_key(settings, "actor", uuid.UUID(run.api.actor("x"))))
    )
    problem(stranger.get(f"/api/interventions/{made['id']}"), 403, "own")
    problem(stranger.get("/api/interventions/pending"), 403)


def test_an_actor_key_raises_requests_only_for_its_own_work(
    settings: Settings, client: TestClient, run: Run
) -> None:
    lease = run.take("Triage")
    own = TestClient(client.app, headers=bearer(make_key(settings, "actor", uuid.UUID(run.actor))))
    other = run.api.actor("other")
    body = {"actor_id": other, "lease_id": lease["lease_id"], "title": "t"}
    problem(own.post(f"/workflow/uow/{lease['uow_id']}/intervention", json=body), 403, "acts as")
    body["actor_id"] = run.actor
    made = ok(own.post(f"/workflow/uow/{lease['uow_id']}/intervention", json=body), 201)
    assert ok(own.get(f"/api/interventions/{made['id']}"))["status"] == "pending"


# --- an agent asks, a pilot answers ---------------------------------------------------------------


def test_an_agent_request_ends_the_lease(api: Api, run: Run) -> None:
    lease = run.take("Triage")
    made = ok(ask(run, lease, type="clarification", priority="high", description="why?"), 201)
    assert made["status"] == "pending" and made["type"] == "clarification"
    assert made["priority"] == "high" and made["source"] == "agent"
    assert made["actor_id"] == run.actor and made["uow_id"] == lease["uow_id"]
    beat = api.c.post(
        f"/workflow/uow/{lease['uow_id']}/heartbeat",
        json={"actor_id": run.actor, "lease_id": lease["lease_id"]},
    )
    problem(beat, 409, "LeaseLost", "PENDING_PILOT_APPROVAL")
    problem(api.submit(lease, run.actor, amount=1), 409, "LeaseLost")
    assert api.checkout(run.actor, run.roles["Triage"]).status_code == 204


def test_resume_cancel_and_clarify(api: Api, run: Run) -> None:
    first = parked(run)
    done = ok(api.c.post(f"/pilot/resume/{first['uow_id']}", json=REASON))
    assert done["success"] and done["uow_status"] == "PENDING"
    assert done["intervention"]["status"] == "approved"
    assert done["intervention"]["resolution"] == REASON["reason"]
    assert "key" in done["intervention"]["resolved_by"]  # the pilot's key, not a claimed name
    assert api.uow(first["uow_id"])["interaction"] == "Inbox"

    second = parked(run)
    done = ok(api.c.post(f"/pilot/cancel/{second['uow_id']}", json={"reason": "no"}))
    assert done["uow_status"] == "FAILED" and done["intervention"]["status"] == "rejected"
    detail = api.uow(second["uow_id"])
    assert detail["interaction"] == "Errors" and detail["failure"]["reason"] == "no"

    third = parked(run, type="clarification")
    done = ok(api.c.post(f"/pilot/clarification/{third['uow_id']}", json={"text": "use EUR"}))
    assert done["uow_status"] == "PENDING" and done["intervention"]["resolution"] == "use EUR"
    again = run.take("Triage")
    # Two UOWs wait in Inbox; take until the clarified one comes.
    while again["uow_id"] != third["uow_id"]:
        again = run.take("Triage")
    answers = again["attributes"]["_pilot_clarifications"]
    assert [a["text"] for a in answers] == ["use EUR"] and "key" in answers[0]["by"]
    history = ok(api.c.get(f"/uows/{third['uow_id']}/history"))
    events = [t["event"] for t in history["transitions"]]
    assert "parked_for_pilot" in events and "pilot_clarified" in events


def test_approve_and_reject_by_request(api: Api, run: Run) -> None:
    a, b = parked(run), parked(run)
    done = ok(api.c.post(f"/api/interventions/{a['id']}/approve", json=REASON))
    assert done["intervention"]["status"] == "approved" and done["uow_status"] == "PENDING"
    done = ok(api.c.post(f"/api/interventions/{b['id']}/reject", json=REASON))
    assert done["intervention"]["status"] == "rejected" and done["uow_status"] == "FAILED"
    problem(api.c.post(f"/api/interventions/{a['id']}/reject", json=REASON), 409, "approved")
    problem(api.c.post(f"/api/interventions/{b['id']}/approve", json=REASON), 409, "rejected")
    problem(api.c.post(f"/pilot/resume/{a['uow_id']}", json=REASON), 409, "PENDING")
    m = ok(api.c.get("/api/interventions/metrics"))
    assert (m["total"], m["pending"], m["approved"], m["rejected"], m["expired"]) == (2, 0, 1, 1, 0)
    assert m["by_type"] == {"approval": 2, "clarification": 0}
    assert m["by_priority"]["normal"] == 2 and m["average_resolution_seconds"] is not None


# --- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_lists_by_priority_then_age_one_page_at_a_time(api: Api, run: Run) -> None:
    order = ["low", "normal", "critical", "high", "critical", "low"]
    made = [
        parked(run, priority=p, type="clarification" if i == 1 else "approval")
        for i, p in enumerate(order)
    ]
    rank = {"critical": 0, "high": 1, "normal": 2, "low": 3}
    expected = [
        m["id"] for _, m in sorted(enumerate(made), key=lambda x: (rank[order[x[0]]], x[0]))
    ]
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = "?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = ok(api.c.get(f"/api/interventions/pending{query}"))
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 2
    only = ok(api.c.get("/api/interventions/pending?type=clarification"))["items"]
    assert [i["id"] for i in only] == [made[1]["id"]]
    there = ok(api.c.get(f"/api/interventions/pending?instance_id={run.instance_id}"))
    assert len(there["items"]) == 6
    none = ok(api.c.get(f"/api/interventions/pending?instance_id={unknown()}"))
    assert none["items"] == []
    first = ok(api.c.get("/api/interventions/pending?limit=1"))
    other_filter = f"/api/interventions/pending?type=approval&cursor={first['next_cursor']}"
    problem(api.c.get(other_filter), 422, "cursor")
    ok(api.c.post(f"/api/interventions/{expected[0]}/approve", json=REASON))
    after = ok(api.c.get("/api/interventions/pending"))["items"]
    assert [i["id"] for i in after] == expected[1:]


# --- long-poll ---------------------------------------------------------------------------------


def test_a_long_poll_answers_when_the_request_is_resolved(
    client: TestClient, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = parked(run)
    service = client.app.state.engine.interventions  # type: ignore[attr-defined]
    read = service.get
    reads: list[str] = []
    polling = threading.Event()

    def counted(request_id: uuid.UUID) -> Any:
        found = read(request_id)
        reads.append(found.status)
        polling.set()  # the poll has read the request at least once
        return found

    monkeypatch.setattr(service, "get", counted)

    def resolve() -> None:
        polling.wait()
        service.answer(uuid.UUID(made["id"]), Decision.APPROVE, "ok", by="another pilot")

    t = threading.Thread(target=resolve)
    t.start()
    got = ok(client.get(f"/api/interventions/{made['id']}?wait=60"))
    t.join()
    # The poll read the pending request, then the resolved one, and answered that: it
    # stopped polling once the request changed, long before 60 s of reads (every 0.5 s).
    assert got["status"] == "approved" and got["resolved_by"] == "another pilot"
    assert reads[0] == "pending" and reads[-1] == "approved"
    assert reads.count("approved") == 1 and len(reads) < 100


def test_a_long_poll_answers_the_pending_request_when_the_wait_is_over(
    client: TestClient, run: Run
) -> None:
    made = parked(run)
    got = ok(client.get(f"/api/interventions/{made['id']}?wait=1"))
    assert got["status"] == "pending" and got["id"] == made["id"]
    resolved = ok(client.post(f"/api/interventions/{made['id']}/reject", json=REASON))
    assert resolved["intervention"]["status"] == "rejected"
    # A resolved request is answered at once, whatever the wait.
    assert ok(client.get(f"/api/interventions/{made['id']}?wait=60"))["status"] == "rejected"


@pytest.mark.parametrize("path", ["pending", "metrics"])
def test_the_fixed_paths_are_not_request_ids(api: Api, path: str) -> None:
    assert api.c.get(f"/api/interventions/{path}").status_code == 200
    assert api.c.get("/api/interventions/not-an-id").status_code == 404
