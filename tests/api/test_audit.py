"""The admin audit trail: every admin and operator action is recorded with its caller,
parameters, result and request id; refusals too; reads and work are not; nothing changes
or deletes it; ``GET /admin/audit`` filters and pages it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from chameleon_workflow.cli import app as cli_app
from chameleon_workflow.domain.security import parse_key
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.api.conftest import Run, ok, problem
from tests.conftest import FakeClock, bearer, make_key
from tests.flows import fixture_text


def key_id(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return str(parsed[0])


def trail(c: TestClient, query: str = "") -> list[dict[str, Any]]:
    """Every recorded action (newest first), following the cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        sep = "&" if query else ""
        page = ok(
            c.get(f"/admin/audit?{query}{sep}limit=500" + (f"&cursor={cursor}" if cursor else ""))
        )
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def remember(c: TestClient, role_id: str, **body: Any) -> dict[str, Any]:
    return ok(
        c.post(
            f"/roles/{role_id}/memories",
            json={"key": "k", "value": 1, "reasoning": "audit test"} | body,
        ),
        201,
    )  # type: ignore[no-any-return]


# --- what is recorded -------------------------------------------------------------------------


def test_every_admin_and_operator_action_is_recorded(run: Run, admin_key: str) -> None:
    c = run.api.c
    triage = run.roles["Triage"]
    glob = remember(c, triage)["id"]
    remember(c, triage, scope="ACTOR", actor_id=run.actor)
    ok(c.post("/admin/mark-toxic", json={"memory_id": glob, "reason": "wrong"}))
    ok(c.post("/admin/unmark-toxic", json={"memory_id": glob, "reason": "fine"}))
    ok(c.post("/admin/mark-toxic/bulk", json={"memory_ids": [glob], "reason": "wrong"}))
    ok(c.post("/admin/run-zombie-protocol", json={"dry_run": True}))
    ok(c.post("/admin/run-stale-token-protocol"))
    ok(c.post("/admin/run-memory-decay", json={"dry_run": True}))
    run.genesis(amount=3)

    entries = trail(c)
    assert [e["action"] for e in reversed(entries)] == [
        "template.import", "instance.instantiate", "actor.create",
        *["actor.assign"] * (len(run.roles) - 1),
        "memory.write", "memory.write", "toxic.mark", "toxic.unmark", "toxic.mark_bulk",
        "maintenance.zombie_protocol", "maintenance.stale_token_protocol",
        "maintenance.memory_decay", "instance.genesis",
    ]  # fmt: skip
    for e in entries:
        assert (e["key_id"], e["key_name"], e["scope"], e["outcome"]) == (
            key_id(admin_key),
            "admin key",
            "admin",
            "ok",
        )
        assert e["result"]["status"] in (200, 201) and e["request_id"]
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)


def test_a_record_names_parameters_result_and_request_id(run: Run, admin_key: str) -> None:
    c = run.api.c
    memory_id = remember(c, run.roles["Triage"])["id"]
    answer = c.post(
        "/admin/mark-toxic",
        json={"memory_id": memory_id, "reason": "misleading", "by": "somebody else"},
        headers={"X-Request-ID": "audit-probe-1"},
    )
    ok(answer)
    (entry,) = trail(c, "action=toxic.mark")
    assert entry["request_id"] == "audit-probe-1" == answer.headers["x-request-id"]
    # The client's "by" is kept as it was claimed; the change is authored by the key.
    assert entry["parameters"] == {
        "memory_id": memory_id, "reason": "misleading", "by": "somebody else"
    }  # fmt: skip
    assert entry["result"]["status"] == 200
    assert entry["result"]["summary"]["changed"] is True
    row = ok(c.get(f"/memories/{memory_id}"))
    assert row["toxic_by"] == f"admin key (key {key_id(admin_key)})"

    (imported,) = trail(c, "action=template.import")
    assert imported["parameters"]["body"]["bytes"] == len(fixture_text("routing_workflow.yml"))
    assert len(imported["parameters"]["body"]["sha256"]) == 64
    assert imported["result"]["summary"]["template_id"] == run.template_id
    assert imported["result"]["summary"]["warnings"] == {"items": 0}

    (written,) = trail(c, "action=memory.write")
    assert written["parameters"] == {
        "role_id": run.roles["Triage"],
        "key": "k",
        "value": 1,
        "reasoning": "audit test",
    }


