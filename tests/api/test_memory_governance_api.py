"""Memory governance over HTTP, on both databases: who may write, read, archive, restore,
hold, release and reset (with real keys of every scope), what bad input and state conflicts
answer (and that they change nothing), the audit of every change, and versions paging."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.domain.security import parse_key
from chameleon_workflow.settings import Settings
from tests.api.conftest import Run, items, ok, problem, unknown
from tests.conftest import bearer, make_key


def as_key(run: Run, key: str) -> TestClient:
    """The same app, called with ``key``."""
    app = run.api.c.app  # type: ignore[attr-defined]
    return TestClient(app, raise_server_exceptions=False, headers=bearer(key))


def key_id(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return str(parsed[0])


def write(c: httpx.Client, role_id: str, key: str, value: Any = 1, **body: Any) -> httpx.Response:
    payload = {"key": key, "value": value, "reasoning": f"tests write {key}"} | body
    return c.post(f"/roles/{role_id}/memories", json=payload)


def remember(
    c: httpx.Client, role_id: str, key: str, value: Any = 1, **body: Any
) -> dict[str, Any]:
    return ok(write(c, role_id, key, value, **body), 201)  # type: ignore[no-any-return]


def delete(c: httpx.Client, memory_id: str, reason: str | None = "tests") -> httpx.Response:
    body = {} if reason is None else {"reason": reason}
    return c.request("DELETE", f"/memories/{memory_id}", json=body)


def act(
    c: httpx.Client, memory_id: str, action: str, reason: str | None = "tests"
) -> httpx.Response:
    body = {} if reason is None else {"reason": reason}
    return c.post(f"/memories/{memory_id}/{action}", json=body)


def reset(
    c: httpx.Client, role_id: str, actor_id: str, reason: str | None = "tests"
) -> httpx.Response:
    body = {} if reason is None else {"reason": reason}
    return c.post(f"/roles/{role_id}/actors/{actor_id}/playbook/reset", json=body)


def state(run: Run) -> dict[str, Any]:
    """Everything an admin sees of the memories of Triage and Small (live and archived),
    with every version: compared before and after a refused call."""
    c = run.api.c
    seen: dict[str, Any] = {}
    for role in ("Triage", "Small"):
        for archived in ("false", "true"):
            for m in items(c.get(f"/roles/{run.roles[role]}/memories?archived={archived}")):
                seen[m["id"]] = (m, items(c.get(f"/memories/{m['id']}/versions")))
    return seen


def trail(c: httpx.Client, query: str = "") -> list[dict[str, Any]]:
    """Every recorded admin action (newest first), following the cursor to the end."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = ok(
            c.get(f"/admin/audit?{query}&limit=500" + (f"&cursor={cursor}" if cursor else ""))
        )
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


class Cast:
    """The run's people: ``solo`` (assigned to Triage only) with an actor key, the run's
    ``worker`` (assigned everywhere) and operator and viewer keys; with a global memory,
    one of the worker's and one of solo's in Triage."""

    def __init__(self, run: Run, settings: Settings) -> None:
        self.run = run
        self.triage, self.small = run.roles["Triage"], run.roles["Small"]
        self.solo = run.api.actor("solo", [self.triage])
        self.solo_key = make_key(settings, "actor", actor_id=uuid.UUID(self.solo))
        self.operator_key = make_key(settings, "operator")
        self.viewer_key = make_key(settings, "viewer")
        self.as_solo = as_key(run, self.solo_key)
        self.as_operator = as_key(run, self.operator_key)
        self.as_viewer = as_key(run, self.viewer_key)
        admin = run.api.c
        self.shared = remember(admin, self.triage, "tone", "formal")
        self.workers = remember(
            admin, self.triage, "tone", "curt", scope="ACTOR", actor_id=run.actor
        )
        self.solos = remember(admin, self.triage, "limit", 5, scope="ACTOR", actor_id=self.solo)


@pytest.fixture
def cast(run: Run, settings: Settings) -> Cast:
    return Cast(run, settings)


# --- refusals: rights ---------------------------------------------------------------------------


