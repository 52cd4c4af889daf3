"""The API description declares what each operation can answer (schemathesis checks the rest)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import Run, ok, problem

ERROR = {"$ref": "#/components/schemas/ErrorBody"}


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "operations" not in op.get("tags", [])  # /health, /metrics: declared by the app
    ]


def test_every_operation_declares_its_error_statuses(client: TestClient) -> None:
    ops = operations(client)
    assert len(ops) >= 30
    for method, path, op in ops:
        declared = op["responses"]
        where = f"{method} {path}"
        assert {"422", "503"} <= declared.keys(), where
        if "{" in path:
            assert "404" in declared, where
        if "requestBody" in op:
            assert {"400", "413"} <= declared.keys(), where
        for status, response in declared.items():
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == ERROR, where


def test_booleans_and_nulls_are_described_as_accepted(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    zombie = spec["components"]["schemas"]["ZombieProtocolRequest"]["properties"]
    assert zombie["dry_run"]["type"] == "boolean"
    assert {"type": "null"} in zombie["timeout_seconds"]["anyOf"]


def test_a_boolean_in_a_query_string_is_the_word_true_or_false(run: Run) -> None:
    path = f"/roles/{run.roles['Triage']}/memories"
    for word in ("1", "0", "yes", "on", "True", "FALSE", ""):
        problem(run.api.c.get(f"{path}?include_toxic={word}"), 422, "include_toxic")
    for word in ("true", "false"):
        assert ok(run.api.c.get(f"{path}?include_toxic={word}"))["items"] == []
