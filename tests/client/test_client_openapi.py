"""The client's types stay true to the server: every field a schema-backed model declares is
in the server's /openapi.json schema, required exactly when the schema requires it."""

from __future__ import annotations

from typing import Any

from chameleon_workflow.client import models as m
from tests.client.conftest import Server

# Where the schemas are answered: (method, path, status) -> schema name.
ROUTES = {
    ("get", "/uows/{uow_id}", "200"): "Uow",
    ("get", "/uows/{uow_id}/history", "200"): "UowHistory",
    ("post", "/roles/{role_id}/memories", "201"): "Memory",
    ("get", "/memories/{memory_id}", "200"): "Memory",
    ("delete", "/memories/{memory_id}", "200"): "Memory",
    ("post", "/memories/{memory_id}/restore", "200"): "Memory",
    ("post", "/workflow/uow/{uow_id}/intervention", "201"): "Intervention",
    ("get", "/api/interventions/{request_id}", "200"): "Intervention",
}


def _openapi(server: Server) -> dict[str, Any]:
    response = server.app.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def test_every_declared_field_is_in_the_servers_schema_and_required_alike(
    server: Server,
) -> None:
    schemas = _openapi(server)["components"]["schemas"]
    problems = []
    for model, name in m.SCHEMA_CHECKED.items():
        schema = schemas[name]
        required = set(schema.get("required", []))
        for field, info in model.model_fields.items():
            if field not in schema["properties"]:
                problems.append(f"{model.__name__}.{field}: not in the schema {name}")
            elif info.is_required() != (field in required):
                problems.append(f"{model.__name__}.{field}: required={info.is_required()}")
    assert problems == []


def test_the_routes_answer_the_schemas_the_models_are_checked_against(server: Server) -> None:
    paths = _openapi(server)["paths"]
    for (method, path, status), name in ROUTES.items():
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith(f"/{name}"), (method, path)


def test_the_paged_lists_the_client_reads_have_items_and_a_next_cursor(server: Server) -> None:
    spec = _openapi(server)
    for path in ("/templates", "/instances", "/actors", "/api/interventions/pending"):
        ref = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        schema = spec["components"]["schemas"][ref["schema"]["$ref"].split("/")[-1]]
        assert {"items", "next_cursor"} <= set(schema["properties"]), path
        params = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"limit", "cursor"} <= params, path


def test_the_async_client_has_every_method_of_the_sync_one_with_the_same_parameters() -> None:
    import inspect

    from chameleon_workflow.client import AsyncClient, Client

    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in ("close", "aclose")
        }

    assert public(AsyncClient) == public(Client)
    assert len(public(Client)) >= 35
