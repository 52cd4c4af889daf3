"""The admin endpoints through the real app, on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.domain.security import parse_key
from tests.api.conftest import Api, Run, ok, problem, start_run
from tests.conftest import FakeClock

DAY = 86_400
BAD_COUNTS: list[Any] = [0, -1, True, False, 1.5, 300.0, "300", "", [], {}, 10**30]
NOT_BOOLEANS: list[Any] = [0, 1, "true", "false", "", None, [], 1.0]


@pytest.fixture
def capi(clocked_client: TestClient) -> Api:
    return Api(clocked_client)


@pytest.fixture
def crun(capi: Api) -> Run:
    return start_run(capi)


def remember(api: Api, role_id: str, key: str = "tip", value: Any = 1) -> str:
    created = ok(
        api.c.post(
            f"/roles/{role_id}/memories", json={"key": key, "value": value, "reasoning": "test"}
        ),
        201,
    )
    return str(created["id"])


def runs(api: Api) -> list[dict[str, Any]]:
    return ok(api.c.get("/admin/maintenance-runs"))["items"]  # type: ignore[no-any-return]


# --- bad input: 422, and nothing changes ---------------------------------------------------------


def test_zombie_protocol_refuses_a_timeout_that_is_not_a_positive_integer(
    crun: Run, clock: FakeClock
) -> None:
    lease = crun.take("Triage")
    clock.advance(10_000)
    for value in BAD_COUNTS:
        response = crun.api.c.post("/admin/run-zombie-protocol", json={"timeout_seconds": value})
        problem(response, 422, "timeout_seconds")
    assert crun.api.uow(lease["uow_id"])["status"] == "ACTIVE"
    assert runs(crun.api) == []


@pytest.mark.parametrize(
    "path",
    ["/admin/run-zombie-protocol", "/admin/run-stale-token-protocol", "/admin/run-memory-decay"],
)
def test_dry_run_is_a_strict_boolean_and_nothing_runs_otherwise(
    crun: Run, clock: FakeClock, path: str
) -> None:
    lease = crun.take("Triage")
    clock.advance(10_000)
    for value in NOT_BOOLEANS:
        problem(crun.api.c.post(path, json={"dry_run": value}), 422, "dry_run")
    problem(crun.api.c.post("/admin/run-memory-decay", json={"archive": 1}), 422, "archive")
    assert crun.api.uow(lease["uow_id"])["status"] == "ACTIVE"
    assert runs(crun.api) == []


def test_null_counts_mean_the_default(crun: Run, clock: FakeClock) -> None:
    lease = crun.take("Triage")
    clock.advance(10_000)
    body = {"timeout_seconds": None, "batch_size": None, "dry_run": True}
    assert ok(crun.api.c.post("/admin/run-zombie-protocol", json=body))["candidates"] == 1
    body = {"retention_days": None, "batch_size": None, "instance_id": None}
    ok(crun.api.c.post("/admin/run-memory-decay", json=body))
    ok(crun.api.c.post("/admin/run-stale-token-protocol", json={"batch_size": None}))
    assert crun.api.uow(lease["uow_id"])["status"] == "ACTIVE"


def test_memory_decay_refuses_a_retention_that_is_not_a_positive_integer(
    crun: Run, clock: FakeClock
) -> None:
    memory_id = remember(crun.api, crun.roles["Triage"])
    clock.advance(1000 * DAY)
    for value in BAD_COUNTS:
        response = crun.api.c.post("/admin/run-memory-decay", json={"retention_days": value})
        problem(response, 422, "retention_days")
    ok(crun.api.c.get(f"/memories/{memory_id}"))
    assert runs(crun.api) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/run-zombie-protocol", {"timeout": 300}),
        ("/admin/run-zombie-protocol", {"batch_size": 0}),
        ("/admin/run-memory-decay", {"retention": 90}),
        ("/admin/run-memory-decay", {"instance_id": "not-a-uuid"}),
        ("/admin/run-memory-decay", {"dry_run": "yes please"}),
        ("/admin/run-stale-token-protocol", {"batch_size": -1}),
        ("/admin/run-stale-token-protocol", {"surprise": 1}),
    ],
)
def test_unknown_fields_and_bad_values_are_422(api: Api, path: str, body: dict[str, Any]) -> None:
    problem(api.c.post(path, json=body), 422)
    assert runs(api) == []


@pytest.mark.parametrize("path", ["/admin/run-zombie-protocol", "/admin/run-memory-decay"])
def test_a_body_that_is_not_json_is_422(api: Api, path: str) -> None:
    headers = {"content-type": "application/json"}
    problem(api.c.post(path, content=b'{"timeout_seconds": }', headers=headers), 422)
    assert runs(api) == []


def test_memory_decay_for_an_unknown_instance_is_404(api: Api) -> None:
    body = {"instance_id": str(uuid.uuid4())}
    problem(api.c.post("/admin/run-memory-decay", json=body), 404, "instance")


@pytest.mark.parametrize("path", ["/admin/mark-toxic", "/admin/unmark-toxic"])
def test_toxic_marks_refuse_malformed_ids_and_blank_reasons(run: Run, path: str) -> None:
    memory_id = remember(run.api, run.roles["Triage"])
    c = run.api.c
    problem(c.post(path, json={"memory_id": "12345", "reason": "bad"}), 422, "memory_id")
    problem(c.post(path, json={"memory_id": memory_id, "reason": "   "}), 422, "reason")
    problem(c.post(path, json={"memory_id": memory_id, "reason": ""}), 422, "reason")
    problem(c.post(path, json={"memory_id": memory_id}), 422, "reason")
    problem(c.post(path, json={"memory_id": memory_id, "reason": None}), 422, "reason")
    problem(c.post(path, json={"memory_id": memory_id, "reason": "x", "by": " "}), 422, "by")
    problem(c.post(path, json={"reason": "bad"}), 422, "memory_id")
    assert ok(c.get(f"/memories/{memory_id}"))["is_toxic"] is False


@pytest.mark.parametrize("path", ["/admin/mark-toxic", "/admin/unmark-toxic"])
def test_toxic_marks_of_an_unknown_memory_are_404(api: Api, path: str) -> None:
    missing = str(uuid.uuid4())
    problem(api.c.post(path, json={"memory_id": missing, "reason": "bad"}), 404, missing)


def test_bulk_marks_refuse_bad_lists(run: Run) -> None:
    memory_id = remember(run.api, run.roles["Triage"])
    c = run.api.c
    problem(c.post("/admin/mark-toxic/bulk", json={"memory_ids": [], "reason": "x"}), 422)
    body = {"memory_ids": [memory_id, "nope"], "reason": "x"}
    problem(c.post("/admin/mark-toxic/bulk", json=body), 422, "memory_ids")
    body = {"memory_ids": [memory_id], "reason": " "}
    problem(c.post("/admin/mark-toxic/bulk", json=body), 422, "reason")
    body = {"memory_ids": [str(uuid.uuid4()) for _ in range(1001)], "reason": "x"}
    problem(c.post("/admin/mark-toxic/bulk", json=body), 422, "memory_ids")
    assert ok(c.get(f"/memories/{memory_id}"))["is_toxic"] is False


BAD_QUERIES = ["timeout_seconds=0", "timeout_seconds=-5", "timeout_seconds=1.5",
               "timeout_seconds=abc", "timeout_seconds=", "limit=0", "limit=501",
               f"timeout_seconds={10**30}"]  # fmt: skip


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_the_zombie_listing_refuses_bad_parameters(api: Api, query: str) -> None:
    problem(api.c.get(f"/admin/zombies?{query}"), 422)


def test_the_run_history_refuses_an_unknown_job(api: Api) -> None:
    problem(api.c.get("/admin/maintenance-runs?job=coffee"), 422, "job")


# --- the shapes of SPEC §4.5 ---------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"json": {}}, {"content": b""}, {"json": None}])
def test_zombie_protocol_body_is_optional(api: Api, kwargs: dict[str, Any]) -> None:
    body = ok(api.c.post("/admin/run-zombie-protocol", **kwargs))
    assert body["success"] is True and body["zombies_reclaimed"] == 0
    assert body["message"] == "Zombie protocol completed. Reclaimed 0 zombie token(s)."
    assert runs(api)[0]["parameters"]["timeout_seconds"] == 300


def test_zombie_protocol_reclaims_and_the_late_holder_gets_409(crun: Run, clock: FakeClock) -> None:
    lease = crun.take("Triage")
    clock.advance(301)
    body = ok(crun.api.c.post("/admin/run-zombie-protocol", json={"timeout_seconds": 300}))
    assert {k: body[k] for k in ("success", "zombies_reclaimed", "message")} == {
        "success": True,
        "zombies_reclaimed": 1,
        "message": "Zombie protocol completed. Reclaimed 1 zombie token(s).",
    }
    assert body["run_id"] and body["dry_run"] is False
    problem(crun.api.submit(lease, crun.actor, amount=1), 409)
    hb = crun.api.c.post(
        f"/workflow/uow/{lease['uow_id']}/heartbeat", json={"actor_id": crun.actor}
    )
    problem(hb, 409)
    detail = crun.api.uow(lease["uow_id"])
    assert (detail["status"], detail["interaction"], detail["reclaim_count"]) == (
        "FAILED",
        "Timeouts",
        1,
    )


def test_zombies_are_listed_and_a_dry_run_changes_nothing(crun: Run, clock: FakeClock) -> None:
    lease = crun.take("Triage")
    clock.advance(120)
    assert ok(crun.api.c.get("/admin/zombies"))["count"] == 0
    listing = ok(crun.api.c.get("/admin/zombies?timeout_seconds=60"))
    assert listing["count"] == 1 and listing["items"][0]["id"] == lease["uow_id"]
    assert listing["next_cursor"] is None
    body = ok(
        crun.api.c.post("/admin/run-zombie-protocol", json={"timeout_seconds": 60, "dry_run": True})
    )
    assert body["zombies_reclaimed"] == 0 and body["candidates"] == 1 and body["dry_run"] is True
    assert body["sample"][0]["id"] == lease["uow_id"]
    assert crun.api.uow(lease["uow_id"])["status"] == "ACTIVE"


def test_memory_decay_shape(crun: Run, clock: FakeClock) -> None:
    for key in ("a", "b"):
        remember(crun.api, crun.roles["Triage"], key)
    clock.advance(91 * DAY)
    kept = remember(crun.api, crun.roles["Triage"], "fresh")
    body = ok(crun.api.c.post("/admin/run-memory-decay", json={"retention_days": 90}))
    assert {k: body[k] for k in ("success", "memories_deleted", "message")} == {
        "success": True,
        "memories_deleted": 2,
        "message": "Memory decay completed. Deleted 2 stale memory entries.",
    }
    ok(crun.api.c.get(f"/memories/{kept}"))
    body = ok(crun.api.c.post("/admin/run-memory-decay"))
    assert body["memories_deleted"] == 0


def test_memory_decay_dry_run_and_archive(crun: Run, clock: FakeClock) -> None:
    old = remember(crun.api, crun.roles["Triage"])
    clock.advance(91 * DAY)
    dry = ok(crun.api.c.post("/admin/run-memory-decay", json={"dry_run": True}))
    assert dry["memories_deleted"] == 0 and dry["candidates"] == 1 and dry["sample"] == [old]
    body = {"archive": True, "instance_id": crun.instance_id, "batch_size": 10}
    archived = ok(crun.api.c.post("/admin/run-memory-decay", json=body))
    assert archived["memories_deleted"] == 1 and archived["archived"] is True
    kept = ok(crun.api.c.get(f"/memories/{old}"))  # archived in place, restorable
    assert kept["archived"] is True and kept["archived_by"] == "engine (memory decay)"
    listed = ok(crun.api.c.get(f"/roles/{crun.roles['Triage']}/memories?archived=true"))
    assert [m["id"] for m in listed["items"]] == [old]


def test_stale_token_protocol_shape(api: Api) -> None:
    body = ok(api.c.post("/admin/run-stale-token-protocol"))
    assert body == body | {
        "success": True,
        "tokens_moved": 0,
        "message": "Stale token protocol completed. Moved 0 stale token(s) to Chronos.",
    }


def test_mark_and_unmark_toxic_shapes(run: Run, admin_key: str) -> None:
    """The author is the caller's key; a ``by`` in the body is not trusted (docs/api.md)."""
    parsed = parse_key(admin_key)
    assert parsed is not None
    author = f"admin key (key {parsed[0]})"
    memory_id = remember(run.api, run.roles["Triage"], "shortcut", "skip checks")
    c = run.api.c
    body = ok(
        c.post(
            "/admin/mark-toxic", json={"memory_id": memory_id, "reason": "Led to incorrect results"}
        )
    )
    assert {k: body[k] for k in ("success", "message")} == {
        "success": True,
        "message": f"Memory {memory_id} successfully marked as toxic.",
    }
    row = ok(c.get(f"/memories/{memory_id}"))
    assert (row["is_toxic"], row["toxic_reason"], row["toxic_by"]) == (
        True,
        "Led to incorrect results",
        author,
    )
    assert run.take("Triage")["context"] == {}
    again = ok(c.post("/admin/mark-toxic", json={"memory_id": memory_id, "reason": "again"}))
    assert again["changed"] is False
    body = ok(
        c.post("/admin/unmark-toxic", json={"memory_id": memory_id, "reason": "fine", "by": "bob"})
    )
    assert body["success"] is True and body["changed"] is True
    history = ok(c.get(f"/admin/memories/{memory_id}/toxic-history"))["items"]
    assert [(h["action"], h["by"]) for h in history] == [
        ("mark_toxic", author),
        ("unmark_toxic", author),
    ]


