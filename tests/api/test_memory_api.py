"""Role memory over HTTP: writes, browsing, injection at checkout and the audit of influence."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from chameleon_workflow.settings import Settings
from tests.api.conftest import Api, Run, items, ok, problem, unknown
from tests.conftest import FakeClock, bearer, make_key
from tests.flows import fixture_text


def _memories(run: Run, role: str = "Triage", query: str = "") -> list[dict[str, Any]]:
    return ok(run.api.c.get(f"/roles/{run.roles[role]}/memories{query}"))["items"]  # type: ignore[no-any-return]


# --- refused writes leave no memory ---------------------------------------------------------------


WHY = {"reasoning": "why"}  # every API write says why

BAD_WRITES: list[tuple[str, dict[str, Any], int, list[str]]] = [
    ("empty", {}, 422, ["key", "value", "required"]),
    ("no-value", WHY | {"key": "k"}, 422, ["value", "required"]),
    ("no-key", WHY | {"value": 1}, 422, ["key", "required"]),
    ("no-reasoning", {"key": "k", "value": 1}, 422, ["reasoning", "required"]),
    ("blank-reasoning", {"reasoning": " ", "key": "k", "value": 1}, 422, ["reasoning"]),
    ("big-value", WHY | {"key": "k", "value": "x" * 70_000}, 422, ["65536"]),
    ("empty-key", WHY | {"key": "", "value": 1}, 422, ["key"]),
    ("blank-key", WHY | {"key": "  ", "value": 1}, 422, ["key"]),
    ("long-key", WHY | {"key": "k" * 201, "value": 1}, 422, ["key", "200"]),
    ("key-number", WHY | {"key": 1, "value": 1}, 422, ["key"]),
    (
        "bad-scope",
        WHY | {"key": "k", "value": 1, "scope": "TEAM"},
        422,
        ["scope", "GLOBAL", "ACTOR"],
    ),
    (
        "personal-no-actor",
        WHY | {"key": "k", "value": 1, "scope": "ACTOR"},
        422,
        ["actor_id"],
    ),
    (
        "global-with-actor",
        WHY | {"key": "k", "value": 1, "actor_id": "{actor}"},
        422,
        ["GLOBAL"],
    ),
    (
        "malformed-actor",
        WHY | {"key": "k", "value": 1, "scope": "ACTOR", "actor_id": "x"},
        422,
        ["uuid"],
    ),
    (
        "unknown-actor",
        WHY | {"key": "k", "value": 1, "scope": "ACTOR", "actor_id": "{ghost}"},
        404,
        [],
    ),
    (
        "confidence-high",
        WHY | {"key": "k", "value": 1, "confidence": 1.5},
        422,
        ["confidence"],
    ),
    (
        "confidence-low",
        WHY | {"key": "k", "value": 1, "confidence": -0.1},
        422,
        ["confidence"],
    ),
    ("extra", WHY | {"key": "k", "value": 1, "toxic": True}, 422, ["toxic", "extra"]),
    (
        "nul",
        WHY | {"key": "k", "value": {"nested": "a\u0000"}},
        422,
        ["value.nested", "NUL"],
    ),
]


def test_memory_write_refusals(run: Run, subtests: Any) -> None:
    path = f"/roles/{run.roles['Triage']}/memories"
    for case, body, status, words in BAD_WRITES:
        with subtests.test(case=case):
            ids = {"{actor}": run.actor, "{ghost}": unknown()}
            filled = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
            found = problem(run.api.c.post(path, json=filled), status, *words)
            if status == 404:
                assert found["error"] == "UnknownActor" and filled["actor_id"] in found["message"]
    assert _memories(run) == []


def test_memory_write_for_unknown_malformed_or_alpha_role(run: Run) -> None:
    c = run.api.c
    missing = unknown()
    body = WHY | {"key": "k", "value": 1}
    found = problem(c.post(f"/roles/{missing}/memories", json=body), 404, missing)
    assert found["error"] == "UnknownRole"
    problem(c.post("/roles/triage/memories", json=body), 422, "role_id")
    problem(c.post(f"/roles/{run.roles['Origin']}/memories", json=body), 422, "ALPHA")
    assert _memories(run, "Origin") == []


def test_memory_reads_of_unknown_or_malformed_ids(run: Run) -> None:
    c = run.api.c
    for path, error in [
        ("/memories/{id}", "UnknownMemory"),
        ("/memories/{id}/influence", "UnknownMemory"),
        ("/uows/{id}/memory-injections", "UnknownUow"),
        ("/roles/{id}/memories", "UnknownRole"),
    ]:
        missing = unknown()
        assert problem(c.get(path.format(id=missing)), 404, missing)["error"] == error
        problem(c.get(path.format(id="not-an-id")), 422, "uuid")


def test_memory_list_rejects_bad_queries(run: Run) -> None:
    for query, word in [
        ("?scope=TEAM", "scope"),
        ("?actor_id=x", "actor_id"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?cursor=", "cursor"),
        ("?cursor=nope", "cursor"),
        ("?include_toxic=perhaps", "include_toxic"),
    ]:
        problem(run.api.c.get(f"/roles/{run.roles['Triage']}/memories{query}"), 422, word)


# --- writes, browsing and injection ---------------------------------------------------------------


def test_write_global_memory_and_new_versions(run: Run) -> None:
    path = f"/roles/{run.roles['Triage']}/memories"
    body = WHY | {"key": "tip", "value": {"check": "amount"}, "confidence": 0.5}
    first = ok(run.api.c.post(path, json=body), 201)
    assert (first["key"], first["value"], first["scope"], first["actor_id"]) == (
        "tip",
        {"check": "amount"},
        "GLOBAL",
        None,
    )
    assert (first["version"], first["confidence"], first["is_toxic"]) == (1, 0.5, False)
    assert (first["role_id"], first["instance_id"]) == (run.roles["Triage"], run.instance_id)
    second = ok(run.api.c.post(path, json=WHY | {"key": "tip", "value": "v2"}), 201)
    assert (second["id"], second["version"], second["value"]) == (first["id"], 2, "v2")
    assert ok(run.api.c.get(f"/memories/{first['id']}"))["value"] == "v2"
    assert [m["id"] for m in _memories(run)] == [first["id"]]


def test_personal_memory_overrides_global_at_checkout_and_is_audited(run: Run) -> None:
    c = run.api.c
    path = f"/roles/{run.roles['Triage']}/memories"
    shared = ok(c.post(path, json=WHY | {"key": "tone", "value": "formal"}), 201)
    other_key = ok(c.post(path, json=WHY | {"key": "limit", "value": 100}), 201)
    personal = ok(
        c.post(
            path,
            json={
                "reasoning": "why",
                "key": "tone",
                "value": "casual",
                "scope": "ACTOR",
                "actor_id": run.actor,
            },
        ),
        201,
    )
    assert personal["scope"] == "ACTOR" and personal["id"] != shared["id"]
    assert len(_memories(run)) == 3
    assert [m["id"] for m in _memories(run, query="?scope=ACTOR")] == [personal["id"]]
    assert [m["id"] for m in _memories(run, query=f"?actor_id={run.actor}")] == [personal["id"]]
    assert len(_memories(run, query="?limit=1")) == 1

    lease = run.take("Triage")
    assert lease["context"] == {"tone": "casual", "limit": 100}
    injected = {(e["memory_id"], e["version"]) for e in lease["injected"]}
    assert injected >= {(personal["id"], 1), (other_key["id"], 1)}

    [record] = items(c.get(f"/uows/{run.uow_id}/memory-injections"))
    assert (record["uow_id"], record["actor_id"], record["role_id"]) == (
        run.uow_id,
        run.actor,
        run.roles["Triage"],
    )
    assert {e["memory_id"] for e in record["entries"]} == {
        e["memory_id"] for e in lease["injected"]
    }
    [influence] = items(c.get(f"/memories/{personal['id']}/influence"))
    assert (influence["uow_id"], influence["actor_id"], influence["version"]) == (
        run.uow_id,
        run.actor,
        1,
    )
    # another actor of the role gets the global blueprint only
    stranger = run.api.actor("stranger", [run.roles["Triage"]])
    run.genesis(amount=1)
    assert run.take("Triage", stranger)["context"] == {"tone": "formal", "limit": 100}


def test_learned_rule_becomes_a_personal_memory(run: Run) -> None:
    lease = run.take("Triage")
    out = ok(run.api.submit(lease, run.actor, amount=10, _learned_rule={"key": "k", "value": 7}))
    learned = ok(run.api.c.get(f"/memories/{out['learned_memory_id']}"))
    assert (learned["scope"], learned["actor_id"], learned["key"], learned["value"]) == (
        "ACTOR",
        run.actor,
        "k",
        7,
    )
    assert learned["source_uow_id"] == run.uow_id
    assert "_learned_rule" not in run.api.uow(run.uow_id)["attributes"]


def test_browsing_does_not_touch_but_injection_does(
    clocked_client: TestClient, clock: FakeClock
) -> None:
    api = Api(clocked_client)
    template = api.import_template(fixture_text("routing_workflow.yml"))
    made = api.instantiate(template["template_id"], {"amount": 1})
    roles = api.roles(made["workflow_id"])
    worker = api.actor("worker", [roles["Triage"]])
    memory = ok(
        api.c.post(
            f"/roles/{roles['Triage']}/memories",
            json={"key": "k", "value": 1, "reasoning": "test"},
        ),
        201,
    )
    created_at = memory["last_accessed_at"]
    clock.advance(3600)  # well past the store's touch granularity
    ok(api.c.get(f"/memories/{memory['id']}"))
    items(api.c.get(f"/roles/{roles['Triage']}/memories"))
    items(api.c.get(f"/memories/{memory['id']}/influence"))
    assert ok(api.c.get(f"/memories/{memory['id']}"))["last_accessed_at"] == created_at
    api.take(worker, roles["Triage"])
    touched = ok(api.c.get(f"/memories/{memory['id']}"))["last_accessed_at"]
    assert touched == clock.now.isoformat() and touched != created_at


def test_memory_injections_of_a_uow_never_checked_out(run: Run) -> None:
    assert items(run.api.c.get(f"/uows/{run.uow_id}/memory-injections")) == []
    memory = ok(
        run.api.c.post(
            f"/roles/{run.roles['Big']}/memories",
            json={"key": "k", "value": 1, "reasoning": "test"},
        ),
        201,
    )
    assert items(run.api.c.get(f"/memories/{memory['id']}/influence")) == []


def test_an_operator_writes_the_global_blueprint_and_actors_playbooks_a_viewer_neither(
    run: Run, settings: Settings
) -> None:
    path = f"/roles/{run.roles['Triage']}/memories"
    operator = bearer(make_key(settings, "operator"))
    viewer = bearer(make_key(settings, "viewer"))
    personal = WHY | {"key": "tone", "value": "curt", "scope": "ACTOR", "actor_id": run.actor}
    problem(run.api.c.post(path, json=personal, headers=viewer), 403, "operator")
    assert _memories(run) == []
    ok(run.api.c.post(path, json=WHY | {"key": "tone", "value": "kind"}, headers=operator), 201)
    written = ok(run.api.c.post(path, json=personal, headers=operator), 201)
    assert written["written_by"].startswith("operator")  # the key's name, then its id
    assert sorted(m["scope"] for m in _memories(run)) == ["ACTOR", "GLOBAL"]
