"""The example workflows driven end to end against a real server process.

The server is started with ``chameleon serve`` on a free port (after ``chameleon db upgrade``),
once per database, and driven with a plain HTTP client; nothing here touches the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, ok
from tests.conftest import EXAMPLES
from tests.process import cli, create_key, server_env, serving


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Base URL of a running server; its log must show no server error at the end."""
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'chameleon.db'}"
    else:
        url = request.getfixturevalue(
            "pg_url"
        )  # shared by the run: tests never assume empty tables
    env = server_env(url)
    cli(env, "db", "upgrade")
    key = create_key(env)
    with serving(env, workdir / "server.log") as (base, health):
        assert health["database"] == ("sqlite" if request.param == "sqlite" else "postgresql")
        yield base, key
    log = workdir / "server.log"
    text = log.read_text()
    assert '"GET /health HTTP/1.1" 200' in text  # the access log is there to read
    assert " 500 " not in text and "Traceback" not in text, text


@pytest.fixture
def http(server: tuple[str, str]) -> Iterator[Api]:
    base, key = server
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
        yield Api(client)


class Instance:
    """One instance of an example workflow with one actor per working role."""

    def __init__(self, api: Api, example: str, context: dict[str, Any]) -> None:
        self.api = api
        self.template = api.import_template((EXAMPLES / example).read_text(encoding="utf-8"))
        made = api.instantiate(self.template["template_id"], context)
        self.id = made["workflow_id"]
        self.first_uow = made["uow_id"]
        self.roles = api.roles(self.id)
        types = {r["name"]: r["type"] for r in ok(api.c.get(f"/instances/{self.id}"))["roles"]}
        self.actors = {
            name: api.actor(f"{name} actor", [role_id])
            for name, role_id in self.roles.items()
            if types[name] != "ALPHA"
        }

    def checkout(self, role: str) -> httpx.Response:
        return self.api.checkout(self.actors[role], self.roles[role])

    def take(self, role: str) -> dict[str, Any]:
        return self.api.take(self.actors[role], self.roles[role])

    def submit(self, role: str, lease: dict[str, Any], **attrs: Any) -> dict[str, Any]:
        return ok(self.api.submit(lease, self.actors[role], **attrs))  # type: ignore[no-any-return]

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.api.c.post(path, json=body)

    def where(self, uow_id: str) -> tuple[str, str | None]:
        uow = self.api.uow(uow_id)
        return uow["status"], uow["interaction"]

    def events(self, uow_id: str) -> list[str]:
        history = ok(self.api.c.get(f"/uows/{uow_id}/history"))
        return [t["event"] for t in history["transitions"]]


# --- invoice: decomposition reconciled by Cerberus ------------------------------------------------


def test_invoice_children_are_reconciled_by_cerberus(http: Api) -> None:
    inv = Instance(http, "invoice_processing_workflow.yml", {"invoice_id": "INV-7", "total": 1250})
    assert inv.where(inv.first_uow) == ("PENDING", "Validation_Queue")
    assert inv.checkout("Invoice_Reconciler").status_code == 204

    lease = inv.take("Invoice_Validator")
    body = {
        "uow_id": lease["uow_id"],
        "actor_id": inv.actors["Invoice_Validator"],
        "lease_id": lease["lease_id"],
        "result_attributes": {"validated": True},
        "reasoning": "two line items",
        "children": [{"line": 1, "amount": 500}, {"line": 2, "amount": 750}],
    }
    decomposed = ok(inv.post("/workflow/submit", body))
    assert (decomposed["status"], decomposed["interaction"]) == ("PENDING", "Reconciliation_Queue")
    first, second = decomposed["children"]
    for child in (first, second):
        assert inv.where(child) == ("PENDING", "Approval_Queue")
        assert http.uow(child)["parent_id"] == inv.first_uow

    # OMEGA gets nothing while any child is still travelling.
    assert inv.checkout("Invoice_Reconciler").status_code == 204
    approved = inv.take("Senior_Approver")
    assert approved["parent_id"] == inv.first_uow
    assert inv.submit("Senior_Approver", approved, approved=True)["interaction"] == (
        "Reconciliation_Queue"
    )
    assert http.uow(inv.first_uow)["finished_child_count"] == 1
    assert inv.checkout("Invoice_Reconciler").status_code == 204
    inv.submit("Senior_Approver", inv.take("Senior_Approver"), approved=True)

    final = inv.take("Invoice_Reconciler")
    assert final["uow_id"] == inv.first_uow
    assert final["attributes"] == {"invoice_id": "INV-7", "total": 1250, "validated": True}
    assert sorted(k["attributes"]["line"] for k in final["children"]) == [1, 2]
    assert all(k["attributes"]["approved"] is True for k in final["children"])
    assert inv.checkout("Invoice_Reconciler").status_code == 204  # children never alone
    done = inv.submit("Invoice_Reconciler", final, reconciled=True)
    assert done["status"] == "COMPLETED" and done["success"] is True
    for uow in (inv.first_uow, first, second):
        assert http.uow(uow)["status"] == "COMPLETED"
    assert inv.events(inv.first_uow)[-1] == "finalize"
    depths = {x["name"]: x["depth"] for x in ok(http.c.get(f"/instances/{inv.id}"))["interactions"]}
    assert depths["Reconciliation_Queue"] == {"COMPLETED": 3}
    assert all(not d for name, d in depths.items() if name != "Reconciliation_Queue")


