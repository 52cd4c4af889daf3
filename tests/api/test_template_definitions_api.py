"""POST /templates against hostile and imperfect definitions: budgets, warnings, the YAML body."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.settings import Settings
from tests.api.conftest import YAML, items, ok, problem
from tests.conftest import bearer, example_text
from tests.unit.test_yaml_budget import HOSTILE, nested_aliases, with_ai_context


def _nothing_imported(client: TestClient) -> None:
    assert items(client.get("/templates")) == []


def _bundled(name: str) -> str:
    return resources.files("chameleon_workflow.examples").joinpath(name).read_text("utf-8")


def test_the_billion_laughs_is_422_naming_the_limit_and_nothing_is_stored(
    client: TestClient,
) -> None:
    bomb = (HOSTILE / "billion_laughs.yml").read_text(encoding="utf-8")
    found = problem(
        client.post("/templates", content=bomb, headers=YAML),
        422,
        "aliases",
        "500000 nodes",
        "CHAMELEON_YAML_MAX_NODES",
    )
    assert found["error"] == "DefinitionInvalid"
    assert [v["rule"] for v in found["violations"]] == ["STRUCTURE"]
    _nothing_imported(client)


def test_a_small_template_that_expands_to_megabytes_is_422(client: TestClient) -> None:
    filler = "x" * 1000
    extra = f'base: &base ["{filler}", "{filler}"]\n' + nested_aliases(4, 10, "*base")
    text = with_ai_context(extra)
    assert len(text) < 6_000
    problem(
        client.post("/templates", content=text, headers=YAML),
        422,
        "10 times",
        "CHAMELEON_YAML_MAX_EXPANSION",
    )
    _nothing_imported(client)


def test_the_budget_comes_from_the_settings(settings: Settings, admin_key: str) -> None:
    tight = settings.model_copy(update={"yaml_max_nodes": 50})
    app = create_app(tight)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(admin_key)) as client:
        body = example_text("mixed_agent_workflow.yaml")
        problem(client.post("/templates", content=body, headers=YAML), 422, "the limit is 50 nodes")
        _nothing_imported(client)


def test_a_template_with_a_few_aliases_imports(client: TestClient) -> None:
    text = with_ai_context("shared: &shared {team: invoices}\nagain: *shared\nmore: {<<: *shared}")
    created = ok(client.post("/templates", content=text, headers=YAML), 201)
    assert created["name"] == "Minimal"


def test_an_empty_body_says_it_is_empty(client: TestClient) -> None:
    for body in ("", "\n# just a comment\n"):
        found = problem(
            client.post("/templates", content=body, headers=YAML), 422, "the document is empty"
        )
        assert found["violations"][0]["element"] == "document"
    _nothing_imported(client)


def test_dead_ends_are_warnings_in_the_import_response(client: TestClient) -> None:
    original = ok(
        client.post(
            "/templates", content=example_text("invoice_processing_workflow.yml"), headers=YAML
        ),
        201,
    )
    warnings: list[dict[str, Any]] = original["warnings"]
    assert [(w["code"], w["element"]) for w in warnings] == [
        ("W1", "role 'Error_Handler'"),
        ("W1", "role 'Timeout_Manager'"),
    ]
    assert "has no path back into the flow or to OMEGA" in warnings[0]["message"]
    bundled = ok(
        client.post(
            "/templates", content=_bundled("invoice_processing_workflow.yml"), headers=YAML
        ),
        201,
    )
    assert (bundled["name"], bundled["version"], bundled["warnings"]) == (
        "Invoice_Processing",
        2,
        [],
    )


def test_a_guardians_attributes_are_read_as_its_config(client: TestClient) -> None:
    text = with_ai_context("note: x").replace(
        "guardian: {name: Fixer_Gate, type: PASS_THRU}",
        "guardian: {name: Fixer_Gate, type: PASS_THRU, attributes: {team: ops}}",
    )
    created = ok(client.post("/templates", content=text, headers=YAML), 201)
    detail = ok(client.get(f"/templates/{created['template_id']}"))
    fixer = next(c for c in detail["components"] if c["name"] == "Fixer_In")
    assert fixer["guardians"] == [
        {"name": "Fixer_Gate", "type": "PASS_THRU", "config": {"team": "ops"}}
    ]


def test_openapi_declares_the_yaml_body_and_the_statuses(client: TestClient) -> None:
    operation = ok(client.get("/openapi.json"))["paths"]["/templates"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
    }
    for media in body["content"].values():
        assert media["schema"]["type"] == "string"
    assert {"201", "413", "415", "422"} <= set(operation["responses"])