def test_refused_attempts_by_a_known_key_are_recorded(
    run: Run, settings: Settings, anonymous: TestClient
) -> None:
    c = run.api.c
    viewer = make_key(settings, "viewer")
    operator = make_key(settings, "operator")
    as_viewer = bearer(viewer)
    as_operator = bearer(operator)
    problem(anonymous.post("/admin/run-zombie-protocol", headers=as_viewer), 403, "operator")
    problem(
        anonymous.post("/actors", json={"name": "x", "type": "HUMAN"}, headers=as_operator), 403
    )
    problem(anonymous.post("/admin/run-zombie-protocol", json={"timeout_seconds": -1},
                           headers=as_operator), 422)  # fmt: skip
    missing = str(uuid.uuid4())
    problem(anonymous.post("/admin/mark-toxic", json={"memory_id": missing, "reason": "r"},
                           headers=as_operator), 404)  # fmt: skip
    # Unauthenticated requests name no one: they are not recorded (the metrics count them).
    problem(anonymous.post("/admin/run-zombie-protocol"), 401)
    problem(anonymous.post("/admin/run-zombie-protocol", headers=bearer("chm_nope")), 401)

    refused = [e for e in trail(c) if e["outcome"] == "refused"]
    assert [(e["action"], e["key_id"], e["result"]["status"], e["result"]["error"])
            for e in reversed(refused)] == [
        ("maintenance.zombie_protocol", key_id(viewer), 403, "Forbidden"),
        ("actor.create", key_id(operator), 403, "Forbidden"),
        ("maintenance.zombie_protocol", key_id(operator), 422, "ValidationError"),
        ("toxic.mark", key_id(operator), 404, "UnknownMemory"),
    ]  # fmt: skip
    assert "scope" in refused[-1]["result"]["message"]
    assert refused[0]["parameters"] == {"memory_id": missing, "reason": "r"}
    assert refused[-1]["scope"] == "viewer"


def test_reads_and_work_are_not_recorded(run: Run) -> None:
    before = trail(run.api.c)
    lease = run.take("Triage")
    ok(run.api.submit(lease, run.actor, route="fast"))
    run.api.c.get("/instances")
    run.api.c.get(f"/roles/{run.roles['Triage']}/memories")
    run.api.c.get("/admin/zombies")
    assert trail(run.api.c) == before


def test_a_large_or_odd_body_is_recorded_bounded(run: Run) -> None:
    c = run.api.c
    long_value = "x" * 5000
    remember(c, run.roles["Triage"], value={"text": long_value})
    (entry,) = trail(c, "action=memory.write")
    text = entry["parameters"]["value"]["text"]
    assert text.startswith("x" * 1000) and text.endswith("(4000 more characters)")


# --- append-only ------------------------------------------------------------------------------


def test_no_endpoint_changes_or_deletes_the_trail(client: TestClient) -> None:
    paths = ok(client.get("/openapi.json"))["paths"]
    assert {p: set(ops) for p, ops in paths.items() if "audit" in p} == {"/admin/audit": {"get"}}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/admin/audit").status_code == 405


# --- the listing ------------------------------------------------------------------------------


@pytest.fixture
def recorded(engine: Engine, clock: FakeClock) -> list[int]:
    """Seven actions a minute apart by two callers (ids oldest first)."""
    ids = []
    for i in range(7):
        who = "cli:alice" if i % 2 else "cli:bob"
        action = "key.create" if i < 4 else "key.revoke"
        ids.append(engine.audit.record(action, by=who, parameters={"i": i}).id)
        clock.advance(60)
    return ids