# --- mixed agents: failure remediated by EPSILON, guard rejection, stale lease --------------------


def _through_the_pipeline(mix: Instance, uow_id: str, approval: str = "APPROVED") -> dict[str, Any]:
    """AI analyses, Auto scores, the Human decides; returns the Human's submit response."""
    ai = mix.take("AI_Analyzer")
    assert ai["uow_id"] == uow_id
    assert mix.submit("AI_Analyzer", ai, summary="a greeting")["interaction"] == "AI_Analysis_Queue"
    auto = mix.take("Auto_Calculator")
    assert auto["attributes"]["summary"] == "a greeting"
    assert mix.submit("Auto_Calculator", auto, score=0.8)["interaction"] == "Calculation_Queue"
    human = mix.take("Human_Approver")
    assert human["attributes"]["score"] == 0.8
    return mix.submit("Human_Approver", human, approval_status=approval)


def test_mixed_failure_is_remediated_by_epsilon_and_completes(http: Api) -> None:
    mix = Instance(http, "mixed_agent_workflow.yaml", {"input_text": "hello"})
    lease = mix.take("AI_Analyzer")
    report = {
        "uow_id": lease["uow_id"],
        "actor_id": mix.actors["AI_Analyzer"],
        "lease_id": lease["lease_id"],
        "error_code": "MODEL_TIMEOUT",
        "details": {"model": "llama", "seconds": 120},
    }
    failed = ok(mix.post("/workflow/failure", report))
    assert (failed["success"], failed["status"], failed["interaction"]) == (
        True,
        "FAILED",
        "Error_Queue",
    )
    assert mix.checkout("AI_Analyzer").status_code == 204

    fix = mix.take("Error_Handler")
    assert (fix["uow_id"], fix["previous_status"]) == (mix.first_uow, "FAILED")
    assert fix["failure"]["code"] == "MODEL_TIMEOUT"
    assert fix["failure"]["details"] == {"model": "llama", "seconds": 120}
    assert fix["failure"]["role"] == "AI_Analyzer"
    remediated = mix.submit("Error_Handler", fix, input_text="hello (retry with a smaller model)")
    assert (remediated["status"], remediated["interaction"]) == ("PENDING", "Initial_Queue")
    assert http.uow(mix.first_uow)["failure"] is None

    decided = _through_the_pipeline(mix, mix.first_uow)
    assert (decided["status"], decided["interaction"]) == ("PENDING", "Approval_Queue")
    final = mix.take("Archiver")
    assert final["attributes"]["input_text"] == "hello (retry with a smaller model)"
    assert mix.submit("Archiver", final, archived=True)["status"] == "COMPLETED"
    assert http.uow(mix.first_uow)["status"] == "COMPLETED"
    events = mix.events(mix.first_uow)
    assert events[:3] == ["genesis", "checkout", "failure"]
    assert events[-1] == "finalize"


def test_mixed_guard_rejection_fails_into_the_error_queue(http: Api) -> None:
    mix = Instance(http, "mixed_agent_workflow.yaml", {"input_text": "spam"})
    decided = _through_the_pipeline(mix, mix.first_uow, approval="REJECTED")
    assert decided["success"] is True
    assert (decided["status"], decided["interaction"]) == ("FAILED", "Error_Queue")
    uow = http.uow(mix.first_uow)
    assert (uow["status"], uow["interaction"], uow["lease_holder_id"]) == (
        "FAILED",
        "Error_Queue",
        None,
    )
    failure = uow["failure"]
    assert failure["kind"] == "routing_error" and failure["role"] == "Human_Approver"
    assert "Human_To_Approval" in failure["reason"] or "approval_status" in failure["reason"]
    assert uow["attributes"]["approval_status"] == "REJECTED"
    assert mix.checkout("Archiver").status_code == 204
    assert mix.events(mix.first_uow)[-1] == "routing_error"
    # EPSILON sees why, like any other failure.
    assert mix.take("Error_Handler")["failure"]["reason"] == failure["reason"]


def test_stale_lease_is_409_and_changes_nothing(http: Api) -> None:
    mix = Instance(http, "mixed_agent_workflow.yaml", {"input_text": "hi"})
    old = mix.take("AI_Analyzer")
    actor = mix.actors["AI_Analyzer"]
    report = {"uow_id": old["uow_id"], "actor_id": actor, "lease_id": old["lease_id"]}
    ok(mix.post("/workflow/failure", report | {"error_code": "FLAKY"}))
    mix.submit("Error_Handler", mix.take("Error_Handler"))
    current = mix.take("AI_Analyzer")
    assert current["uow_id"] == old["uow_id"] and current["lease_id"] != old["lease_id"]
    before = http.state(mix.first_uow)

    stale = http.submit(old, actor, summary="from the past")
    assert stale.status_code == 409
    # That lease was used by the failure report: a different request on it is refused.
    assert stale.json()["error"] == "LeaseLost" and "already used" in stale.json()["message"]
    beat = mix.post(
        f"/workflow/uow/{old['uow_id']}/heartbeat", {"actor_id": actor, "lease_id": old["lease_id"]}
    )
    assert beat.status_code == 409
    assert http.state(mix.first_uow) == before

    out = mix.submit("AI_Analyzer", current, summary="fresh")
    assert (out["status"], out["interaction"]) == ("PENDING", "AI_Analysis_Queue")
    assert http.submit(current, actor, summary="twice").status_code == 409
