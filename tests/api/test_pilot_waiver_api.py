"""``POST /pilot/waive/{uow_id}/{guardian_name}`` over HTTP, and a parked submit's answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.domain.security import parse_key
from chameleon_workflow.settings import Settings
from tests.api.conftest import Api, ok, problem
from tests.conftest import bearer, make_key
from tests.flows import fixture_text

GATE = fixture_text("pilot/approval_gate.yml")


@dataclass
class Rejected:
    """An instance whose first UOW Draft's gate 'amount_ok' rejected into the Ate queue."""

    api: Api
    uow_id: str
    roles: dict[str, str]
    actor: str

    def waive(self, guardian: str = "amount_ok", body: Any = None, **kw: Any) -> Any:
        return self.api.c.post(
            f"/pilot/waive/{self.uow_id}/{guardian}",
            json={"reason": "refunds are negative"} if body is None else body,
            **kw,
        )

    def seen(self) -> tuple[Any, Any]:
        return self.api.state(self.uow_id)


@pytest.fixture
def rejected(api: Api) -> Rejected:
    template = api.import_template(GATE)
    made = api.instantiate(template["template_id"], {"amount": -1})
    roles = api.roles(made["workflow_id"])
    actor = api.actor("worker", [rid for name, rid in roles.items() if name != "Origin"])
    assert api.checkout(actor, roles["Draft"]).status_code == 204
    assert api.uow(made["uow_id"])["status"] == "FAILED"
    return Rejected(api, made["uow_id"], roles, actor)


def test_an_operator_key_may_not_waive(rejected: Rejected, settings: Settings) -> None:
    before = rejected.seen()
    operator = bearer(make_key(settings, "operator"))
    problem(rejected.waive(headers=operator), 403, "admin")
    assert rejected.seen() == before


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 3}, {"reason": "x", "by": "me"}]
)
def test_a_blank_or_malformed_body_is_422(rejected: Rejected, body: Any) -> None:
    before = rejected.seen()
    problem(rejected.waive(body=body), 422, "reason" if body.get("by") is None else "by")
    assert rejected.seen() == before


def test_unknown_uow_or_guardian_is_404_and_wrong_state_is_409(rejected: Rejected) -> None:
    before = rejected.seen()
    c = rejected.api.c
    problem(c.post(f"/pilot/waive/{uuid.uuid4()}/amount_ok", json={"reason": "r"}), 404, "UOW")
    problem(rejected.waive("nobody"), 404, "no guardian 'nobody'")
    problem(rejected.waive("big_spend"), 409, "rejected by guardian 'amount_ok'")
    problem(c.post("/pilot/waive/not-a-uuid/amount_ok", json={"reason": "r"}), 422, "uow_id")
    assert rejected.seen() == before


def test_a_waiver_answers_where_the_work_went_and_is_written_as_the_key(
    rejected: Rejected, admin_key: str
) -> None:
    body = ok(rejected.waive())
    assert body["success"] is True and "amount_ok" in body["message"]
    assert (body["uow_id"], body["guardian_name"], body["status"], body["interaction"]) == (
        rejected.uow_id,
        "amount_ok",
        "PENDING",
        "Inbox",
    )
    assert isinstance(body["waiver_id"], int)
    detail, history = rejected.seen()
    assert (detail["status"], detail["interaction"], detail["failure"]) == (
        "PENDING",
        "Inbox",
        None,
    )
    entry = history["transitions"][-1]
    assert entry["event"] == "CONSTITUTIONAL_WAIVER"
    parsed = parse_key(admin_key)
    assert parsed is not None
    assert entry["details"]["pilot"] == f"admin key (key {parsed[0]})"
    assert entry["details"]["reason"] == "refunds are negative"
    problem(rejected.waive(), 409, "PENDING")  # nothing left to waive
    lease = rejected.api.take(rejected.actor, rejected.roles["Draft"])
    assert lease["uow_id"] == rejected.uow_id


def test_a_parked_submit_says_so_with_its_request(api: Api, client: TestClient) -> None:
    template = api.import_template(GATE)
    made = api.instantiate(template["template_id"], {"amount": 5000})
    roles = api.roles(made["workflow_id"])
    actor = api.actor("worker", [roles["Draft"]])
    answer = ok(api.submit(api.take(actor, roles["Draft"]), actor))
    assert answer["status"] == "PENDING_PILOT_APPROVAL" and answer["interaction"] == "Inbox"
    assert uuid.UUID(answer["intervention_id"])
    assert "PENDING_PILOT_APPROVAL" in answer["message"]
    assert api.uow(made["uow_id"])["status"] == "PENDING_PILOT_APPROVAL"