def test_bulk_mark_reports_a_result_per_id(run: Run) -> None:
    a = remember(run.api, run.roles["Triage"], "a")
    b = remember(run.api, run.roles["Triage"], "b")
    missing = str(uuid.uuid4())
    body = ok(
        run.api.c.post(
            "/admin/mark-toxic/bulk", json={"memory_ids": [a, missing, b], "reason": "bad"}
        )
    )
    assert body["success"] is True and body["marked"] == 2 and body["not_found"] == 1
    assert [(r["memory_id"], r["status"], r["success"]) for r in body["results"]] == [
        (a, 200, True), (missing, 404, False), (b, 200, True),
    ]  # fmt: skip


def test_the_run_history_shows_every_run(crun: Run, clock: FakeClock) -> None:
    ok(crun.api.c.post("/admin/run-zombie-protocol", json={"timeout_seconds": 60}))
    clock.advance(5)
    ok(crun.api.c.post("/admin/run-memory-decay", json={"retention_days": 30, "dry_run": True}))
    history = runs(crun.api)
    assert [h["job"] for h in history] == ["memory_decay", "zombie_sweep"]
    latest = history[0]
    assert latest["trigger"] == "admin" and latest["error"] is None
    assert latest["parameters"]["retention_days"] == 30 and latest["counts"] == {"candidates": 0}
    assert latest["started_at"] and latest["finished_at"] and latest["replica"]
    only = ok(crun.api.c.get("/admin/maintenance-runs?job=zombie_sweep&limit=5"))["items"]
    assert [h["job"] for h in only] == ["zombie_sweep"]
