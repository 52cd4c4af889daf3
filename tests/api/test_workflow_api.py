"""The runtime paths (instantiate, genesis, checkout, heartbeat, submit, failure) over HTTP.

Unhappy paths first; each refused request must also leave what a client can see unchanged.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.settings import Settings
from tests.api.conftest import Api, Run, items, ok, problem, unknown
from tests.flows import fixture_text

# --- instantiate ----------------------------------------------------------------------------------


@pytest.fixture
def template_id(api: Api) -> str:
    return api.import_template(fixture_text("routing_workflow.yml"))["template_id"]  # type: ignore[no-any-return]


BAD_INSTANTIATE: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing-template", {}, ["template_id", "required"]),
    ("malformed-template", {"template_id": "nope"}, ["template_id", "uuid"]),
    ("template-not-a-string", {"template_id": 7}, ["template_id"]),
    ("context-list", {"initial_context": [1, 2]}, ["initial_context", "dictionary"]),
    ("context-string", {"initial_context": "x"}, ["initial_context", "dictionary"]),
    ("context-number", {"initial_context": 5}, ["initial_context", "dictionary"]),
    ("context-null", {"initial_context": None}, ["initial_context", "dictionary"]),
    ("blank-key", {"initial_context": {" ": 1}}, ["initial_context", "non-empty"]),
    ("long-key", {"initial_context": {"k" * 201: 1}}, ["at most 200"]),
    ("nul-value", {"initial_context": {"x": "a\u0000"}}, ["initial_context.x", "NUL"]),
    ("too-deep", {"initial_context": json.loads('{"a":' * 70 + "1" + "}" * 70)}, ["nested"]),
    ("empty-name", {"instance_name": ""}, ["instance_name"]),
    ("name-not-a-string", {"instance_name": 3}, ["instance_name"]),
    ("unknown-field", {"initial_contxt": {}}, ["initial_contxt", "extra"]),
]


def test_instantiate_rejects_bad_bodies(
    client: TestClient, template_id: str, subtests: Any
) -> None:
    for case, body, words in BAD_INSTANTIATE:
        with subtests.test(case=case):
            sent = {"template_id": template_id} | body
            if case == "missing-template":
                sent = body
            problem(client.post("/workflow/instantiate", json=sent), 422, *words)
    assert items(client.get("/instances")) == []


def test_instantiate_unknown_template_is_404(client: TestClient) -> None:
    missing = unknown()
    found = problem(
        client.post("/workflow/instantiate", json={"template_id": missing}), 404, missing
    )
    assert found["error"] == "UnknownTemplate"
    assert items(client.get("/instances")) == []


def test_instantiate_returns_the_section_7_shape(api: Api, template_id: str) -> None:
    body = {
        "template_id": template_id,
        "initial_context": {"amount": 10},
        "instance_name": "march invoices",
        "instance_description": "a test run",
    }
    made = ok(api.c.post("/workflow/instantiate", json=body))
    assert {"workflow_id", "uow_id", "message"} <= set(made)
    assert made["instance_id"] == made["workflow_id"]
    assert (made["status"], made["interaction"]) == ("PENDING", "Inbox")
    assert made["uow_id"] in made["message"]
    instance = ok(api.c.get(f"/instances/{made['workflow_id']}"))
    assert (instance["name"], instance["description"]) == ("march invoices", "a test run")
    uow = api.uow(made["uow_id"])
    assert (uow["status"], uow["interaction"], uow["attributes"]) == (
        "PENDING",
        "Inbox",
        {"amount": 10},
    )


# --- genesis --------------------------------------------------------------------------------------


def _depths(client: TestClient, instance_id: str) -> dict[str, dict[str, int]]:
    described = ok(client.get(f"/instances/{instance_id}"))
    return {x["name"]: x["depth"] for x in described["interactions"]}


def test_genesis_refusals(run: Run) -> None:
    c = run.api.c
    before = _depths(c, run.instance_id)
    problem(c.post(f"/instances/{unknown()}/genesis", json={}), 404, "instance")
    problem(c.post("/instances/not-a-uuid/genesis", json={}), 422, "instance_id")
    for bad in ([1], "x", 3, None):
        path = f"/instances/{run.instance_id}/genesis"
        problem(c.post(path, json={"initial_context": bad}), 422, "initial_context")
    problem(c.post(f"/instances/{run.instance_id}/genesis", json={"context": {}}), 422, "extra")
    assert _depths(c, run.instance_id) == before


def test_genesis_creates_a_pending_uow_in_alpha_outbound(run: Run) -> None:
    created = ok(
        run.api.c.post(f"/instances/{run.instance_id}/genesis", json={"initial_context": {"a": 1}}),
        201,
    )
    assert set(created) == {"uow_id", "status", "interaction"}
    assert (created["status"], created["interaction"]) == ("PENDING", "Inbox")
    assert _depths(run.api.c, run.instance_id)["Inbox"] == {"PENDING": 2}
    # the body is optional: an empty context is a valid genesis
    ok(run.api.c.post(f"/instances/{run.instance_id}/genesis", json={}), 201)


# --- checkout -------------------------------------------------------------------------------------


def test_checkout_rejects_bad_bodies(run: Run) -> None:
    actor, role = run.actor, run.roles["Triage"]
    before = run.api.state(run.uow_id)
    for body, words in [
        ({}, ["actor_id", "role_id", "required"]),
        ({"actor_id": "x", "role_id": role}, ["actor_id", "uuid"]),
        ({"actor_id": actor, "role_id": 12}, ["role_id"]),
        ({"actor_id": actor}, ["role_id", "required"]),
        ({"actor_id": actor, "role_id": role, "lease": 1}, ["lease", "extra"]),
    ]:
        problem(run.api.c.post("/workflow/checkout", json=body), 422, *words)
    assert run.api.state(run.uow_id) == before


def test_checkout_refusals_name_the_problem_and_take_nothing(run: Run) -> None:
    before = run.api.state(run.uow_id)
    ghost = unknown()
    found = problem(
        run.api.checkout(ghost, run.roles["Triage"]),
        404,
        ghost,
        "POST /actors",
        "POST /actors/{id}/assignments",
    )
    assert found["error"] == "UnknownActor"
    missing_role = unknown()
    found = problem(run.api.checkout(run.actor, missing_role), 404, missing_role)
    assert found["error"] == "UnknownRole"
    stranger = run.api.actor("stranger")
    found = problem(run.api.checkout(stranger, run.roles["Triage"]), 403, "not assigned")
    assert found["error"] == "NotAssigned"
    assert found["details"] == {"actor_id": stranger, "role_id": run.roles["Triage"]}
    found = problem(run.checkout("Origin"), 409, "ALPHA")
    assert found["error"] == "InvalidState"
    assert run.api.state(run.uow_id) == before


def test_checkout_with_no_work_is_204_with_an_empty_body(run: Run) -> None:
    empty = run.checkout("Big")
    assert empty.status_code == 204
    assert empty.content == b""


def test_checkout_shape(run: Run) -> None:
    lease = run.take("Triage")
    assert {"uow_id", "lease_id", "attributes", "context", "injected"} <= set(lease)
    assert lease["uow_id"] == run.uow_id
    uuid.UUID(lease["lease_id"])
    assert lease["attributes"] == {"amount": 10}
    assert (lease["context"], lease["injected"]) == ({}, [])
    assert (lease["role"], lease["interaction"], lease["previous_status"]) == (
        "Triage",
        "Inbox",
        "PENDING",
    )
    assert (lease["instance_id"], lease["parent_id"], lease["failure"]) == (
        run.instance_id,
        None,
        None,
    )
    uow = run.api.uow(run.uow_id)
    assert (uow["status"], uow["lease_id"], uow["lease_holder_id"]) == (
        "ACTIVE",
        lease["lease_id"],
        run.actor,
    )
    assert run.checkout("Triage").status_code == 204  # two actors never hold one UOW


def test_gate_rejected_work_is_skipped_and_moved_to_ate(run: Run) -> None:
    rejected = run.genesis(amount=-1)
    assert run.take("Triage")["uow_id"] == run.uow_id
    assert run.checkout("Triage").status_code == 204
    uow = run.api.uow(rejected)
    assert (uow["status"], uow["interaction"]) == ("FAILED", "Errors")
    assert uow["failure"]["kind"] == "gate_rejection" and "amount" in uow["failure"]["reason"]


# --- heartbeat ------------------------------------------------------------------------------------


def test_heartbeat_refusals(run: Run) -> None:
    c = run.api.c
    lease = run.take("Triage")
    path = f"/workflow/uow/{run.uow_id}/heartbeat"
    before = run.api.state(run.uow_id)
    problem(c.post("/workflow/uow/nope/heartbeat", json={"actor_id": run.actor}), 422, "uow_id")
    problem(c.post(path, json={}), 422, "actor_id", "required")
    problem(c.post(path, json={"actor_id": run.actor, "lease": "x"}), 422, "extra")
    problem(c.post(path, json={"actor_id": run.actor, "lease_id": "x"}), 422, "lease_id")
    ghost = unknown()
    found = problem(c.post(f"/workflow/uow/{ghost}/heartbeat", json={"actor_id": run.actor}), 404)
    assert found["error"] == "UnknownUow" and ghost in found["message"]
    other = run.api.actor("other", [run.roles["Triage"]])
    found = problem(c.post(path, json={"actor_id": other}), 409, "does not hold")
    assert found["error"] == "LeaseLost"
    stale = {"actor_id": run.actor, "lease_id": unknown()}
    problem(c.post(path, json=stale), 409, "does not hold")
    assert run.api.state(run.uow_id) == before
    ok(run.api.submit(lease, run.actor, amount=10))
    after_submit = run.api.state(run.uow_id)
    found = problem(
        c.post(path, json={"actor_id": run.actor, "lease_id": lease["lease_id"]}), 409, "PENDING"
    )
    assert found["details"]["status"] == "PENDING"
    assert run.api.state(run.uow_id) == after_submit


def test_heartbeat_shape(run: Run) -> None:
    lease = run.take("Triage")
    beat = ok(
        run.api.c.post(
            f"/workflow/uow/{run.uow_id}/heartbeat",
            json={"actor_id": run.actor, "lease_id": lease["lease_id"]},
        )
    )
    assert set(beat) == {"success", "message", "timestamp"}
    assert beat["success"] is True and beat["message"]
    at = datetime.fromisoformat(beat["timestamp"])
    assert at.tzinfo is not None
    assert datetime.fromisoformat(run.api.uow(run.uow_id)["last_heartbeat"]) == at
    # lease_id is optional: the lease holder alone may beat without it
    ok(run.api.c.post(f"/workflow/uow/{run.uow_id}/heartbeat", json={"actor_id": run.actor}))


# --- submit ---------------------------------------------------------------------------------------


def test_submit_rejects_bad_bodies_and_changes_nothing(run: Run) -> None:
    c = run.api.c
    lease = run.take("Triage")
    base = {"uow_id": run.uow_id, "actor_id": run.actor, "lease_id": lease["lease_id"]}
    before = run.api.state(run.uow_id)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["uow_id", "actor_id", "required"]),
        ({"actor_id": run.actor}, ["uow_id", "required"]),
        (base | {"uow_id": "123"}, ["uow_id", "uuid"]),
        (base | {"actor_id": None}, ["actor_id"]),
        (base | {"lease_id": "stale"}, ["lease_id", "uuid"]),
        (base | {"result_attributes": [1]}, ["result_attributes", "dictionary"]),
        (base | {"result_attributes": "done"}, ["result_attributes", "dictionary"]),
        (base | {"result_attributes": 1}, ["result_attributes", "dictionary"]),
        (base | {"result_attributes": None}, ["result_attributes", "dictionary"]),
        (base | {"result_attributes": {"": 1}}, ["result_attributes", "non-empty"]),
        (base | {"result_attributes": {"x": float("inf")}}, ["NaN and Infinity"]),
        (base | {"reasoning": 5}, ["reasoning"]),
        (base | {"children": {"a": 1}}, ["children"]),
        (base | {"children": [1]}, ["children"]),
        (base | {"result": {}}, ["result", "extra"]),
        (base | {"result_attributes": {"_learned_rule": "x"}}, ["_learned_rule"]),
        (base | {"result_attributes": {"_learned_rule": {"key": " ", "value": 1}}}, ["key"]),
        (base | {"result_attributes": {"_learned_rule": {"key": "k"}}}, ["value"]),
    ]
    for body, words in cases:
        payload = json.dumps(body, allow_nan=True)
        sent = c.post(
            "/workflow/submit", content=payload, headers={"content-type": "application/json"}
        )
        problem(sent, 422, *words)
    assert run.api.state(run.uow_id) == before
    assert items(c.get(f"/roles/{run.roles['Triage']}/memories")) == []


def test_submit_lease_conflicts_are_409_and_change_nothing(run: Run) -> None:
    lease = run.take("Triage")
    other = run.api.actor("other", [run.roles["Triage"]])
    before = run.api.state(run.uow_id)
    found = problem(run.api.submit(lease, other, amount=5000), 409, other, "does not hold")
    assert found["error"] == "LeaseLost"
    stale = lease | {"lease_id": unknown()}
    problem(run.api.submit(stale, run.actor, amount=5000), 409, "does not hold")
    found = problem(
        run.api.c.post("/workflow/submit", json={"uow_id": unknown(), "actor_id": run.actor}), 404
    )
    assert found["error"] == "UnknownUow"
    assert run.api.state(run.uow_id) == before
    ok(run.api.submit(lease, run.actor, amount=10))
    after = run.api.state(run.uow_id)
    found = problem(
        run.api.submit(lease, run.actor, amount=99), 409, "already used for a different request"
    )
    assert found["details"] == {
        "uow_id": run.uow_id,
        "lease_id": lease["lease_id"],
        "used_for": "submit",
    }
    assert run.api.state(run.uow_id) == after


def test_decomposing_a_child_is_refused(run: Run) -> None:
    lease = run.take("Triage")
    body = {
        "uow_id": lease["uow_id"],
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "children": [{"amount": 1}],
    }
    out = ok(run.api.c.post("/workflow/submit", json=body))
    [child] = out["children"]
    child_lease = run.take("Small")
    assert child_lease["parent_id"] == run.uow_id
    before = run.api.state(child)
    again = body | {"uow_id": child, "lease_id": child_lease["lease_id"]}
    problem(run.api.c.post("/workflow/submit", json=again), 422, "child")
    assert run.api.state(child) == before


def test_submit_shape_and_routing(run: Run) -> None:
    lease = run.take("Triage")
    body = {
        "uow_id": run.uow_id,
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "result_attributes": {"amount": 5000, "checked": True},
        "reasoning": "large order",
    }
    out = ok(run.api.c.post("/workflow/submit", json=body))
    assert out["success"] is True and run.uow_id in out["message"]
    assert (out["uow_id"], out["status"], out["interaction"]) == (run.uow_id, "PENDING", "BigQ")
    assert "Triage_To_Big" in out["route"]
    assert (out["versions_written"], out["children"], out["learned_memory_id"]) == (2, [], None)
    uow = run.api.uow(run.uow_id)
    assert (uow["status"], uow["interaction"], uow["lease_id"]) == ("PENDING", "BigQ", None)
    assert uow["attributes"] == {"amount": 5000, "checked": True}


def test_no_matching_route_fails_into_ate_with_the_reason(run: Run) -> None:
    lease = run.take("Triage")
    out = ok(run.api.submit(lease, run.actor, amount="lots"))
    assert out["success"] is True
    assert (out["status"], out["interaction"]) == ("FAILED", "Errors")
    failure = run.api.uow(run.uow_id)["failure"]
    assert failure["kind"] == "routing_error" and failure["role"] == "Triage" and failure["reason"]


# --- failure --------------------------------------------------------------------------------------


def test_failure_rejects_bad_bodies_and_lease_conflicts(run: Run) -> None:
    c = run.api.c
    lease = run.take("Triage")
    base = {"uow_id": run.uow_id, "actor_id": run.actor, "lease_id": lease["lease_id"]}
    before = run.api.state(run.uow_id)
    for body, words in [
        (base, ["error_code", "required"]),
        (base | {"error_code": ""}, ["error_code"]),
        (base | {"error_code": "   "}, ["error_code"]),
        (base | {"error_code": "E" * 201}, ["error_code", "200"]),
        (base | {"error_code": 5}, ["error_code"]),
        (base | {"error_code": "E", "uow_id": "x"}, ["uow_id"]),
        (base | {"error_code": "E", "reason": "x"}, ["reason", "extra"]),
    ]:
        problem(c.post("/workflow/failure", json=body), 422, *words)
    other = run.api.actor("other", [run.roles["Triage"]])
    problem(c.post("/workflow/failure", json=base | {"error_code": "E", "actor_id": other}), 409)
    stale = base | {"error_code": "E", "lease_id": unknown()}
    problem(c.post("/workflow/failure", json=stale), 409, "does not hold")
    ghost = base | {"error_code": "E", "uow_id": unknown()}
    assert problem(c.post("/workflow/failure", json=ghost), 404)["error"] == "UnknownUow"
    assert run.api.state(run.uow_id) == before


def test_failure_shape_and_epsilon_sees_why(run: Run) -> None:
    lease = run.take("Triage")
    body = {
        "uow_id": run.uow_id,
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "error_code": "BAD_DATA",
        "details": {"field": "amount"},
    }
    out = ok(run.api.c.post("/workflow/failure", json=body))
    assert out["success"] is True and "FAILED" in out["message"]
    assert (out["status"], out["interaction"], out["memories_purged"]) == ("FAILED", "Errors", 0)
    assert run.checkout("Triage").status_code == 204
    fix = run.take("Fixer")
    assert (fix["uow_id"], fix["previous_status"]) == (run.uow_id, "FAILED")
    assert fix["failure"]["code"] == "BAD_DATA"
    assert fix["failure"]["details"] == {"field": "amount"}
    done = ok(run.api.submit(fix, run.actor, amount=20))
    assert (done["status"], done["interaction"]) == ("PENDING", "Inbox")
    assert run.take("Triage")["attributes"] == {"amount": 20}


def test_epsilon_giving_up_abandons(run: Run) -> None:
    lease = run.take("Triage")
    base = {"uow_id": run.uow_id, "actor_id": run.actor}
    ok(run.api.c.post("/workflow/failure", json=base | {"error_code": "E1"}))
    fix = run.take("Fixer")
    body = base | {"error_code": "GIVE_UP", "lease_id": fix["lease_id"]}
    out = ok(run.api.c.post("/workflow/failure", json=body))
    assert out["status"] == "ABANDONED" and "ABANDONED" in out["message"]
    assert lease["lease_id"] != fix["lease_id"]
    assert run.api.uow(run.uow_id)["status"] == "ABANDONED"


# --- no 500 anywhere ------------------------------------------------------------------------------

_DEEP = 5_000
_HUGE_INT = b"9" * 5_000
GARBAGE: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"x"',
    b"1",
    b"-0.0",
    b"true",
    b"{}",
    b"{",
    b"not json at all",
    b"\xff\xfe\x00",
    b"NaN",
    b"1e400",
    _HUGE_INT,
    b'{"uow_id": null}',
    b'{"uow_id": null, "actor_id": null, "role_id": null, "template_id": null}',
    b'{"actor_id": 1, "role_id": [], "initial_context": "x", "result_attributes": []}',
    b'{"initial_context": {"x": 1e400}, "result_attributes": {"x": NaN}}',
    b'{"initial_context": {"x": ' + _HUGE_INT + b"}}",
    b'{"initial_context": {"": 1}, "result_attributes": {"\\u0000": 1}}',
    b'{"name": "\\ud800", "key": "\\u0000", "value": "\\udfff", "type": "HUMAN"}',
    b'{"name": "' + b"n" * 100_000 + b'", "type": "HUMAN"}',
    b"[" * _DEEP + b"]" * _DEEP,
    b'{"a":' * _DEEP + b"1" + b"}" * _DEEP,
    b'{"initial_context": ' + b'{"a":' * 500 + b"1" + b"}" * 500 + b"}",
    b'{"result_attributes": ' + b"[" * 500 + b"]" * 500 + b"}",
    b'{"value": ' + b'{"a":' * 200 + b"1" + b"}" * 200 + b', "key": "k"}',
    b'{"children": [' + b"{}," * 2_000 + b"{}]}",
    b'{"error_code": "E", "details": ' + b"[" * 300 + b"]" * 300 + b"}",
]


def test_garbage_bodies_never_cause_a_server_error(run: Run, settings: Settings) -> None:
    c = run.api.c
    ids = {
        "uow_id": run.uow_id,
        "instance_id": run.instance_id,
        "actor_id": run.actor,
        "role_id": run.roles["Triage"],
    }
    paths = create_app(settings).openapi()["paths"]
    posts = sorted(path for path, methods in paths.items() if "post" in methods)
    assert {
        "/templates",
        "/workflow/instantiate",
        "/workflow/checkout",
        "/workflow/submit",
        "/workflow/failure",
        "/workflow/uow/{uow_id}/heartbeat",
        "/instances/{instance_id}/genesis",
        "/actors",
        "/actors/{actor_id}/assignments",
        "/roles/{role_id}/memories",
    } <= set(posts)
    before = run.api.state(run.uow_id)
    failures = []
    for template in posts:
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        path = re.sub(r"\{[^}]*\}", unknown(), path)  # ids this test does not know
        for body in GARBAGE:
            for ctype in ("application/json", "text/plain"):
                r = c.post(path, content=body, headers={"content-type": ctype})
                if r.status_code >= 500:
                    failures.append((template, ctype, body[:60], r.status_code))
                elif r.status_code >= 400:
                    problem(r, r.status_code)  # a JSON body with "error" and "message"
    assert failures == [], "\n".join(map(str, failures))
    assert run.api.state(run.uow_id) == before


def test_a_huge_zombie_timeout_is_refused_not_a_server_error(client: TestClient) -> None:
    huge = 10**30
    problem(client.post("/admin/run-zombie-protocol", json={"timeout_seconds": huge}), 422)
    problem(client.get(f"/admin/zombies?timeout_seconds={huge}"), 422)
