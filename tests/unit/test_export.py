"""Export: canonical YAML that re-imports to the same definition, and Graphviz DOT."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chameleon_workflow.domain.definition import (
    ComponentDef,
    GuardianDef,
    InteractionDef,
    RoleDef,
    WorkflowDefinition,
)
from chameleon_workflow.domain.enums import (
    Direction,
    GuardianType,
    RoleType,
    Strategy,
    ZombiePolicy,
)
from chameleon_workflow.domain.export import dot_quote, to_dot, to_yaml
from chameleon_workflow.domain.parsing import parse_workflow_yaml
from chameleon_workflow.domain.validation import validate

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "prototype-examples"
VALID_EXAMPLES = ["invoice_processing_workflow.yml", "mixed_agent_workflow.yaml"]

NASTY = WorkflowDefinition(
    name='Flow "one" (test)',
    description="two\nlines, a NEL\x85, a tab\t and a line separator\u2028",
    roles=(
        RoleDef('Start "A"', RoleType.ALPHA),
        RoleDef("Back\\slash 'single'", RoleType.BETA, Strategy.HOMOGENEOUS),
        RoleDef("Same", RoleType.OMEGA),
    ),
    interactions=(InteractionDef("Same"), InteractionDef("Queue (1); {x} -> y")),
    components=(
        ComponentDef("c1", 'Start "A"', "Same", Direction.OUTBOUND),
        ComponentDef(
            'c2 "quoted"',
            "Back\\slash 'single'",
            "Same",
            Direction.INBOUND,
            (GuardianDef("g", GuardianType.PASS_THRU), GuardianDef("h", GuardianType.TTL_CHECK)),
        ),
        ComponentDef("c3", "Same", "Queue (1); {x} -> y", Direction.INBOUND),
        ComponentDef("c4", "Ghost", "Nowhere", Direction.OUTBOUND),
    ),
)


def example(name: str) -> WorkflowDefinition:
    return parse_workflow_yaml((EXAMPLES / name).read_text(encoding="utf-8"))


# YAML export.


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_a_valid_example_round_trips_through_yaml(name: str) -> None:
    definition = example(name)
    exported = to_yaml(definition)
    assert parse_workflow_yaml(exported) == definition
    assert to_yaml(parse_workflow_yaml(exported)) == exported  # canonical: a fixed point
    assert validate(parse_workflow_yaml(exported)) == []


def test_the_canonical_form_nests_everything_under_workflow() -> None:
    document = yaml.safe_load(to_yaml(example("mixed_agent_workflow.yaml")))
    assert list(document) == ["workflow"]
    head = document["workflow"]
    assert list(head)[:3] == ["name", "description", "version"]
    assert head["version"] == "1"
    assert {"roles", "interactions", "components"} <= set(head)
    assert "guardians" not in head
    approval = next(c for c in head["components"] if c["name"] == "Human_To_Approval")
    assert approval["guardians"][0]["name"] == "Human_Approval_Guard"
    assert approval["guardians"][0]["type"] == "CRITERIA_GATE"
    assert set(approval) == {
        "name",
        "role",
        "interaction",
        "direction",
        "description",
        "ai_context",
        "guardians",
    }


def test_none_fields_are_omitted_and_governance_keys_are_kept() -> None:
    definition = WorkflowDefinition(
        name="Governed",
        roles=(
            RoleDef(
                "R", RoleType.BETA, zombie_timeout_seconds=9, zombie_policy=ZombiePolicy.REQUEUE
            ),
        ),
        interactions=(InteractionDef("Q", stale_token_limit_seconds=60),),
        components=(),
        zombie_policy=ZombiePolicy.FAIL,
        max_reclaims=4,
    )
    exported = to_yaml(definition)
    head = yaml.safe_load(exported)["workflow"]
    assert head["zombie_policy"] == "fail" and head["max_reclaims"] == 4
    assert "description" not in head and "version" not in head
    assert head["roles"] == [
        {"name": "R", "role_type": "BETA", "zombie_timeout_seconds": 9, "zombie_policy": "requeue"}
    ]
    assert parse_workflow_yaml(exported) == definition


def test_generated_guardian_names_are_exported_and_kept() -> None:
    definition = example("invalid_beta_no_strategy.yml")
    assert parse_workflow_yaml(to_yaml(definition)) == definition


def test_tricky_text_survives_the_round_trip() -> None:
    assert parse_workflow_yaml(to_yaml(NASTY)) == NASTY


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12
).filter(lambda s: s.strip() != "")
# Free text may hold anything a JSON store keeps: everything but NUL (and lone surrogates).
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=10,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
optional_text = st.none() | texts
positive = st.none() | st.integers(min_value=1, max_value=10**9)
guardians = st.builds(
    GuardianDef,
    name=names,
    type=st.sampled_from(GuardianType),
    config=st.dictionaries(texts, json_values, max_size=3),
    description=optional_text,
    ai_context=json_values,
)
roles = st.builds(
    RoleDef,
    name=names,
    type=st.sampled_from(RoleType),
    strategy=st.none() | st.sampled_from(Strategy),
    description=optional_text,
    ai_context=json_values,
    zombie_timeout_seconds=positive,
    zombie_policy=st.none() | st.sampled_from(ZombiePolicy),
    max_reclaims=positive,
)
interactions = st.builds(
    InteractionDef,
    name=names,
    description=optional_text,
    ai_context=json_values,
    stale_token_limit_seconds=positive,
)
components = st.builds(
    ComponentDef,
    name=names,
    role=names,
    interaction=names,
    direction=st.sampled_from(Direction),
    guardians=st.lists(guardians, max_size=2).map(tuple),
    description=optional_text,
    ai_context=json_values,
)
definitions = st.builds(
    WorkflowDefinition,
    name=names,
    roles=st.lists(roles, max_size=3).map(tuple),
    interactions=st.lists(interactions, max_size=3).map(tuple),
    components=st.lists(components, max_size=3).map(tuple),
    description=optional_text,
    version=optional_text,
    ai_context=json_values,
    schema_json=json_values,
    zombie_timeout_seconds=positive,
    zombie_policy=st.none() | st.sampled_from(ZombiePolicy),
    max_reclaims=positive,
    stale_token_limit_seconds=positive,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=definitions)
def test_any_definition_round_trips_through_yaml(definition: WorkflowDefinition) -> None:
    assert parse_workflow_yaml(to_yaml(definition)) == definition


# Graphviz DOT export.


def test_dot_draws_roles_as_typed_boxes_and_components_as_edges() -> None:
    dot = to_dot(example("invoice_processing_workflow.yml"))
    assert dot.startswith('digraph "Invoice_Processing" {')
    assert 'r0 [shape=invhouse, label="Invoice_Creator\\n[ALPHA]"];' in dot
    assert 'r3 [shape=house, label="Invoice_Reconciler\\n[OMEGA]"];' in dot
    assert 'i0 [shape=ellipse, label="Validation_Queue"];' in dot
    assert 'r0 -> i0 [label="", tooltip="Create_To_Validation"];' in dot
    assert 'i2 -> r3 [label="CERBERUS", tooltip="Reconciler_From_Queue"];' in dot


def test_dot_escapes_every_user_text() -> None:
    dot = to_dot(NASTY)
    assert 'digraph "Flow \\"one\\" (test)" {' in dot
    assert "label=\"Back\\\\slash 'single'\\n[BETA]\"" in dot
    assert 'label="Queue (1); {x} -> y"' in dot
    assert 'i0 -> r1 [label="PASS_THRU, TTL_CHECK", tooltip="c2 \\"quoted\\""];' in dot
    assert "(undefined)" in dot  # dangling references still draw


@pytest.mark.parametrize(
    ("text", "quoted"),
    [("plain", '"plain"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("a\r\nb", '"a\\nb"')],
)
def test_dot_quote(text: str, quoted: str) -> None:
    assert dot_quote(text) == quoted


def _dot_binary() -> str:
    found = shutil.which("dot")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz 'dot' is required in CI")
        pytest.skip("Graphviz 'dot' is not installed")
    return found


@pytest.mark.parametrize("name", [*VALID_EXAMPLES, "nasty"])
def test_graphviz_accepts_the_dot_output(name: str) -> None:
    binary = _dot_binary()
    definition = NASTY if name == "nasty" else example(name)
    result = subprocess.run(
        [binary, "-Tsvg"], input=to_dot(definition), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "<svg" in result.stdout
