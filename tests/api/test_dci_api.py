"""Dynamic Context Injection over HTTP: import refusals, the checkout's ``dci``, the history."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient

from tests.api.conftest import YAML, Api, items, ok, problem
from tests.flows import fixture_text

DCI_YAML = fixture_text("dci_workflow.yml")


def _start(api: Api, context: dict[str, object]) -> tuple[str, dict[str, str], str, str]:
    template = api.import_template(DCI_YAML)
    made = api.instantiate(template["template_id"], context)
    roles = api.roles(made["workflow_id"])
    worker = api.actor("worker", [rid for name, rid in roles.items() if name != "Origin"])
    return made["workflow_id"], roles, worker, made["uow_id"]


def test_import_of_a_bad_rule_is_422_naming_guardian_and_rule_and_stores_nothing(
    client: TestClient,
) -> None:
    doc = yaml.safe_load(DCI_YAML)
    draft_in = next(c for c in doc["workflow"]["components"] if c["name"] == "Draft_In")
    draft_in["guardians"][0]["config"]["rules"][1]["action"] = "rewrite"
    draft_in["guardians"][0]["config"]["rules"][2]["condition"] = "region = 'eu'"
    found = problem(
        client.post("/templates", content=yaml.safe_dump(doc), headers=YAML),
        422,
        "Draft_Context",
        "rule 1 has unknown action 'rewrite'",
        "rule 2 condition",
    )
    assert found["error"] == "DefinitionInvalid"
    assert items(client.get("/templates")) == []


def test_checkout_without_a_matching_rule_has_a_null_dci_and_keeps_its_fields(api: Api) -> None:
    _, roles, worker, uow_id = _start(api, {"amount": 1})
    lease = api.take(worker, roles["Draft"])
    assert {"uow_id", "lease_id", "attributes", "context", "injected", "previous_status"} <= set(
        lease
    )
    assert lease["uow_id"] == uow_id
    assert lease["dci"] is None
    events = [t["event"] for t in ok(api.c.get(f"/uows/{uow_id}/history"))["transitions"]]
    assert "dci_applied" not in events


def test_checkout_carries_the_injection_and_the_history_records_it(api: Api) -> None:
    _, roles, worker, uow_id = _start(api, {"amount": 5000, "priority": "high"})
    lease = api.take(worker, roles["Draft"])
    assert lease["dci"] == {
        "model_id": "gpt-4o",
        "instructions": "Be careful.\n\nCheck the invoice total.",
        "knowledge_fragments": ["kb:escalation", "kb:tone", "kb:invoices"],
        "applied_rules": [
            {"guardian": "Draft_Context", "rule": 0, "condition": "priority == 'high'"},
            {"guardian": "Draft_Context", "rule": 1, "condition": "amount > 1000"},
        ],
    }
    transitions = ok(api.c.get(f"/uows/{uow_id}/history"))["transitions"]
    [applied] = [t for t in transitions if t["event"] == "dci_applied"]
    assert applied["actor_id"] == worker
    assert applied["details"]["model_choice"] == "overridden"
    assert applied["details"]["guardians"] == ["Draft_Context"]
    # the injected work is submitted as any other
    ok(api.submit(lease, worker, done=True))
    assert api.uow(uow_id)["interaction"] == "Reviews"