def test_the_listing_filters_by_action_key_and_time(
    client: TestClient, recorded: list[int], clock: FakeClock, settings: Settings
) -> None:
    def ids(query: str) -> list[int]:
        return [e["id"] for e in trail(client, query)]

    assert ids("") == recorded[::-1]
    assert ids("action=key.revoke") == recorded[4:][::-1]
    assert ids("action=nothing") == []
    start = clock.now - timedelta(seconds=60 * 7)  # the time of the first record
    frm = (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    to = (start + timedelta(seconds=180)).isoformat().replace("+00:00", "%2B00:00")
    assert ids(f"from={frm}&to={to}") == recorded[1:3][::-1]
    assert ids(f"action=key.create&from={frm}") == recorded[1:4][::-1]

    viewer = make_key(settings, "viewer")
    as_viewer = TestClient(client.app, headers=bearer(viewer))
    ok(as_viewer.get("/admin/audit"))  # READ right: a viewer may look
    assert ids(f"key_id={key_id(viewer)}") == []
    problem(as_viewer.post("/admin/run-stale-token-protocol"), 403)
    assert [e["action"] for e in trail(client, f"key_id={key_id(viewer)}")] == [
        "maintenance.stale_token_protocol"
    ]


def test_pages_are_stable_while_rows_are_added(
    client: TestClient, recorded: list[int], engine: Engine
) -> None:
    first = ok(client.get("/admin/audit?limit=3"))
    assert [e["id"] for e in first["items"]] == recorded[-3:][::-1]
    newer = engine.audit.record("key.create", by="cli:carol").id  # arrives while paging
    second = ok(client.get(f"/admin/audit?limit=3&cursor={first['next_cursor']}"))
    third = ok(client.get(f"/admin/audit?limit=3&cursor={second['next_cursor']}"))
    assert [e["id"] for e in second["items"]] == recorded[1:4][::-1]
    assert [e["id"] for e in third["items"]] == recorded[:1] and third["next_cursor"] is None
    assert ok(client.get("/admin/audit?limit=1"))["items"][0]["id"] == newer


@pytest.mark.parametrize(
    "query, words",
    [
        ("limit=0", ["limit"]),
        ("limit=501", ["limit"]),
        ("limit=x", ["limit"]),
        ("cursor=not-a-cursor", ["cursor", "issued"]),
        ("cursor=WyJhdWRpdCIsIjIwMjYtMDEtMDFUMDA6MDA6MDAiLDFd", ["cursor"]),  # naive time
        ("cursor=WyJ1b3ciLCIyMDI2LTAxLTAxVDAwOjAwOjAwWiIsMV0", ["cursor"]),  # another kind
        ("from=2026-01-01T00:00:00", ["from"]),  # no time zone
        ("to=yesterday", ["to"]),
        ("key_id=12", ["key_id"]),
    ],
)
def test_bad_listing_queries_are_422(client: TestClient, query: str, words: list[str]) -> None:
    problem(client.get(f"/admin/audit?{query}"), 422, *words)


# --- key changes from the command line ------------------------------------------------------


def test_cli_key_changes_are_recorded(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAMELEON_DATABASE_URL", db_url)
    runner = CliRunner()
    made = runner.invoke(cli_app, ["keys", "create", "--scope", "viewer", "--name", "dash"])
    assert made.exit_code == 0, made.output
    new_id = key_id(made.stdout.strip())
    gone = runner.invoke(cli_app, ["keys", "revoke", new_id])
    assert gone.exit_code == 0, gone.output
    bad = runner.invoke(cli_app, ["keys", "create", "--scope", "root"])
    assert bad.exit_code == 2

    entries = trail(client)[:3][::-1]
    assert [(e["action"], e["outcome"], e["scope"], e["key_id"]) for e in entries] == [
        ("key.create", "ok", "cli", None),
        ("key.revoke", "ok", "cli", None),
        ("key.create", "refused", "cli", None),
    ]
    assert all(e["key_name"].startswith("cli") for e in entries)
    assert entries[0]["result"]["summary"]["key_id"] == new_id
    assert entries[0]["parameters"]["name"] == "dash"
    assert entries[1]["parameters"] == {"key_id": new_id}
    assert entries[2]["result"]["error"] == "InvalidInput"
    assert "root" in entries[2]["result"]["message"]
