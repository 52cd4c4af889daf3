"""The read endpoints answer with response models of their own: each names its fields, so a
column added to a table changes no response."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Run, items, ok

UOW = [
    "id", "instance_id", "parent_id", "status", "current_interaction_id", "current_role_id",
    "child_count", "finished_child_count", "created_at", "updated_at", "entered_at", "lease_id",
    "lease_holder_id", "leased_at", "last_heartbeat", "reclaim_count", "failure", "interaction",
    "role", "heartbeat_age_seconds", "attributes", "children",
]  # fmt: skip
MEMORY = [
    "instance_id", "role_id", "id", "scope", "actor_id", "key", "value", "version", "confidence",
    "is_toxic", "toxic_reason", "toxic_by", "toxic_at", "source_uow_id", "created_at",
    "updated_at", "last_accessed_at", "reasoning", "written_by", "source_actor_id", "archived",
    "archived_at", "archived_by", "archive_reason", "held", "held_at", "held_by", "hold_reason",
]  # fmt: skip
TRANSITION = [
    "id", "uow_id", "instance_id", "actor_id", "role_id", "event", "from_interaction_id",
    "to_interaction_id", "from_status", "to_status", "at", "details",
]  # fmt: skip
ACTOR = ["id", "name", "actor_type", "created_at"]

# (method, path, status): the component its body is (a list of it when in brackets).
DECLARED = {
    ("get", "/uows/{uow_id}", "200"): "Uow",
    ("get", "/uows/{uow_id}/history", "200"): "UowHistory",
    ("get", "/actors", "200"): "ActorPage",
    ("get", "/actors/{actor_id}", "200"): "ActorDetail",
    ("post", "/roles/{role_id}/memories", "201"): "Memory",
    ("get", "/roles/{role_id}/memories", "200"): "MemoryPage",
    ("get", "/memories/{memory_id}", "200"): "Memory",
    ("get", "/memories/{memory_id}/versions", "200"): "MemoryVersionPage",
    ("delete", "/memories/{memory_id}", "200"): "Memory",
    ("post", "/memories/{memory_id}/restore", "200"): "Memory",
    ("post", "/memories/{memory_id}/hold", "200"): "Memory",
    ("post", "/memories/{memory_id}/release", "200"): "Memory",
    ("post", "/roles/{role_id}/actors/{actor_id}/playbook/reset", "200"): "PlaybookReset",
    ("get", "/memories/{memory_id}/influence", "200"): "InfluencePage",
    ("get", "/uows/{uow_id}/memory-injections", "200"): "InjectionPage",
    ("get", "/admin/zombies", "200"): "ZombiePage",
    ("get", "/admin/maintenance-runs", "200"): "MaintenanceRunPage",
    ("get", "/admin/scheduler", "200"): "Scheduler",
    ("get", "/templates", "200"): "TemplatePage",
    ("get", "/instances", "200"): "InstancePage",
    ("get", "/admin/memories/{memory_id}/toxic-history", "200"): "ToxicEventPage",
}


def _component(schema: dict[str, Any]) -> str:
    if schema.get("type") == "array":
        return f"[{_component(schema['items'])}]"
    return str(schema["$ref"]).rsplit("/", 1)[-1]


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return ok(client.get("/openapi.json"))  # type: ignore[no-any-return]


def test_each_read_declares_a_named_response_model(spec: dict[str, Any]) -> None:
    for (method, path, status), name in DECLARED.items():
        body = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert _component(body["schema"]) == name, (method, path)


def test_the_models_list_their_fields_and_no_others(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    expected = {"Uow": UOW, "Memory": MEMORY, "Transition": TRANSITION, "Actor": ACTOR}
    for name, fields in expected.items():
        assert list(schemas[name]["properties"]) == fields, name
        assert schemas[name]["additionalProperties"] is False, name
    for name in {n.strip("[]") for n in DECLARED.values()}:
        assert schemas[name]["additionalProperties"] is False, name
    times = schemas["Uow"]["properties"]["created_at"]
    assert times == {"type": "string", "format": "date-time", "title": "Created At"}


def test_the_bodies_have_exactly_the_declared_fields_in_order(run: Run) -> None:
    lease = run.take("Triage")
    role = run.roles["Triage"]
    written = ok(
        run.api.c.post(
            f"/roles/{role}/memories", json={"key": "k", "value": 1, "reasoning": "test"}
        ),
        201,
    )
    uow = run.api.uow(run.uow_id)
    history = ok(run.api.c.get(f"/uows/{run.uow_id}/history"))
    actor = ok(run.api.c.get(f"/actors/{run.actor}"))
    assert list(uow) == UOW
    assert list(written) == MEMORY == list(ok(run.api.c.get(f"/memories/{written['id']}")))
    assert [list(t) for t in history["transitions"]] == [TRANSITION, TRANSITION]
    assert list(actor) == [*ACTOR, "role_ids"]
    assert [list(a) for a in items(run.api.c.get("/actors"))] == [ACTOR]
    # Times keep the offset spelled +00:00, as they always have.
    assert uow["leased_at"].endswith("+00:00") and written["created_at"].endswith("+00:00")
    assert uow["lease_id"] == lease["lease_id"]
