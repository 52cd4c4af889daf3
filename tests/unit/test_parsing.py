"""Parsing workflow YAML into the typed model: bad documents first, then every spelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chameleon_workflow.domain.definition import WorkflowDefinition
from chameleon_workflow.domain.enums import (
    Direction,
    GuardianType,
    RoleType,
    Strategy,
    ZombiePolicy,
)
from chameleon_workflow.domain.errors import DefinitionInvalid, Violation
from chameleon_workflow.domain.parsing import parse_workflow_mapping, parse_workflow_yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "prototype-examples"

MINIMAL = """\
workflow:
  name: Minimal
roles:
  - {name: Start, role_type: ALPHA}
  - {name: Work, role_type: BETA, strategy: HOMOGENEOUS}
interactions:
  - {name: Inbox}
components:
  - {name: Start_Out, role: Start, interaction: Inbox, direction: OUTBOUND}
  - {name: Work_In, role: Work, interaction: Inbox, direction: INBOUND}
"""


def doc() -> dict[str, Any]:
    return yaml.safe_load(MINIMAL)


def problems(source: str | object) -> list[Violation]:
    with pytest.raises(DefinitionInvalid) as caught:
        if isinstance(source, str):
            parse_workflow_yaml(source)
        else:
            parse_workflow_mapping(source)
    assert caught.value.violations, "DefinitionInvalid without violations"
    return caught.value.violations


def messages(source: str | object) -> list[str]:
    return [str(v) for v in problems(source)]


def with_changes(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """The minimal document with the element at ``path`` set to ``value``."""
    data = doc()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


# Documents that are not workflow definitions at all.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workflow: [unclosed", "STRUCTURE well-formed definition: the document is not valid YAML"),
        ("a: b: c", "the document is not valid YAML"),
        ("42", "the document must be a mapping with a 'workflow' key, not a number"),
        ("just words", "the document must be a mapping with a 'workflow' key, not a string"),
        (
            "- workflow: {name: x}",
            "the document must be a mapping with a 'workflow' key, not a list",
        ),
        ("", "the document is empty: send a workflow definition in YAML"),
        ("# only a comment\n---\n", "the document is empty"),
        ("  \n\n", "the document is empty"),
        ("null", "the document must be a mapping with a 'workflow' key, not null"),
        ("!!python/object/apply:os.system ['true']", "the document is not valid YAML"),
        ("workflow: {version: " + "9" * 5000 + "}", "holds a value YAML cannot load: Exceeds"),
        ("workflow: {description: 2024-13-45}", "holds a value YAML cannot load: month must"),
    ],
)
def test_a_document_that_is_not_a_mapping_is_rejected(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1
    assert expected in str(found[0])
    assert found[0].rule == "STRUCTURE"
    assert found[0].protects == "well-formed definition"


def test_a_mapping_without_workflow_reports_every_missing_piece() -> None:
    assert messages({"something": 1}) == [
        "STRUCTURE well-formed definition: the document has unknown key 'something' "
        "(known: workflow, roles, interactions, components, guardians)",
        "STRUCTURE well-formed definition: the document has no 'workflow' mapping",
        "STRUCTURE well-formed definition: workflow has no name",
        "STRUCTURE well-formed definition: the workflow has no 'roles' section",
        "STRUCTURE well-formed definition: the workflow has no 'interactions' section",
        "STRUCTURE well-formed definition: the workflow has no 'components' section",
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("workflow",), ["name"], "the document has a list as 'workflow'"),
        (("workflow", "name"), "  ", "workflow has a blank name"),
        (("workflow", "name"), 12, "workflow has a number as its name; a string is required"),
        (("workflow", "description"), ["x"], "workflow: description must be a string, not a list"),
        (
            ("workflow", "version"),
            [1],
            "workflow: version must be a number or a string, not a list",
        ),
        (("workflow", "version"), True, "version must be a number or a string, not a boolean"),
        (
            ("workflow", "zombie_timeout_seconds"),
            "300",
            "zombie_timeout_seconds must be a positive",
        ),
        (
            ("workflow", "max_reclaims"),
            0,
            "workflow: max_reclaims must be a positive integer up to 2147483647, not 0",
        ),
        (("workflow", "stale_token_limit_seconds"), 1.5, "up to 2147483647, not 1.5"),
        (("workflow", "zombie_timeout_seconds"), True, "up to 2147483647, not True"),
        (
            ("workflow", "zombie_policy"),
            3,
            "workflow: zombie_policy must be a string, not a number",
        ),
        (
            ("workflow", "zombie_timout_seconds"),
            3,
            "workflow has unknown key 'zombie_timout_seconds'",
        ),
        (("roles",), {"name": "x"}, "roles must be a list, not a mapping"),
        (("roles", 0), "Start", "roles[0] must be a mapping, not a string"),
        (("roles", 0, "name"), None, "roles[0] has no name"),
        (("roles", 0, "name"), "", "roles[0] has a blank name"),
        (("roles", 0, "role_type"), None, "role 'Start' has no role_type"),
        (("roles", 0, "role_type"), ["ALPHA"], "role 'Start': type must be a string, not a list"),
        (
            ("roles", 0, "type"),
            "OMEGA",
            "role 'Start' gives different values for role_type and type",
        ),
        (("roles", 0, "stratgy"), "HOMOGENEOUS", "role 'Start' has unknown key 'stratgy'"),
        (("roles", 0, "zombie_timeout_seconds"), 2**31, "up to 2147483647, not 2147483648"),
        (("roles", 0, "max_reclaims"), -2, "role 'Start': max_reclaims must be a positive integer"),
        (("interactions", 0, "name"), ["Inbox"], "interactions[0] has a list as its name"),
        (("interactions", 0, "stale_token_limit_seconds"), "1h", "must be a positive integer"),
        (("components", 0, "role"), None, "component 'Start_Out' names no role"),
        (
            ("components", 0, "interaction"),
            {"n": 1},
            "component 'Start_Out' must name its interaction",
        ),
        (("components", 0, "direction"), None, "component 'Start_Out' has no direction"),
        (("components", 0, "role_name"), "Work", "gives different values for role and role_name"),
        (("components", 0, "guardian"), "PASS_THRU", "guardian must be a mapping, not a string"),
        (("components", 0, "guardians"), {"type": "PASS_THRU"}, "guardians must be a list"),
        (
            ("components", 0, "guardians"),
            ["PASS_THRU"],
            "Start_Out'.guardians[0] must be a mapping",
        ),
        (("components", 0, "guardian"), {"name": "G"}, "guardian 'G' has no type"),
        (("components", 0, "guardian"), {"type": "PASS_THRU", "config": [1]}, "config must be a"),
        (("components", 0, "guardian"), {"type": "PASS_THRU", "config": {"s": {1}}}, "JSON cannot"),
        (("components", 0, "ai_context"), {(1, 2): "x"}, "ai_context has a list as a key"),
        (("components", 0, "ai_context"), {1: "a", "1": "b"}, "has two keys that both read '1'"),
        (("workflow", "schema_json"), [b"raw"], "workflow: schema_json holds a bytes"),
        (("components", 0, "guardian"), {"type": "PASS_THRU", "name": " "}, "has a blank name"),
        (("components", 0, "guardian"), {"type": "PASS_THRU", "when": 1}, "unknown key 'when'"),
        (
            ("components", 0, "guardian"),
            {"type": "PASS_THRU", "component_name": "Work_In"},
            "component 'Start_Out'.guardian is nested in component 'Start_Out' but names component",
        ),
        (("guardians",), "all", "guardians must be a list, not a string"),
        (("roles", 0, "name"), "Sta\x00rt", "roles[0] has a name with control characters"),
        (("roles", 0, "name"), "Two\nlines", "roles[0] has a name with control characters"),
        (("components", 0, "role"), "St\tart", "must name its role with a non-blank string"),
        (("workflow", "description"), "a\x00b", "description must not contain a NUL character"),
        (("workflow", "ai_context"), {"k": "a\x00"}, "ai_context holds text with a NUL"),
        (("workflow", "ai_context"), {"a\x00": 1}, "ai_context has a key with a NUL"),
        (("workflow", "ai_context"), [float("inf")], "holds inf, which JSON cannot represent"),
        (
            ("components", 0, "guardian"),
            {"type": "CRITERIA_GATE", "config": {"field": "a", "threshold": float("nan")}},
            "config holds nan, which JSON cannot represent",
        ),
        (("guardians",), [{"type": "PASS_THRU"}], "guardians[0] names no component"),
    ],
)
def test_a_structural_problem_is_named_precisely(
    path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    found = messages(with_changes(path, value))
    assert any(expected in m for m in found), found


def test_free_form_values_must_be_trees() -> None:
    text = MINIMAL.replace("name: Minimal", "name: Minimal\n  ai_context: &loop {again: *loop}")
    assert "workflow: ai_context refers to itself (a cycle of YAML anchors)" in " ".join(
        messages(text)
    )
    deep: Any = "bottom"
    for _ in range(150):
        deep = [deep]
    assert "schema_json is nested more than 100 levels deep" in " ".join(
        messages(with_changes(("workflow", "schema_json"), deep))
    )


def test_absurdly_nested_yaml_is_rejected_not_crashed() -> None:
    found = messages("[" * 5000 + "]" * 5000)
    assert found == ["STRUCTURE well-formed definition: the document is nested too deeply"]


def test_free_form_values_are_kept_as_json_compatible_data() -> None:
    text = MINIMAL.replace(
        "name: Minimal",
        "name: Minimal\n  ai_context: {due: 2025-01-31, 7: seven, true: yes, null: none}",
    )
    parsed = parse_workflow_yaml(text)
    assert parsed.ai_context == {"due": "2025-01-31", "7": "seven", "true": True, "null": "none"}


@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("name: Minimal", 'name: "Mini\\0mal"', "workflow has a name with control characters"),
        ("{name: Inbox}", "{name: Inbox, ai_context: [.nan]}", "holds nan"),
        ("{name: Inbox}", "{name: Inbox, ai_context: [-.inf]}", "holds -inf"),
    ],
)
def test_values_a_database_cannot_store_are_rejected(
    find: str, replace: str, expected: str
) -> None:
    assert expected in " ".join(messages(MINIMAL.replace(find, replace)))


def test_a_section_given_twice_is_ambiguous() -> None:
    data = doc()
    data["workflow"]["roles"] = data["roles"]
    assert "section 'roles' appears both at the top level and under 'workflow'" in " ".join(
        messages(data)
    )


def test_a_guardian_for_an_unknown_component_is_a_dangling_reference() -> None:
    found = problems(
        with_changes(("guardians",), [{"name": "G", "component": "Nope", "type": "CERBERUS"}])
    )
    assert [str(v) for v in found] == [
        "R15 Referential integrity: guardian 'G' names unknown component 'Nope': "
        "add a component named 'Nope', or name one of 'Start_Out', 'Work_In'"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("roles", 0, "role_type"),
            "STANDARD",
            "R6 Known vocabulary: role 'Start' has unknown type 'STANDARD' "
            "(known: ALPHA, BETA, OMEGA, EPSILON, TAU); write one of those",
        ),
        (
            ("roles", 1, "strategy"),
            "MIXED",
            "R6 Known vocabulary: role 'Work' has unknown strategy 'MIXED' "
            "(known: HOMOGENEOUS, HETEROGENEOUS); write one of those",
        ),
        (
            ("roles", 1, "zombie_policy"),
            "explode",
            "R6 Known vocabulary: role 'Work' has unknown zombie_policy 'explode' "
            "(known: fail, requeue); write one of those",
        ),
        (
            ("components", 0, "direction"),
            "SIDEWAYS",
            "R6 Known vocabulary: component 'Start_Out' has unknown direction 'SIDEWAYS' "
            "(known: INBOUND, OUTBOUND); write one of those",
        ),
        (
            ("components", 0, "guardian"),
            {"type": "STANDARD"},
            "R6 Known vocabulary: guardian 'Start_Out_guardian_1' has unknown type 'STANDARD' "
            "(known: PASS_THRU, CRITERIA_GATE, TTL_CHECK, COMPOSITE, CERBERUS, DIRECTIONAL_FILTER,"
            " PILOT_APPROVAL, CONDITIONAL_INJECTOR); write one of those",
        ),
    ],
)
def test_unknown_vocabulary_is_r6_and_lists_the_known_words(
    path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    found = problems(with_changes(path, value))
    assert [str(v) for v in found] == [expected]
    assert found[0].rule == "R6"


def test_every_problem_of_a_document_is_reported_together() -> None:
    data = doc()
    data["roles"][0]["role_type"] = "STANDARD"
    data["roles"][1]["name"] = ""
    data["interactions"].append("Outbox")
    data["components"][0]["direction"] = "UP"
    data["workflow"]["max_reclaims"] = "many"
    found = problems(data)
    assert [v.rule for v in found] == ["STRUCTURE", "R6", "STRUCTURE", "STRUCTURE", "R6"]
    assert [v.element for v in found] == [
        "workflow",
        "role 'Start'",
        "roles[1]",
        "interactions[1]",
        "component 'Start_Out'",
    ]


def test_the_zero_agent_example_fails_on_its_unknown_guardian_type() -> None:
    found = problems((EXAMPLES / "constitutional_zero_agent.yaml").read_text(encoding="utf-8"))
    assert [v.rule for v in found] == ["R6", "R6"]
    assert str(found[0]) == (
        "R6 Known vocabulary: guardian 'Timeout_Sweep_guardian_1' has unknown type 'STANDARD' "
        "(known: PASS_THRU, CRITERIA_GATE, TTL_CHECK, COMPOSITE, CERBERUS, DIRECTIONAL_FILTER, "
        "PILOT_APPROVAL, CONDITIONAL_INJECTOR); "
        "write one of those"
    )
    assert found[1].element == "guardian 'Remedial_Inbound_guardian_1'"


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["name", "role_type", "type", "direction", "role", "guardian", "config"]
)


@settings(max_examples=150, deadline=None)
@given(data=json_like)
def test_any_loaded_value_either_parses_or_raises_definition_invalid(data: object) -> None:
    try:
        parse_workflow_mapping(data)
    except DefinitionInvalid as exc:
        assert exc.violations


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["roles", "interactions", "components"]),
    key=field_names,
    value=json_like,
)
def test_any_damaged_element_either_parses_or_raises_definition_invalid(
    section: str, key: str, value: object
) -> None:
    data = doc()
    data[section][0][key] = value
    try:
        parse_workflow_mapping(data)
    except DefinitionInvalid as exc:
        assert exc.violations


# What parses, and into what.


def test_the_minimal_document_parses_into_the_typed_model() -> None:
    parsed = parse_workflow_yaml(MINIMAL)
    assert isinstance(parsed, WorkflowDefinition)
    assert parsed.name == "Minimal"
    assert [(r.name, r.type, r.strategy) for r in parsed.roles] == [
        ("Start", RoleType.ALPHA, None),
        ("Work", RoleType.BETA, Strategy.HOMOGENEOUS),
    ]
    assert parsed.components[1].direction is Direction.INBOUND
    assert parsed.components[0].guardians == ()


def test_sections_may_sit_under_workflow_and_use_every_spelling() -> None:
    text = """\
