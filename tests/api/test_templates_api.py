"""POST/GET /templates over HTTP on both databases (unhappy paths first)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import SMALL_BODY_CAP, YAML, Api, items, ok, problem, unknown
from tests.conftest import example_text
from tests.flows import fixture_text

ROUTING = fixture_text("routing_workflow.yml")


def _nothing_imported(client: TestClient) -> None:
    assert items(client.get("/templates")) == []


# --- rejected imports leave no trace --------------------------------------------------------------


MALFORMED = [
    ("not-yaml", "roles: [1, 2", ["STRUCTURE", "not valid YAML"]),
    ("scalar", "just a sentence", ["STRUCTURE", "not a string"]),
    ("number", "42", ["STRUCTURE", "not"]),
    ("list", "- a\n- b\n", ["STRUCTURE", "not a list"]),
    ("empty", "", ["STRUCTURE", "the document is empty"]),
    ("blank", "\n  \n# nothing here\n", ["STRUCTURE", "the document is empty"]),
    ("no-sections", "workflow: {name: X}\n", ["STRUCTURE", "roles"]),
    ("deep-list", "[" * 50_000, ["STRUCTURE", "nested"]),
    ("deep-map", "{a: " * 5_000, ["STRUCTURE", "nested"]),
    ("huge-int", ROUTING.replace("threshold: 0}", f"threshold: {'9' * 5_000}}}"), ["4300 digits"]),
    ("nul-in-name", ROUTING.replace("name: Routing_Test", 'name: "A\\0B"'), ["control char"]),
    ("nan-threshold", ROUTING.replace("threshold: 0}", "threshold: .nan}"), ["nan"]),
    ("inf-threshold", ROUTING.replace("threshold: 0}", "threshold: .inf}"), ["inf"]),
]


def test_import_of_a_malformed_document_is_422(client: TestClient, subtests: Any) -> None:
    for case, body, words in MALFORMED:
        with subtests.test(case=case):
            assert body != ROUTING
            found = problem(client.post("/templates", content=body, headers=YAML), 422, *words)
            assert found["error"] == "DefinitionInvalid"
            rules = [v["rule"] for v in found["violations"]]
            assert rules and set(rules) == {"STRUCTURE"}
    _nothing_imported(client)


INVALID = [
    ("invalid_no_alpha.yml", {"R1", "R7"}),
    ("invalid_beta_no_strategy.yml", {"R5", "R7"}),
    ("invalid_omega_no_cerberus.yml", {"R9"}),
    ("constitutional_zero_agent.yaml", {"R6"}),
    ("complete_workflow_example.yaml", {"R7", "R8", "R10", "R13"}),
]


def test_import_of_an_invalid_workflow_lists_every_violation(
    client: TestClient, subtests: Any
) -> None:
    for example, rules in INVALID:
        with subtests.test(example=example):
            sent = client.post("/templates", content=example_text(example), headers=YAML)
            found = problem(sent, 422, *rules)
            assert found["error"] == "DefinitionInvalid"
            assert {v["rule"] for v in found["violations"]} == rules
            for v in found["violations"]:
                assert set(v) == {"rule", "protects", "element", "message"}
                assert v["message"].startswith(f"{v['rule']} {v['protects']}: ")
    _nothing_imported(client)


def test_unknown_guardian_type_is_named(client: TestClient) -> None:
    found = problem(
        client.post(
            "/templates", content=example_text("constitutional_zero_agent.yaml"), headers=YAML
        ),
        422,
        "STANDARD",
    )
    assert any("unknown type 'STANDARD'" in v["message"] for v in found["violations"])


def test_import_of_non_utf8_bytes_is_422(client: TestClient) -> None:
    body = ROUTING.encode("utf-16")
    problem(client.post("/templates", content=body, headers=YAML), 422, "UTF-8")
    problem(
        client.post("/templates", content=b"workflow: \xff\xfe\x80", headers=YAML), 422, "UTF-8"
    )
    _nothing_imported(client)


def test_oversized_import_is_413_and_imports_nothing(
    small_client: TestClient, client: TestClient
) -> None:
    body = ROUTING.encode()
    assert len(body) > SMALL_BODY_CAP
    found = problem(
        small_client.post("/templates", content=body, headers=YAML), 413, str(SMALL_BODY_CAP)
    )
    assert found["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while streaming
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    problem(small_client.post("/templates", content=chunks(), headers=YAML), 413, "exceeds")
    _nothing_imported(client)
    # The same document fits under the default cap.
    assert ok(client.post("/templates", content=body, headers=YAML), 201)["version"] == 1


def test_unknown_or_malformed_template_id(client: TestClient) -> None:
    for suffix in ("", "/yaml", "/graph"):
        missing = unknown()
        found = problem(client.get(f"/templates/{missing}{suffix}"), 404, missing)
        assert found["error"] == "UnknownTemplate"
        problem(client.get(f"/templates/not-a-uuid{suffix}"), 422, "template_id")


# --- imports, versions and exports ----------------------------------------------------------------


def test_import_returns_id_name_and_version(api: Api) -> None:
    created = api.import_template(ROUTING)
    assert set(created) == {"template_id", "name", "version", "warnings"}
    assert created["warnings"] == []
    assert (created["name"], created["version"]) == ("Routing_Test", 1)
    listed = items(api.c.get("/templates"))
    assert [(t["template_id"], t["name"], t["version"]) for t in listed] == [
        (created["template_id"], "Routing_Test", 1)
    ]


def test_reimport_makes_version_2_and_both_stay_usable(api: Api) -> None:
    first = api.import_template(ROUTING)
    second = api.import_template(ROUTING)
    assert second["version"] == 2 and second["template_id"] != first["template_id"]
    listed = {(t["name"], t["version"]): t["template_id"] for t in items(api.c.get("/templates"))}
    assert listed == {
        ("Routing_Test", 1): first["template_id"],
        ("Routing_Test", 2): second["template_id"],
    }
    for template in (first, second):
        made = api.instantiate(template["template_id"], {"amount": 1})
        described = ok(api.c.get(f"/instances/{made['workflow_id']}"))
        assert described["template_id"] == template["template_id"]


def test_get_template_describes_roles_interactions_and_components(api: Api) -> None:
    created = api.import_template(ROUTING)
    got = ok(api.c.get(f"/templates/{created['template_id']}"))
    assert got["template_id"] == created["template_id"] and got["version"] == 1
    roles = {r["name"]: (r["type"], r["strategy"]) for r in got["roles"]}
    assert roles["Origin"] == ("ALPHA", None)
    assert roles["Triage"] == ("BETA", "HETEROGENEOUS")
    assert roles["Finish"] == ("OMEGA", None)
    assert got["interactions"] == ["Inbox", "BigQ", "SmallQ", "Done", "Errors", "Timeouts"]
    finish_in = next(c for c in got["components"] if c["name"] == "Finish_In")
    assert (finish_in["role"], finish_in["interaction"], finish_in["direction"]) == (
        "Finish",
        "Done",
        "INBOUND",
    )
    assert [g["type"] for g in finish_in["guardians"]] == ["CERBERUS"]


def _comparable(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template.items() if k not in {"template_id", "version", "imported_at"}}


def test_yaml_export_reimports_to_an_equal_template(api: Api, subtests: Any) -> None:
    for name in [
        "routing_workflow.yml",
        "invoice_processing_workflow.yml",
        "mixed_agent_workflow.yaml",
    ]:
        with subtests.test(workflow=name):
            original = api.import_template(fixture_text(name))
            exported = api.c.get(f"/templates/{original['template_id']}/yaml")
            assert exported.status_code == 200
            assert exported.headers["content-type"].startswith("application/yaml")
            again = api.import_template(exported.text)
            assert again["name"] == original["name"] and again["version"] == 2
            before = ok(api.c.get(f"/templates/{original['template_id']}"))
            after = ok(api.c.get(f"/templates/{again['template_id']}"))
            assert _comparable(after) == _comparable(before)
            # Exporting the re-import gives the same text: the export is a fixed point.
            assert api.c.get(f"/templates/{again['template_id']}/yaml").text == exported.text


def test_graph_export_is_dot(api: Api, tmp_path: Any) -> None:
    created = api.import_template(ROUTING)
    graph = api.c.get(f"/templates/{created['template_id']}/graph")
    assert graph.status_code == 200
    assert graph.headers["content-type"].startswith("text/vnd.graphviz")
    assert graph.text.startswith('digraph "Routing_Test" {') and graph.text.rstrip().endswith("}")
    for name in ("Origin", "Triage", "Finish", "Inbox", "Errors"):
        assert f'"{name}' in graph.text
    dot = shutil.which("dot")
    if dot is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz 'dot' is required under CI")
        pytest.skip("Graphviz 'dot' is not installed")
    rendered = subprocess.run(
        [dot, "-Tsvg"], input=graph.text, capture_output=True, text=True, timeout=30, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "<svg" in rendered.stdout
