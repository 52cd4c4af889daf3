"""GET /uows (pages of units of work with their failure reasons) and who reads each queue."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api.conftest import Api, Run, ok, problem, unknown


def listing(api: Api, query: str = "") -> dict[str, Any]:
    return ok(api.c.get(f"/uows?{query}"))  # type: ignore[no-any-return]


def everything(api: Api, query: str, limit: int) -> list[dict[str, Any]]:
    """Every row, following next_cursor page by page."""
    rows: list[dict[str, Any]] = []
    page = listing(api, f"{query}&limit={limit}")
    while True:
        assert len(page["items"]) <= limit
        rows += page["items"]
        if page["next_cursor"] is None:
            return rows
        page = listing(api, f"{query}&limit={limit}&cursor={page['next_cursor']}")


def fail(run: Run, code: str = "bad_invoice") -> str:
    lease = run.take("Triage")
    body = {
        "uow_id": lease["uow_id"],
        "actor_id": run.actor,
        "lease_id": lease["lease_id"],
        "error_code": code,
    }
    ok(run.api.c.post("/workflow/failure", json=body))
    return str(lease["uow_id"])


# --- bad input: 422 naming the parameter, 404 naming the id --------------------------------------


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_CURSORS = ["abc", "!!!", b64("[1,2]"), b64('["2026-01-01T00:00:00", "00"]'),
               b64('["2026-01-01T00:00:00+00:00", "not-a-uuid"]'), b64("{}"), b64("null"),
               b64('["0001-01-01T00:00:00+05:00", "' + "0" * 32 + '"]'), "x" * 201]  # fmt: skip


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_cursor_this_server_did_not_issue_is_422(api: Api, cursor: str) -> None:
    problem(api.c.get("/uows", params={"cursor": cursor}), 422, "cursor")


@pytest.mark.parametrize("limit", ["0", "-1", "501", "1.5", "ten", ""])
def test_limit_is_between_1_and_500(api: Api, limit: str) -> None:
    problem(api.c.get(f"/uows?limit={limit}"), 422, "limit")


def test_an_unknown_status_is_422_listing_the_valid_ones(api: Api) -> None:
    body = problem(api.c.get("/uows?status=DONE"), 422, "status")
    for status in ("PENDING", "ACTIVE", "FAILED", "COMPLETED", "ABANDONED"):
        assert status in body["message"]
    problem(api.c.get("/uows?status=failed"), 422, "status")


@pytest.mark.parametrize(
    "query",
    ["updated_before=2026-01-01T00:00:00", "updated_after=yesterday",
     "updated_after=0001-01-01T00:00:00%2B05:00", "instance_id=nope", "actor_id=1"],
)  # fmt: skip
def test_bad_times_and_ids_are_422(api: Api, query: str) -> None:
    problem(api.c.get(f"/uows?{query}"), 422, query.split("=")[0])


@pytest.mark.parametrize("name", ["instance_id", "role_id", "interaction_id", "actor_id"])
def test_an_unknown_id_in_a_filter_is_404(api: Api, name: str) -> None:
    missing = unknown()
    problem(api.c.get(f"/uows?{name}={missing}"), 404, missing)


# --- pages and filters --------------------------------------------------------------------------


def test_rows_come_newest_updated_first_with_names(run: Run) -> None:
    newer = run.genesis(amount=5)
    rows = listing(run.api)["items"]
    assert [r["uow_id"] for r in rows] == [newer, run.uow_id]
    first = rows[0]
    assert first["status"] == "PENDING" and first["interaction"] == "Inbox"
    assert first["role"] == "Origin" and first["instance_id"] == run.instance_id
    assert first["failure"] is None and first["actor_id"] is None


def test_a_failed_row_says_why_and_where(run: Run) -> None:
    failed = fail(run)
    rows = listing(run.api, "status=FAILED")["items"]
    assert [r["uow_id"] for r in rows] == [failed]
    row = rows[0]
    assert row["interaction"] == "Errors"
    failure = row["failure"]
    assert failure["code"] == "bad_invoice" and failure["kind"] == "explicit"
    assert "bad_invoice" in failure["reason"] and failure["role"] == "Triage"
    assert failure["record"]["code"] == "bad_invoice"


def test_the_lease_holder_is_the_actor_filter(run: Run) -> None:
    other = run.api.actor("other", [run.roles["Triage"]])
    lease = run.take("Triage")
    run.genesis(amount=3)
    rows = listing(run.api, f"actor_id={run.actor}")["items"]
    assert [(r["uow_id"], r["actor_id"]) for r in rows] == [(lease["uow_id"], run.actor)]
    assert listing(run.api, f"actor_id={other}")["items"] == []


def test_filters_combine(run: Run) -> None:
    run.genesis(amount=1)
    failed = fail(run)
    instance = run.instance_id
    described = ok(run.api.c.get(f"/instances/{instance}"))
    ids = {x["name"]: x["interaction_id"] for x in described["interactions"]}
    inbox = everything(run.api, f"interaction_id={ids['Inbox']}", 1)
    assert {r["interaction"] for r in inbox} == {"Inbox"} and len(inbox) == 1
    errors = listing(run.api, f"instance_id={instance}&interaction_id={ids['Errors']}")
    assert [r["uow_id"] for r in errors["items"]] == [failed]
    by_role = listing(run.api, f"role_id={run.roles['Triage']}&status=FAILED")["items"]
    assert [r["uow_id"] for r in by_role] == [failed]
    assert listing(run.api, f"role_id={run.roles['Triage']}&status=PENDING")["items"] == []
    other = run.api.instantiate(run.template_id)["instance_id"]
    assert len(listing(run.api, f"instance_id={other}")["items"]) == 1


def test_time_bounds_are_strict(run: Run) -> None:
    row = listing(run.api)["items"][0]
    at = row["updated_at"].replace("+00:00", "Z")
    assert listing(run.api, f"updated_before={at}")["items"] == []
    assert listing(run.api, f"updated_after={at}")["items"] == []
    later = "2999-01-01T00:00:00%2B02:00"
    assert len(listing(run.api, f"updated_before={later}")["items"]) == 1


def test_pages_cover_every_row_once_in_order(run: Run) -> None:
    for amount in range(6):
        run.genesis(amount=amount)
    fail(run)
    whole = listing(run.api, "limit=500")
    assert whole["next_cursor"] is None and len(whole["items"]) == 7
    for size in (1, 3, 6, 7):
        assert everything(run.api, "", size) == whole["items"]
    keys = [(r["updated_at"], r["uow_id"]) for r in whole["items"]]
    assert keys == sorted(keys, reverse=True)
    pending = everything(run.api, "status=PENDING", 2)
    assert pending == [r for r in whole["items"] if r["status"] == "PENDING"]


def test_the_default_page_is_50(run: Run) -> None:
    for _ in range(50):
        run.genesis()
    page = listing(run.api)
    assert len(page["items"]) == 50 and page["next_cursor"]
    rest = listing(run.api, f"cursor={page['next_cursor']}")
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


# --- who reads and writes each queue ------------------------------------------------------------


def test_each_interaction_names_its_readers_and_writers(run: Run) -> None:
    described = ok(run.api.c.get(f"/instances/{run.instance_id}"))
    by_name = {x["name"]: x for x in described["interactions"]}

    def names(interaction: str, side: str) -> list[str]:
        return [r["name"] for r in by_name[interaction][side]]

    assert names("Inbox", "read_by") == ["Triage"]
    assert names("Inbox", "written_by") == ["Fixer", "Origin"]
    assert names("Errors", "read_by") == ["Fixer"]
    assert names("Errors", "written_by") == ["Timer", "Triage"]
    assert names("Done", "read_by") == ["Finish"]
    assert names("Timeouts", "written_by") == ["Fixer"]
    triage = by_name["Inbox"]["read_by"][0]
    assert triage["role_id"] == run.roles["Triage"]


def test_the_home_page_names_readers_and_writers(run: Run) -> None:
    page = run.api.c.get("/").text
    assert "<th>read by</th>" in page
    assert "<td>Inbox</td><td>PENDING: 1</td><td>Triage</td><td>Fixer, Origin</td>" in page