workflow:
  name: Spelled
  version: 2.5
  roles:
    - {name: A, type: alpha}
    - {name: B, role_type: Beta, strategy: heterogeneous}
  interactions: [{name: Q}]
  components:
    - name: C1
      role_name: A
      interaction_name: Q
      direction: outbound
      guardian: {name: First, type: pass_thru}
      guardians:
        - {type: CRITERIA_GATE, config: {condition: "x > 1"}}
    - {name: C2, role: B, interaction: Q, direction: INBOUND}
  guardians:
    - {name: Late, component: C1, type: TTL_CHECK}
    - {component_name: C2, type: CERBERUS, config: {wait: true}, description: waits}
"""
    parsed = parse_workflow_yaml(text)
    assert parsed.version == "2.5"
    assert parsed.roles[0].type is RoleType.ALPHA
    assert parsed.roles[1].strategy is Strategy.HETEROGENEOUS
    first, second = parsed.components
    assert (first.role, first.interaction, first.direction) == ("A", "Q", Direction.OUTBOUND)
    assert [(g.name, g.type) for g in first.guardians] == [
        ("First", GuardianType.PASS_THRU),
        ("C1_guardian_2", GuardianType.CRITERIA_GATE),
        ("Late", GuardianType.TTL_CHECK),
    ]
    assert first.guardians[1].config == {"condition": "x > 1"}
    assert second.guardians[0].name == "C2_guardian_1"
    assert second.guardians[0].config == {"wait": True}
    assert second.guardians[0].description == "waits"


@pytest.mark.parametrize(("raw", "stored"), [("1", "1"), ("1.0", "1.0"), ("'v2-beta'", "v2-beta")])
def test_the_version_is_kept_as_text(raw: str, stored: str) -> None:
    parsed = parse_workflow_yaml(
        MINIMAL.replace("name: Minimal", f"name: Minimal\n  version: {raw}")
    )
    assert parsed.version == stored


def test_governance_keys_are_read_from_workflow_roles_and_interactions() -> None:
    data = doc()
    data["workflow"].update(
        zombie_timeout_seconds=120,
        zombie_policy="REQUEUE",
        max_reclaims=2,
        stale_token_limit_seconds=600,
    )
    data["roles"][1].update(zombie_timeout_seconds=30, zombie_policy="Fail", max_reclaims=5)
    data["interactions"][0]["stale_token_limit_seconds"] = 45
    parsed = parse_workflow_mapping(data)
    assert (parsed.zombie_timeout_seconds, parsed.zombie_policy) == (120, ZombiePolicy.REQUEUE)
    assert (parsed.max_reclaims, parsed.stale_token_limit_seconds) == (2, 600)
    work = parsed.roles[1]
    assert (work.zombie_timeout_seconds, work.zombie_policy, work.max_reclaims) == (
        30,
        ZombiePolicy.FAIL,
        5,
    )
    assert parsed.interactions[0].stale_token_limit_seconds == 45
    assert parsed.roles[0].zombie_policy is None


def test_the_invoice_example_parses_with_nested_sections_and_guardians() -> None:
    parsed = parse_workflow_yaml((EXAMPLES / "invoice_processing_workflow.yml").read_text())
    assert parsed.name == "Invoice_Processing"
    assert parsed.version == "1"
    assert len(parsed.roles) == 6 and len(parsed.interactions) == 5
    reconciler = next(c for c in parsed.components if c.name == "Reconciler_From_Queue")
    assert reconciler.guardians[0].name == "Cerberus_Reconciliation_Guard"
    assert reconciler.guardians[0].type is GuardianType.CERBERUS
    assert parsed.ate_interaction == "Error_Queue"
    assert parsed.chronos_interaction == "Timeout_Queue"


def test_the_mixed_example_parses_with_top_level_sections_and_guardians() -> None:
    parsed = parse_workflow_yaml((EXAMPLES / "mixed_agent_workflow.yaml").read_text())
    assert parsed.ai_context["purpose"].startswith("Showcase")
    assert parsed.schema_json == {"topology": "sequential pipeline with mixed agents"}
    approval = next(c for c in parsed.components if c.name == "Human_To_Approval")
    assert approval.guardians[0].config == {
        "field": "approval_status",
        "operator": "EQ",
        "threshold": "APPROVED",
    }
    assert sum(len(c.guardians) for c in parsed.components) == 9
