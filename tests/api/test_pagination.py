"""Cursor pages on every list: refused cursors and limits first, then paging through a list
while rows are inserted between pages (each row present at the start is read exactly once)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.pagination import cursors_for
from chameleon_workflow.store.actors import ACTORS
from chameleon_workflow.store.pagination import Keyset
from tests.api.conftest import Api, Run, ok, problem, start_run
from tests.conftest import FakeClock
from tests.flows import fixture_text


def _lists(run: Run, memory_id: str) -> list[str]:
    """Every list endpoint, for a run with one memory."""
    return [
        "/templates",
        "/instances",
        "/actors",
        f"/roles/{run.roles['Triage']}/memories",
        f"/memories/{memory_id}/influence",
        f"/uows/{run.uow_id}/memory-injections",
        "/admin/zombies",
        "/admin/maintenance-runs",
        f"/admin/memories/{memory_id}/toxic-history",
        "/uows",
        "/admin/keys",
    ]


def _memory(run: Run, key: str | None = None) -> str:
    path = f"/roles/{run.roles['Triage']}/memories"
    body = {"key": key or uuid.uuid4().hex, "value": 1, "reasoning": "pagination test"}
    return str(ok(run.api.c.post(path, json=body), 201)["id"])


def _first_cursor(run: Run, path: str) -> str:
    """The next_cursor of a first page of one item (the list must hold two or more)."""
    cursor = ok(run.api.c.get(path, params={"limit": 1}))["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- refused: limits and cursors -------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", ""])
def test_a_limit_outside_1_to_500_is_422_on_every_list(run: Run, limit: str) -> None:
    memory_id = _memory(run)
    for path in _lists(run, memory_id):
        problem(run.api.c.get(path, params={"limit": limit}), 422, "limit")


@pytest.mark.parametrize(
    "cursor",
    ["nope", "a.b.c", ".", "abc.", "%%%.%%%", "x" * 3000, _b64(b'["2026-01-01T00:00:00+00:00"]')],
)
def test_a_malformed_cursor_is_422_on_every_list(run: Run, cursor: str) -> None:
    memory_id = _memory(run)
    for path in _lists(run, memory_id):
        problem(run.api.c.get(path, params={"cursor": cursor}), 422, "cursor")


def test_an_altered_cursor_is_422_naming_its_signature(run: Run) -> None:
    run.api.actor("second")
    body, mac = _first_cursor(run, "/actors").split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["key"][1] = uuid.UUID(int=0).hex  # move the position
    forged = f"{_b64(json.dumps(data, separators=(',', ':')).encode())}.{mac}"
    found = problem(run.api.c.get("/actors", params={"cursor": forged}), 422, "signature")
    assert found["error"] == "InvalidInput" and found["details"]["field"] == "cursor"
    # Another signature on the right body is refused just the same.
    resigned = f"{body}.{_b64(b'0' * 16)}"
    problem(run.api.c.get("/actors", params={"cursor": resigned}), 422, "signature")


def test_a_cursor_of_another_list_is_422_naming_that_list(run: Run) -> None:
    run.api.actor("second")
    actors = _first_cursor(run, "/actors")
    for path in ("/instances", "/templates", "/admin/maintenance-runs", "/admin/zombies"):
        problem(run.api.c.get(path, params={"cursor": actors}), 422, "another list (actors)")
    problem(run.api.c.get("/uows", params={"cursor": actors}), 422, "another list (actors)")
    run.genesis(amount=10)
    uows = ok(run.api.c.get("/uows", params={"limit": 1}))["next_cursor"]
    problem(run.api.c.get("/actors", params={"cursor": uows}), 422, "another list (uows)")
    # The audit trail keeps a cursor format of its own: neither is accepted by the other.
    audit = ok(run.api.c.get("/admin/audit", params={"limit": 1}))["next_cursor"]
    assert audit is not None
    problem(run.api.c.get("/actors", params={"cursor": audit}), 422, "cursor")
    problem(run.api.c.get("/admin/audit", params={"cursor": actors}), 422, "cursor")


def test_a_cursor_for_other_filters_or_another_parent_is_422(run: Run) -> None:
    for key in ("a", "b", "c"):
        _memory(run, key)
    path = f"/roles/{run.roles['Triage']}/memories"
    cursor = _first_cursor(run, path)
    other_role = f"/roles/{run.roles['Big']}/memories"
    for target, query in [
        (other_role, {}),
        (path, {"scope": "GLOBAL"}),
        (path, {"include_toxic": "false"}),
        (path, {"actor_id": run.actor}),
    ]:
        sent = run.api.c.get(target, params={"cursor": cursor, **query})
        problem(sent, 422, "other filters or another parent")
    assert ok(run.api.c.get(path, params={"cursor": cursor}))["items"]  # unchanged: accepted


def test_a_cursor_after_the_longest_key_is_accepted(run: Run) -> None:
    """Keys of 200 astral characters (the most a memory key holds) still fit a cursor."""
    for ch in ("\U0001f600", "\U0001f601"):
        _memory(run, ch * 200)
    path = f"/roles/{run.roles['Triage']}/memories"
    cursor = _first_cursor(run, path)
    assert len(cursor) <= 2048
    assert len(ok(run.api.c.get(path, params={"limit": 1, "cursor": cursor}))["items"]) == 1


def test_a_signed_cursor_whose_key_has_the_wrong_types_is_422(run: Run) -> None:
    """Defence in depth: a key is checked against the column types even when the MAC holds
    (the pepper is the test default here, so the test can sign what it likes)."""
    cursors = cursors_for(None)
    for key in [("yesterday", uuid.uuid4().hex), (1, 2), ("2026-01-01T00:00:00", "x"), ()]:
        bad = cursors.encode(Keyset(ACTORS.name, ()), (), key)
        problem(run.api.c.get("/actors", params={"cursor": bad}), 422, "malformed")


# --- paging while rows are inserted --------------------------------------------------------------


@dataclass
class Case:
    """A list: its path, how to add a row to it, and the field naming a row."""

    path: Callable[[Run, str], str]
    add: Callable[[Run, str], Any]
    field: str = "id"


def _import(run: Run, _: str) -> None:
    text = fixture_text("routing_workflow.yml").replace("Routing_Test", f"W{uuid.uuid4().hex}")
    run.api.import_template(text)


def _take(run: Run, _: str) -> None:
    run.genesis(amount=10)
    run.take("Triage")


def _toggle(run: Run, memory_id: str) -> None:
    body = {"memory_id": memory_id, "reason": "paging"}
    ok(run.api.c.post("/admin/mark-toxic", json=body))
    ok(run.api.c.post("/admin/unmark-toxic", json=body))


CASES = {
    "templates": Case(lambda r, m: "/templates", _import, "template_id"),
    "instances": Case(
        lambda r, m: "/instances", lambda r, m: r.api.instantiate(r.template_id), "instance_id"
    ),
    "actors": Case(lambda r, m: "/actors", lambda r, m: r.api.actor(uuid.uuid4().hex)),
    # Random keys: new memories land before and after the page boundary.
    "role-memories": Case(
        lambda r, m: f"/roles/{r.roles['Triage']}/memories", lambda r, m: _memory(r)
    ),
    "maintenance-runs": Case(
        lambda r, m: "/admin/maintenance-runs",
        lambda r, m: ok(r.api.c.post("/admin/run-zombie-protocol", json={"dry_run": True})),
    ),
    "toxic-history": Case(lambda r, m: f"/admin/memories/{m}/toxic-history", _toggle),
    "influence": Case(lambda r, m: f"/memories/{m}/influence", _take, "uow_id"),
    "api-keys": Case(
        lambda r, m: "/admin/keys",
        lambda r, m: ok(r.api.c.post("/admin/keys", json={"scope": "viewer"}), 201),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_paging_while_rows_are_inserted_reads_every_row_once(run: Run, name: str) -> None:
    case = CASES[name]
    memory_id = _memory(run)
    for _ in range(7):
        case.add(run, memory_id)
    path = case.path(run, memory_id)

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [str(i[case.field]) for i in items]

    before = ids(ok(run.api.c.get(path, params={"limit": 500}))["items"])
    assert len(before) >= 7
    seen: list[str] = []
    cursor: str | None = None
    inserted = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ok(run.api.c.get(path, params=params))
        assert len(page["items"]) <= 2
        seen += ids(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if inserted < 6:  # rows appended at the end must not outpace the reading
            case.add(run, memory_id)
            inserted += 1
    after = ids(ok(run.api.c.get(path, params={"limit": 500}))["items"])
    assert len(seen) == len(set(seen)), "a row was read twice"
    assert set(before) <= set(seen), "a row present from the start was skipped"
    assert seen == [i for i in after if i in set(seen)], "pages out of the list's order"


@pytest.fixture
def crun(clocked_client: TestClient) -> Run:
    return start_run(Api(clocked_client))


def test_zombies_page_longest_silent_first_while_new_ones_appear(
    crun: Run, clock: FakeClock
) -> None:
    """Five leases taken in one instant (the id breaks the tie), then a new zombie between
    every two pages: the five are each read once, in order, and ``count`` is the total."""
    crun.take("Triage")
    for _ in range(4):
        _take(crun, "")
    clock.advance(120)
    path, query = "/admin/zombies", {"timeout_seconds": 60}
    first = ok(crun.api.c.get(path, params=query | {"limit": 500}))
    before = [z["id"] for z in first["items"]]
    assert first["count"] == len(before) == 5
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = ok(
            crun.api.c.get(
                path, params=query | {"limit": 2} | ({"cursor": cursor} if cursor else {})
            )
        )
        seen += [z["id"] for z in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        _take(crun, "")
        clock.advance(61)  # the lease just taken is now silent too: a zombie, the newest
    assert len(seen) == len(set(seen)) and seen[:5] == before
    assert ok(crun.api.c.get(path, params=query))["count"] == len(seen)
