"""Instances, actors, UOW detail and history, and the operations pages over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, Run, items, ok, problem, unknown
from tests.conftest import FakeClock
from tests.flows import fixture_text

# --- unknown and malformed ids --------------------------------------------------------------------


def test_unknown_ids_are_404_and_malformed_ids_422(client: TestClient) -> None:
    for path, error in [
        ("/instances/{id}", "UnknownInstance"),
        ("/actors/{id}", "UnknownActor"),
        ("/uows/{id}", "UnknownUow"),
        ("/uows/{id}/history", "UnknownUow"),
    ]:
        missing = unknown()
        found = problem(client.get(path.format(id=missing)), 404, missing)
        assert found["error"] == error
        assert found["details"] == {"id": missing}
        problem(client.get(path.format(id="12345")), 422, "uuid")


# --- actors and assignments -----------------------------------------------------------------------


def test_create_actor_rejects_bad_bodies(client: TestClient) -> None:
    for body, words in [
        ({}, ["name", "type", "required"]),
        ({"name": "x"}, ["type", "required"]),
        ({"name": "", "type": "HUMAN"}, ["name"]),
        ({"name": "   ", "type": "HUMAN"}, ["name"]),
        ({"name": "x" * 201, "type": "HUMAN"}, ["name", "200"]),
        ({"name": 5, "type": "HUMAN"}, ["name"]),
        ({"name": "x", "type": "ROBOT"}, ["type", "HUMAN", "AI_AGENT", "SYSTEM"]),
        ({"name": "x", "type": "HUMAN", "email": "a@b"}, ["email", "extra"]),
    ]:
        problem(client.post("/actors", json=body), 422, *words)
    assert items(client.get("/actors")) == []


def test_assignment_refusals_change_nothing(run: Run) -> None:
    c = run.api.c
    actor = run.api.actor("newcomer")
    path = f"/actors/{actor}/assignments"
    ghost, missing_role = unknown(), unknown()
    found = problem(c.post(f"/actors/{ghost}/assignments", json={"role_id": run.roles["Big"]}), 404)
    assert found["error"] == "UnknownActor" and ghost in found["message"]
    found = problem(c.post(path, json={"role_id": missing_role}), 404, missing_role)
    assert found["error"] == "UnknownRole"
    problem(c.post(path, json={"role_id": run.roles["Origin"]}), 422, "ALPHA")
    problem(c.post(path, json={"role_id": "x"}), 422, "role_id", "uuid")
    problem(c.post(path, json={}), 422, "role_id", "required")
    problem(c.post(path, json={"role_id": run.roles["Big"], "all": True}), 422, "extra")
    problem(c.post("/actors/nope/assignments", json={"role_id": run.roles["Big"]}), 422, "actor_id")
    assert ok(c.get(f"/actors/{actor}"))["role_ids"] == []


def test_actors_and_assignments(api: Api) -> None:
    made = api.instantiate(api.import_template(fixture_text("routing_workflow.yml"))["template_id"])
    roles = api.roles(made["workflow_id"])
    created = ok(api.c.post("/actors", json={"name": "Ada", "type": "HUMAN"}), 201)
    actor = created["actor_id"]
    assert set(created) == {"actor_id"}
    first = ok(api.c.post(f"/actors/{actor}/assignments", json={"role_id": roles["Big"]}), 201)
    assert first == {"actor_id": actor, "role_id": roles["Big"], "created": True}
    again = ok(api.c.post(f"/actors/{actor}/assignments", json={"role_id": roles["Big"]}), 201)
    assert again["created"] is False  # idempotent
    ok(api.c.post(f"/actors/{actor}/assignments", json={"role_id": roles["Small"]}), 201)
    detail = ok(api.c.get(f"/actors/{actor}"))
    assert (detail["id"], detail["name"], detail["actor_type"]) == (actor, "Ada", "HUMAN")
    assert sorted(detail["role_ids"]) == sorted([roles["Big"], roles["Small"]])
    datetime.fromisoformat(detail["created_at"])
    bot = api.actor("bot", kind="SYSTEM")
    listed = {a["id"]: (a["name"], a["actor_type"]) for a in items(api.c.get("/actors"))}
    assert listed == {actor: ("Ada", "HUMAN"), bot: ("bot", "SYSTEM")}


# --- instances ------------------------------------------------------------------------------------


def test_instances_list_and_detail(run: Run) -> None:
    c = run.api.c
    listed = items(c.get("/instances"))
    assert [(i["instance_id"], i["template_id"]) for i in listed] == [
        (run.instance_id, run.template_id)
    ]
    assert listed[0]["name"] == "Routing_Test v1"
    rejected = run.genesis(amount=-1)  # fails the Triage gate at checkout
    run.genesis(amount=3)
    run.take("Triage")
    run.take("Triage")
    run.genesis(amount=4)
    detail = ok(c.get(f"/instances/{run.instance_id}"))
    assert detail["instance_id"] == run.instance_id
    roles = {r["name"]: (r["role_id"], r["type"], r["strategy"]) for r in detail["roles"]}
    assert roles["Origin"] == (run.roles["Origin"], "ALPHA", None)
    assert roles["Triage"] == (run.roles["Triage"], "BETA", "HETEROGENEOUS")
    assert {r[1] for r in roles.values()} == {"ALPHA", "BETA", "OMEGA", "EPSILON", "TAU"}
    depths = {x["name"]: x["depth"] for x in detail["interactions"]}
    assert depths == {
        "Inbox": {"ACTIVE": 2, "PENDING": 1},
        "Errors": {"FAILED": 1},
        "BigQ": {},
        "SmallQ": {},
        "Done": {},
        "Timeouts": {},
    }
    assert all(x["interaction_id"] for x in detail["interactions"])
    assert (detail["ate_interaction"], detail["chronos_interaction"]) == ("Errors", "Timeouts")
    assert run.api.uow(rejected)["interaction"] == "Errors"


# --- UOW detail and history -----------------------------------------------------------------------


def test_uow_detail_follows_the_lease(
    api: Api, clocked_client: TestClient, clock: FakeClock
) -> None:
    api = Api(clocked_client)
    template = api.import_template(fixture_text("routing_workflow.yml"))
    made = api.instantiate(template["template_id"], {"amount": 1})
    roles = api.roles(made["workflow_id"])
    worker = api.actor("worker", [roles["Triage"]])
    pending = api.uow(made["uow_id"])
    assert (pending["status"], pending["interaction"], pending["role"]) == (
        "PENDING",
        "Inbox",
        "Origin",
    )
    assert (pending["lease_holder_id"], pending["heartbeat_age_seconds"]) == (None, None)
    lease = api.take(worker, roles["Triage"])
    clock.advance(42)
    active = api.uow(made["uow_id"])
    assert (active["status"], active["role"], active["lease_holder_id"]) == (
        "ACTIVE",
        "Triage",
        worker,
    )
    assert active["lease_id"] == lease["lease_id"]
    assert active["heartbeat_age_seconds"] == pytest.approx(42)
    path = f"/workflow/uow/{made['uow_id']}/heartbeat"
    ok(api.c.post(path, json={"actor_id": worker}))
    assert api.uow(made["uow_id"])["heartbeat_age_seconds"] == pytest.approx(0)


def test_uow_detail_shows_parent_and_children(run: Run) -> None:
    lease = run.take("Triage")
    body = {
        "uow_id": run.uow_id,
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "children": [{"amount": 5}, {"amount": 5000}],
    }
    small, big = ok(run.api.c.post("/workflow/submit", json=body))["children"]
    parent = run.api.uow(run.uow_id)
    assert (parent["status"], parent["interaction"]) == ("PENDING", "Done")
    assert (parent["child_count"], parent["finished_child_count"]) == (2, 0)
    assert {k["id"]: k["status"] for k in parent["children"]} == {
        small: "PENDING",
        big: "PENDING",
    }
    child = run.api.uow(big)
    assert (child["parent_id"], child["interaction"], child["attributes"]) == (
        run.uow_id,
        "BigQ",
        {"amount": 5000},
    )
    assert child["children"] == []


def test_history_lists_attribute_versions_and_transitions_in_order(run: Run) -> None:
    lease = run.take("Triage")
    body = {
        "uow_id": run.uow_id,
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "result_attributes": {"amount": 5000, "note": "big"},
        "reasoning": "customer upgraded",
    }
    ok(run.api.c.post("/workflow/submit", json=body))
    ok(run.api.submit(run.take("Big"), run.actor, amount=5000))  # unchanged: no new version
    history = ok(run.api.c.get(f"/uows/{run.uow_id}/history"))
    assert history["uow_id"] == run.uow_id
    versions = [(a["key"], a["version"], a["value"], a["reasoning"]) for a in history["attributes"]]
    assert versions == [
        ("amount", 1, 10, "genesis"),
        ("amount", 2, 5000, "customer upgraded"),
        ("note", 1, "big", "customer upgraded"),
    ]
    assert history["attributes"][0]["actor_id"] is None
    assert history["attributes"][1]["actor_id"] == run.actor
    transitions = history["transitions"]
    assert [t["event"] for t in transitions] == [
        "genesis",
        "checkout",
        "submit",
        "route",
        "checkout",
        "submit",
        "route",
    ]
    ids = [t["id"] for t in transitions]
    assert ids == sorted(ids)
    route = transitions[3]
    assert (route["from_status"], route["to_status"], route["actor_id"]) == (
        "ACTIVE",
        "PENDING",
        run.actor,
    )
    assert "Triage_To_Big" in route["details"]["route"]
    assert transitions[1]["details"] == {"lease_id": lease["lease_id"]}
    assert all(t["instance_id"] == run.instance_id and t["at"] for t in transitions)


def test_genesis_transition_has_no_origin(run: Run) -> None:
    genesis = ok(run.api.c.get(f"/uows/{run.uow_id}/history"))["transitions"][0]
    assert genesis["event"] == "genesis"
    assert (genesis["from_status"], genesis["from_interaction_id"]) == (None, None)


# --- operations -----------------------------------------------------------------------------------


def test_framework_errors_have_the_engine_error_shape(client: TestClient) -> None:
    found = problem(client.get("/no/such/path"), 404, "not found")
    assert found["error"] == "NotFound"
    assert problem(client.delete("/templates"), 405)["error"] == "MethodNotAllowed"
    deep = b"[" * 5_000 + b"]" * 5_000
    sent = client.post("/actors", content=deep, headers={"content-type": "application/json"})
    assert problem(sent, 400, "parsing the body")["error"] == "BadRequest"
    assert items(client.get("/actors")) == []


def test_health(client: TestClient, settings: Any) -> None:
    health = ok(client.get("/health"))
    assert health["status"] == "ok"
    assert health["database"] == (
        "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    )


def test_home_page_lists_templates_and_instances(run: Run) -> None:
    page = run.api.c.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!doctype html>")
    for expected in ("Routing_Test", run.template_id, run.instance_id, "Inbox", "PENDING: 1"):
        assert expected in page.text


def test_home_page_escapes_names(api: Api) -> None:
    text = fixture_text("routing_workflow.yml").replace("name: Inbox", "name: <b>Inbox</b>")
    text = text.replace("interaction: Inbox", "interaction: <b>Inbox</b>")
    api.instantiate(api.import_template(text)["template_id"])
    page = api.c.get("/").text
    assert "&lt;b&gt;Inbox&lt;/b&gt;" in page and "<b>Inbox</b>" not in page


def test_home_page_shows_no_data_without_a_key_that_may_read(
    run: Run, anonymous: TestClient
) -> None:
    for headers in ({}, {"Authorization": "Bearer chm_not_a_key"}):
        page = anonymous.get("/", headers=headers)
        assert page.status_code == 200 and "Sign in with an API key" in page.text
        for secret in ("Routing_Test", run.template_id, run.instance_id, "Inbox"):
            assert secret not in page.text


def test_openapi_declares_the_bearer_key_on_guarded_routes_only(api: Api) -> None:
    spec = api.c.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    guarded = spec["paths"]["/workflow/checkout"]["post"]
    assert guarded["security"] == [{"apiKey": []}]
    assert {"401", "403", "429"} <= set(guarded["responses"])
    assert "security" not in spec["paths"]["/ready"]["get"]