def test_an_actor_key_writes_only_its_own_playbook_of_assigned_roles(cast: Cast) -> None:
    run, solo = cast.run, cast.as_solo
    before = state(run)
    found = problem(write(solo, cast.small, "k"), 403, cast.solo, cast.small, "assign")
    assert found["error"] == "NotAssigned"
    for body in (
        {"scope": "GLOBAL"},
        {"scope": "ACTOR", "actor_id": run.actor},
        {"actor_id": run.actor},
    ):
        assert (
            problem(write(solo, cast.triage, "k", **body), 403, "own playbook")["error"]
            == "Forbidden"
        )
    assert state(run) == before

    mine = ok(write(solo, cast.triage, "hint", "look twice"), 201)
    assert (mine["scope"], mine["actor_id"], mine["source_actor_id"]) == (
        "ACTOR",
        cast.solo,
        cast.solo,
    )
    assert mine["written_by"] == f"actor key (key {key_id(cast.solo_key)})"
    explicit = ok(write(solo, cast.triage, "hint", "v2", scope="ACTOR", actor_id=cast.solo), 201)
    assert (explicit["id"], explicit["version"]) == (mine["id"], 2)


def test_an_actor_key_reads_the_blueprint_and_its_own_playbook_only(cast: Cast) -> None:
    run, solo = cast.run, cast.as_solo
    mine = remember(run.api.c, cast.triage, "tone", "dry", scope="ACTOR", actor_id=cast.solo)
    listed = {m["id"] for m in items(solo.get(f"/roles/{cast.triage}/memories"))}
    assert listed == {cast.shared["id"], cast.solos["id"], mine["id"]}
    assert cast.workers["id"] not in listed
    personal = {m["id"] for m in items(solo.get(f"/roles/{cast.triage}/memories?scope=ACTOR"))}
    assert personal == {cast.solos["id"], mine["id"]}
    problem(solo.get(f"/roles/{cast.triage}/memories?actor_id={run.actor}"), 403)
    assert problem(solo.get(f"/roles/{cast.small}/memories"), 403)["error"] == "NotAssigned"
    for path in ("", "/versions"):
        ok(solo.get(f"/memories/{cast.shared['id']}{path}"))
        ok(solo.get(f"/memories/{cast.solos['id']}{path}"))
        problem(solo.get(f"/memories/{cast.workers['id']}{path}"), 403, "own")


def test_an_actor_key_archives_its_own_entries_and_nothing_else(cast: Cast) -> None:
    run, solo = cast.run, cast.as_solo
    before = state(run)
    for other in (cast.workers, cast.shared):
        problem(delete(solo, other["id"]), 403, "own")
    problem(delete(solo, unknown()), 404)
    assert state(run) == before

    done = ok(delete(solo, cast.solos["id"], "no longer true"))
    assert (done["archived"], done["archive_reason"]) == (True, "no longer true")
    assert done["archived_by"].endswith(f"(key {key_id(cast.solo_key)})")
    ok(delete(run.api.c, cast.workers["id"]))
    archived = items(solo.get(f"/roles/{cast.triage}/memories?archived=true"))
    assert [m["id"] for m in archived] == [cast.solos["id"]]  # never another actor's
    before = state(run)
    for action in ("restore", "hold", "release"):
        problem(act(solo, cast.solos["id"], action), 403, "operator")
    problem(reset(solo, cast.triage, cast.solo), 403, "operator")
    assert state(run) == before


def test_an_actor_key_may_not_archive_its_entry_of_a_role_it_is_not_assigned_to(
    cast: Cast,
) -> None:
    run = cast.run
    elsewhere = remember(run.api.c, cast.small, "k", scope="ACTOR", actor_id=cast.solo)
    before = state(run)
    found = problem(delete(cast.as_solo, elsewhere["id"]), 403, "assign")
    assert found["error"] == "NotAssigned"
    assert state(run) == before


def test_an_actor_key_may_not_read_its_entry_of_a_role_it_is_not_assigned_to(
    cast: Cast,
) -> None:
    elsewhere = remember(cast.run.api.c, cast.small, "k", scope="ACTOR", actor_id=cast.solo)
    assert problem(cast.as_solo.get(f"/memories/{elsewhere['id']}"), 403)["error"] == "NotAssigned"


def test_an_operator_governs_and_writes_the_blueprint_and_playbooks(cast: Cast) -> None:
    run, op = cast.run, cast.as_operator
    steered = ok(write(op, cast.triage, "k", scope="ACTOR", actor_id=run.actor), 201)
    assert (steered["scope"], steered["actor_id"]) == ("ACTOR", run.actor)
    ok(write(op, cast.triage, "global", 1), 201)
    assert ok(delete(op, cast.workers["id"]))["archived"] is True
    assert ok(act(op, cast.workers["id"], "restore"))["archived"] is False
    assert ok(act(op, cast.shared["id"], "hold"))["held"] is True
    assert ok(act(op, cast.shared["id"], "release"))["held"] is False
    done = ok(reset(op, cast.triage, cast.solo, "start over"))
    assert done == {
        "role_id": cast.triage,
        "actor_id": cast.solo,
        "archived": [cast.solos["id"]],
        "held": [],
    }


def test_a_viewer_reads_only(cast: Cast) -> None:
    run, viewer = cast.run, cast.as_viewer
    assert len(items(viewer.get(f"/roles/{cast.triage}/memories"))) == 3
    ok(viewer.get(f"/memories/{cast.workers['id']}/versions"))
    before = state(run)
    problem(write(viewer, cast.triage, "k"), 403, "operator")
    problem(delete(viewer, cast.shared["id"]), 403, "operator")
    for action in ("restore", "hold", "release"):
        problem(act(viewer, cast.shared["id"], action), 403, "operator")
    problem(reset(viewer, cast.triage, cast.solo), 403, "operator")
    assert state(run) == before


# --- refusals: bad input, unknown ids, state conflicts -----------------------------------------


def test_bad_input_is_422_naming_the_field(cast: Cast) -> None:
    run, c = cast.run, cast.run.api.c
    before = state(run)
    problem(
        c.post(f"/roles/{cast.triage}/memories", json={"key": "k", "value": 1}),
        422,
        "reasoning",
        "required",
    )
    problem(write(c, cast.triage, "k", reasoning="r" * 2001), 422, "reasoning", "2000")
    calls: list[Callable[[str | None], httpx.Response]] = [
        lambda r: delete(c, cast.shared["id"], r),
        lambda r: act(c, cast.shared["id"], "restore", r),
        lambda r: act(c, cast.shared["id"], "hold", r),
        lambda r: act(c, cast.shared["id"], "release", r),
        lambda r: reset(c, cast.triage, cast.solo, r),
    ]
    for call in calls:
        problem(call(None), 422, "reason", "required")
        problem(call("   "), 422, "reason")
        problem(call("r" * 2001), 422, "reason", "2000")
    problem(c.request("DELETE", f"/memories/{cast.shared['id']}"), 422, "body")
    problem(delete(c, "not-an-id"), 422, "memory_id")
    assert state(run) == before


def test_unknown_ids_are_404(cast: Cast) -> None:
    run, c = cast.run, cast.run.api.c
    before = state(run)
    ghost = unknown()
    assert problem(delete(c, ghost), 404, ghost)["error"] == "UnknownMemory"
    for action in ("restore", "hold", "release"):
        assert problem(act(c, ghost, action), 404, ghost)["error"] == "UnknownMemory"
    assert problem(c.get(f"/memories/{ghost}/versions"), 404, ghost)["error"] == "UnknownMemory"
    assert problem(reset(c, ghost, cast.solo), 404, ghost)["error"] == "UnknownRole"
    assert problem(reset(c, cast.triage, ghost), 404, ghost)["error"] == "UnknownActor"
    assert problem(write(c, ghost, "k"), 404, ghost)["error"] == "UnknownRole"
    assert (
        problem(write(c, cast.triage, "k", source_uow_id=ghost), 404, ghost)["error"]
        == "UnknownUow"
    )
    assert state(run) == before


def test_state_conflicts_are_409_and_say_why(cast: Cast) -> None:
    run, c = cast.run, cast.run.api.c
    held, live = cast.shared["id"], cast.workers["id"]
    ok(act(c, held, "hold", "litigation 42"))
    archived = ok(delete(c, cast.solos["id"], "obsolete"))["id"]
    before = state(run)
    assert (
        problem(delete(c, held), 409, "legal hold", "litigation 42", "release")["error"]
        == "MemoryHeld"
    )
    assert (
        problem(delete(c, archived), 409, "already archived", "restore")["error"] == "InvalidState"
    )
    assert problem(act(c, live, "restore"), 409, "not archived")["error"] == "InvalidState"
    assert problem(act(c, held, "hold"), 409, "already under legal hold")["error"] == "InvalidState"
    assert problem(act(c, live, "release"), 409, "not under legal hold")["error"] == "InvalidState"
    assert state(run) == before


# --- the audit of every change ------------------------------------------------------------------


def test_every_memory_change_is_in_the_admin_audit(run: Run, settings: Settings) -> None:
    c = run.api.c
    triage = run.roles["Triage"]
    worker_key = make_key(settings, "actor", actor_id=uuid.UUID(run.actor))
    operator_key = make_key(settings, "operator")
    as_worker, as_operator = as_key(run, worker_key), as_key(run, operator_key)
    mine = remember(as_worker, triage, "hint", "x")
    ok(delete(as_worker, mine["id"], "wrong"))
    ok(act(as_operator, mine["id"], "restore", "right after all"))
    ok(act(as_operator, mine["id"], "hold", "case 1"))
    ok(act(as_operator, mine["id"], "release", "case closed"))
    ok(reset(as_operator, triage, run.actor, "fresh start"))
    problem(act(as_worker, mine["id"], "hold", "mine"), 403)  # a refusal is recorded as one

    memory_actions = [
        (e["action"], e["key_id"], e["outcome"])
        for e in reversed(trail(c))
        if e["action"].startswith("memory.")
    ]
    w, o = key_id(worker_key), key_id(operator_key)
    assert memory_actions == [
        ("memory.write", w, "ok"),
        ("memory.archive", w, "ok"),
        ("memory.restore", o, "ok"),
        ("memory.hold", o, "ok"),
        ("memory.release", o, "ok"),
        ("memory.playbook_reset", o, "ok"),
        ("memory.hold", w, "refused"),
    ]
    (reset_entry,) = trail(c, "action=memory.playbook_reset")
    assert reset_entry["parameters"] == {
        "role_id": triage,
        "actor_id": run.actor,
        "reason": "fresh start",
    }
    assert reset_entry["result"]["status"] == 200
    (archived,) = trail(c, "action=memory.archive")
    assert archived["parameters"] == {"memory_id": mine["id"], "reason": "wrong"}


# --- versions -----------------------------------------------------------------------------------


def test_versions_page_oldest_first_with_provenance(run: Run, admin_key: str) -> None:
    c = run.api.c
    triage = run.roles["Triage"]
    first = remember(c, triage, "limit", 10, reasoning="a guess")
    remember(c, triage, "limit", 20, reasoning="measured", source_uow_id=run.uow_id, confidence=0.5)
    remember(c, triage, "limit", 30, reasoning="corrected")
    page = ok(c.get(f"/memories/{first['id']}/versions?limit=2"))
    assert [(v["version"], v["value"], v["reasoning"]) for v in page["items"]] == [
        (1, 10, "a guess"),
        (2, 20, "measured"),
    ]
    second = page["items"][1]
    assert (second["memory_id"], second["source_uow_id"], second["confidence"]) == (
        first["id"],
        run.uow_id,
        0.5,
    )
    assert second["written_by"] == f"admin key (key {key_id(admin_key)})"
    assert page["next_cursor"]
    rest = ok(c.get(f"/memories/{first['id']}/versions?limit=2&cursor={page['next_cursor']}"))
    assert [(v["version"], v["value"]) for v in rest["items"]] == [(3, 30)]
    assert rest["next_cursor"] is None
    problem(c.get(f"/memories/{first['id']}/versions?limit=0"), 422, "limit")
    problem(c.get(f"/memories/{first['id']}/versions?cursor=nope"), 422, "cursor")
