"""The constitutional rules R1-R15: each one broken, then kept, then the reference files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from chameleon_workflow.domain.errors import DefinitionInvalid, Violation
from chameleon_workflow.domain.parsing import parse_workflow_yaml
from chameleon_workflow.domain.validation import check, validate

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "prototype-examples"

MINIMAL = """\
workflow:
  name: Minimal
  version: 1
roles:
  - {name: Start, role_type: ALPHA}
  - {name: Work, role_type: BETA, strategy: HOMOGENEOUS}
  - {name: Finish, role_type: OMEGA}
  - {name: Fixer, role_type: EPSILON}
  - {name: Clock, role_type: TAU}
interactions:
  - {name: Inbox}
  - {name: Done}
  - {name: Errors}
  - {name: Timeouts}
components:
  - {name: Start_Out, role: Start, interaction: Inbox, direction: OUTBOUND}
  - {name: Work_In, role: Work, interaction: Inbox, direction: INBOUND}
  - {name: Work_Out, role: Work, interaction: Done, direction: OUTBOUND}
  - {name: Work_Fail, role: Work, interaction: Errors, direction: OUTBOUND}
  - name: Finish_In
    role: Finish
    interaction: Done
    direction: INBOUND
    guardian: {name: Finish_Gate, type: CERBERUS}
  - name: Fixer_In
    role: Fixer
    interaction: Errors
    direction: INBOUND
    guardian: {name: Fixer_Gate, type: PASS_THRU}
  - {name: Fixer_Out, role: Fixer, interaction: Timeouts, direction: OUTBOUND}
  - {name: Clock_In, role: Clock, interaction: Timeouts, direction: INBOUND}
"""

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]


def violations_after(*mutations: Mutation) -> list[Violation]:
    doc = yaml.safe_load(MINIMAL)
    for mutate in mutations:
        mutate(doc)
    return validate(parse_workflow_yaml(yaml.safe_dump(doc)))


def _find(doc: Doc, section: str, name: str) -> dict[str, Any]:
    return next(item for item in doc[section] if item["name"] == name)


def add(section: str, snippet: str) -> Mutation:
    """Append the YAML flow mapping ``snippet`` to ``section``."""
    return lambda d: d[section].append(yaml.safe_load(snippet))


def update(section: str, name: str, snippet: str) -> Mutation:
    return lambda d: _find(d, section, name).update(yaml.safe_load(snippet))


def drop(section: str, name: str, key: str | None = None) -> Mutation:
    """Remove a whole element, or one key of it."""

    def mutate(d: Doc) -> None:
        if key is None:
            d[section] = [item for item in d[section] if item["name"] != name]
        else:
            _find(d, section, name).pop(key)

    return mutate


def guard(component: str, snippet: str) -> Mutation:
    """Replace a component's guardians with the YAML flow list ``snippet``."""

    def mutate(d: Doc) -> None:
        target = _find(d, "components", component)
        target.pop("guardian", None)
        target["guardians"] = yaml.safe_load(snippet)

    return mutate


def second_route(guardians: str = "[]") -> Mutation:
    """Give Work a second normal route (also into Done) carrying ``guardians``."""
    return add(
        "components",
        "{name: Work_Out_2, role: Work, interaction: Done, direction: OUTBOUND, "
        f"guardians: {guardians}}}",
    )


GATE = "[{name: Route_Gate, type: CRITERIA_GATE, config: {condition: %s}}]"
POLICY = "[{name: Policy, type: PASS_THRU, config: {interaction_policy: {branches: %s}}}]"
DEFAULT = "[{name: %s, type: PASS_THRU, config: {default: true}}]"
OMEGA_2 = "{name: Finish_2_In, role: Finish_2, interaction: Done, direction: INBOUND}"

BROKEN: list[tuple[str, list[Mutation], str]] = [
    (
        "R1",
        [drop("roles", "Start"), drop("components", "Start_Out")],
        "R1 Single origin: workflow 'Minimal' has no ALPHA role; exactly one is required",
    ),
    (
        "R1",
        [
            add("roles", "{name: Start_2, role_type: ALPHA}"),
            add("components", "{name: S2, role: Start_2, interaction: Inbox, direction: OUTBOUND}"),
        ],
        "R1 Single origin: workflow has 2 ALPHA roles ('Start', 'Start_2'); exactly one",
    ),
    (
        "R2",
        [update("roles", "Finish", "{role_type: BETA, strategy: HOMOGENEOUS}")],
        "R2 Single terminal: workflow 'Minimal' has no OMEGA role",
    ),
    (
        "R2",
        [add("roles", "{name: Finish_2, type: OMEGA}"), add("components", OMEGA_2)],
        "R2 Single terminal: workflow has 2 OMEGA roles",
    ),
    (
        "R3",
        [update("roles", "Fixer", "{role_type: BETA, strategy: HOMOGENEOUS}")],
        "R3 Error handling (Ate path): workflow 'Minimal' has no EPSILON role",
    ),
    ("R3", [add("roles", "{name: Fixer_2, type: EPSILON}")], "has 2 EPSILON roles"),
    (
        "R4",
        [update("roles", "Clock", "{role_type: BETA, strategy: HOMOGENEOUS}")],
        "R4 Timeout handling (Chronos path): workflow 'Minimal' has no TAU role",
    ),
    ("R4", [add("roles", "{name: Clock_2, type: TAU}")], "has 2 TAU roles"),
    (
        "R5",
        [drop("roles", "Work", "strategy")],
        "R5 Decomposition strategy: BETA role 'Work' has no strategy "
        "(HOMOGENEOUS or HETEROGENEOUS)",
    ),
    (
        "R7",
        [add("interactions", "{name: Orphan}")],
        "R7 Flow integrity: interaction 'Orphan' has no producer",
    ),
    (
        "R7",
        [
            add("interactions", "{name: Orphan}"),
            add("components", "{name: W2, role: Work, interaction: Orphan, direction: OUTBOUND}"),
        ],
        "R7 Flow integrity: interaction 'Orphan' has no consumer",
    ),
    (
        "R8",
        [drop("components", "Fixer_In", "guardian")],
        "R8 Ate guard: component 'Fixer_In' feeds EPSILON without a guardian",
    ),
    (
        "R9",
        [drop("components", "Finish_In", "guardian")],
        "R9 Cerberus mandate: component 'Finish_In' feeds OMEGA without a CERBERUS guardian",
    ),
    (
        "R9",
        [guard("Finish_In", "[{name: Wrong, type: PASS_THRU}]")],
        "R9 Cerberus mandate: component 'Finish_In' feeds OMEGA without a CERBERUS guardian",
    ),
    (
        "R10",
        [add("components", "{name: Start_In, role: Start, interaction: Done, direction: INBOUND}")],
        "R10 Directional integrity: ALPHA role 'Start' must not have INBOUND component 'Start_In'",
    ),
    (
        "R10",
        [update("components", "Start_Out", "{role: Work}")],
        "R10 Directional integrity: ALPHA role 'Start' has no OUTBOUND component",
    ),
    (
        "R10",
        [add("components", "{name: F_Out, role: Finish, interaction: Inbox, direction: OUTBOUND}")],
        "R10 Directional integrity: OMEGA role 'Finish' must not have OUTBOUND component 'F_Out'",
    ),
    (
        "R10",
        [update("components", "Finish_In", "{role: Work}")],
        "R10 Directional integrity: OMEGA role 'Finish' has no INBOUND component",
    ),
    (
        "R11",
        [guard("Work_Out", GATE % "'amount >'")],
        "R11 Safe policy language: guardian 'Route_Gate' on component 'Work_Out': "
        "condition 'amount >' does not parse",
    ),
    (
        "R11",
        [guard("Work_Out", GATE % "\"actor_id == 'bob'\"")],
        "condition \"actor_id == 'bob'\" refers to actor_id",
    ),
    (
        "R11",
        [guard("Work_Out", "[{name: G, type: CRITERIA_GATE, config: {criteria: \"open('x')\"}}]")],
        "criteria \"open('x')\" does not parse",
    ),
    (
        "R11",
        [guard("Work_Out", POLICY % "[{condition: x.y, next_interaction: Done}]")],
        "interaction_policy branch 0 condition 'x.y' does not parse",
    ),
    (
        "R11",
        [
            guard(
                "Work_Out",
                "[{name: C, type: COMPOSITE, config: {logic: AND, steps: "
                "[{type: CRITERIA_GATE, config: {condition: \"actor_id in ['a']\"}}]}}]",
            )
        ],
        "step C.steps[0] condition \"actor_id in ['a']\" refers to actor_id",
    ),
    (
        "R11",
        [
            guard(
                "Work_Out",
                "[{name: Who, type: CRITERIA_GATE, config: {field: actor_id, operator: EQ, "
                "threshold: bob}}]",
            )
        ],
        "guardian 'Who' on component 'Work_Out': field refers to actor_id",
    ),
    (
        "R11",
        [
            second_route(
                "[{name: F, type: DIRECTIONAL_FILTER, "
                "config: {routing_key: actor_id, routes: {a: Done}}}]"
            )
        ],
        "routing_key refers to actor_id",
    ),
    (
        "R12",
        [second_route()],
        "R12 Deterministic routing: role 'Work' has 2 routes ('Work_Out', 'Work_Out_2') "
        "but no routing rule or default route",
    ),
    (
        "R12",
        [second_route("[{name: Also, type: PASS_THRU, config: {note: plain}}]")],
        "no routing rule or default route",
    ),
    (
        "R12",
        [guard("Work_Out", DEFAULT % "D1"), second_route(DEFAULT % "D2")],
        "role 'Work' marks 2 of its routes ('Work_Out', 'Work_Out_2') default; at most one may be",
    ),
    (
        "R14",
        [add("interactions", "{name: Inbox}")],
        "R14 Unique names: 2 interactions are named 'Inbox'",
    ),
    ("R14", [add("roles", "{name: Work, type: BETA, strategy: HOMOGENEOUS}")], "2 roles are named"),
    (
        "R14",
        [add("components", "{name: Work_In, role: Work, interaction: Inbox, direction: INBOUND}")],
        "2 components are named 'Work_In'",
    ),
    (
        "R14",
        [guard("Work_In", "[{name: Fixer_Gate, type: PASS_THRU}]")],
        "2 guardians are named 'Fixer_Gate'",
    ),
    (
        "R15",
        [update("components", "Work_Out", "{role: Nobody}")],
        "R15 Referential integrity: component 'Work_Out' names unknown role 'Nobody'",
    ),
    (
        "R15",
        [update("components", "Work_Out", "{interaction: Nowhere}")],
        "component 'Work_Out' names unknown interaction 'Nowhere'",
    ),
]


@pytest.mark.parametrize(("rule", "mutations", "expected"), BROKEN)
def test_a_broken_rule_is_reported_with_its_id_article_and_element(
    rule: str, mutations: list[Mutation], expected: str
) -> None:
    found = [v for v in violations_after(*mutations) if v.rule == rule]
    assert any(expected in str(v) for v in found), [str(v) for v in found]
    assert all(v.element and v.protects for v in found)


R13_BROKEN: list[tuple[str, str]] = [
    ("{type: CRITERIA_GATE}", "needs a 'condition' (or 'criteria'), or 'field' + 'operator'"),
    ("{type: CRITERIA_GATE, config: {field: x, threshold: 3}}", "needs an 'operator'"),
    (
        "{type: CRITERIA_GATE, config: {field: x, operator: ABOUT, threshold: 3}}",
        "unknown operator 'ABOUT' (known: GT, LT, GE, LE, EQ, NE, IN)",
    ),
    ("{type: CRITERIA_GATE, config: {field: x, operator: GT}}", "needs a 'threshold'"),
    ("{type: CRITERIA_GATE, config: {operator: GT, threshold: 1}}", "'field' must name"),
    ("{type: CRITERIA_GATE, config: {field: x, operator: IN, threshold: 3}}", "IN needs a list"),
    ("{type: CRITERIA_GATE, config: {field: x, operator: GT, threshold: [1]}}", "GT needs a"),
    ("{type: CRITERIA_GATE, config: {field: x, operator: GT, required_value: 1}}", "means EQ"),
    (
        "{type: CRITERIA_GATE, config: {field: x, threshold: 1, required_value: 1}}",
        "gives both 'threshold' and 'required_value'",
    ),
    (
        "{type: CRITERIA_GATE, config: {condition: a > 1, field: a}}",
        "gives both a condition and field; give one",
    ),
    (
        "{type: CRITERIA_GATE, config: {condition: a > 1, criteria: a > 2}}",
        "gives both 'condition' and 'criteria'",
    ),
    ("{type: CRITERIA_GATE, config: {condition: ' '}}", "'condition' must be a non-blank string"),
    ("{type: CRITERIA_GATE, config: {condition: 3}}", "'condition' must be a non-blank string"),
    ("{type: TTL_CHECK, config: {max_age_seconds: 5}}", "needs 'reference_field'"),
    ("{type: TTL_CHECK, config: {reference_field: t, max_age_seconds: 0}}", "positive integer"),
    ("{type: TTL_CHECK, config: {reference_field: t, max_age_seconds: '5'}}", "positive integer"),
    ("{type: COMPOSITE, config: {steps: [{type: PASS_THRU}]}}", "needs 'logic' AND or OR"),
    ("{type: COMPOSITE, config: {logic: AND, steps: []}}", "non-empty 'steps'"),
    ("{type: COMPOSITE, config: {logic: OR, steps: [{type: CERBERUS}]}}", "must be a gate"),
    ("{type: COMPOSITE, config: {logic: OR, steps: [{type: STANDARD}]}}", "type 'STANDARD'"),
    ("{type: COMPOSITE, config: {logic: OR, steps: [PASS_THRU]}}", "must be a mapping"),
    ("{type: COMPOSITE, config: {logic: OR, steps: [{type: PASS_THRU, x: 1}]}}", "unknown key"),
    (
        "{type: COMPOSITE, config: {logic: OR, steps: [{type: TTL_CHECK, config: {}}]}}",
        "(step G.steps[0]) needs 'reference_field'",
    ),
    ("{type: DIRECTIONAL_FILTER, config: {routing_key: k}}", "needs a non-empty 'routes'"),
    ("{type: DIRECTIONAL_FILTER, config: {routes: {a: Done}}}", "needs 'routing_key'"),
    (
        "{type: DIRECTIONAL_FILTER, config: {routing_key: k, routes: {a: Inbox}}}",
        "routes value 'a' routes to 'Inbox', but role 'Work' has no OUTBOUND component into it",
    ),
    (
        "{type: DIRECTIONAL_FILTER, config: {routing_key: k, routes: {a: Done}, "
        "interaction_policy: {branches: [{default: true}]}}}",
        "has both a DIRECTIONAL_FILTER and an interaction_policy",
    ),
    ("{type: PASS_THRU, config: {interaction_policy: {branches: []}}}", "non-empty 'branches'"),
    ("{type: PASS_THRU, config: {interaction_policy: [a]}}", "non-empty 'branches'"),
    (
        "{type: PASS_THRU, config: {interaction_policy: {branches: [{condition: a}]}}}",
        "branch 0 needs 'next_interaction'",
    ),
    (
        "{type: PASS_THRU, config: {interaction_policy: {branches: [{next_interaction: Done}]}}}",
        "branch 0 needs a 'condition' (or 'default: true')",
    ),
    (
        "{type: PASS_THRU, config: {interaction_policy: "
        "{branches: [{default: true, condition: a}]}}}",
        "branch 0 is a default branch and must not have a condition",
    ),
    (
        "{type: PASS_THRU, config: {interaction_policy: {branches: "
        "[{condition: a, next_interaction: Inbox}]}}}",
        "interaction_policy branch 0 routes to 'Inbox', but role 'Work' has no OUTBOUND",
    ),
    (
        "{type: PASS_THRU, config: {interaction_policy: {branches: [{default: true}, "
        "{default: true}]}}}",
        "more than one default branch",
    ),
    ("{type: PASS_THRU, config: {default: 'yes'}}", "'default' must be true or false"),
    ("{type: CERBERUS}", "is a CERBERUS on an OUTBOUND component"),
]


@pytest.mark.parametrize(("guardian", "expected"), R13_BROKEN)
def test_guardian_configuration_problems_are_r13(guardian: str, expected: str) -> None:
    found = violations_after(guard("Work_Out", f"[{{name: G, {guardian[1:-1]}}}]"))
    messages = [str(v) for v in found if v.rule == "R13"]
    assert any(expected in m for m in messages), messages
    prefix = "R13 Guardian configuration: guardian 'G' on component 'Work_Out' "
    assert all(m.startswith(prefix) for m in messages)


@pytest.mark.parametrize(
    ("guardian", "expected"),
    [
        (
            "{type: DIRECTIONAL_FILTER, config: {routing_key: k, routes: {a: Done}}}",
            "is a DIRECTIONAL_FILTER on an INBOUND component",
        ),
        ("{type: PASS_THRU, config: {default: true}}", "marks an INBOUND component default"),
        (
            "{type: PASS_THRU, config: {interaction_policy: {branches: [{default: true}]}}}",
            "has an interaction_policy, but INBOUND components do not route",
        ),
    ],
)
def test_routing_settings_on_an_inbound_component_are_r13(guardian: str, expected: str) -> None:
    found = violations_after(guard("Work_In", f"[{{name: G, {guardian[1:-1]}}}]"))
    assert any(v.rule == "R13" and expected in v.message for v in found), [str(v) for v in found]


def test_a_composite_nested_too_deeply_is_r13() -> None:
    step = "{type: PASS_THRU}"
    for _ in range(10):
        step = f"{{type: COMPOSITE, config: {{logic: AND, steps: [{step}]}}}}"
    found = violations_after(guard("Work_Out", f"[{{name: G, {step[1:-1]}}}]"))
    assert any("nests COMPOSITE steps deeper than 8" in v.message for v in found)


def test_all_violations_are_reported_at_once_in_rule_order() -> None:
    found = violations_after(
        drop("roles", "Work", "strategy"),
        drop("components", "Finish_In", "guardian"),
        drop("components", "Fixer_In", "guardian"),
        add("interactions", "{name: Orphan}"),
    )
    assert [v.rule for v in found] == ["R5", "R7", "R7", "R8", "R9"]


def test_check_raises_every_violation() -> None:
    doc = yaml.safe_load(MINIMAL)
    drop("roles", "Work", "strategy")(doc)
    drop("roles", "Clock")(doc)
    with pytest.raises(DefinitionInvalid) as caught:
        check(parse_workflow_yaml(yaml.safe_dump(doc)))
    assert [v.rule for v in caught.value.violations] == ["R4", "R5", "R15"]
    assert "R5 Decomposition strategy: BETA role 'Work'" in str(caught.value)


# Kept rules: the minimal workflow is clean, and each rule accepts its less obvious forms.


def test_the_minimal_workflow_breaks_no_rule() -> None:
    definition = parse_workflow_yaml(MINIMAL)
    assert validate(definition) == []
    check(definition)


FILTER = "[{name: F, type: DIRECTIONAL_FILTER, config: {routing_attribute: k, routes: %s}}]"
KEPT: list[tuple[str, list[Mutation]]] = [
    ("R1", []),
    ("R2", []),
    ("R3", []),
    ("R4", []),
    ("R5", [update("roles", "Work", "{strategy: heterogeneous}")]),
    ("R5", [update("roles", "Start", "{strategy: HOMOGENEOUS}")]),
    (
        "R7",
        [
            add(
                "components",
                "{name: Fix_Retry, role: Fixer, interaction: Inbox, direction: OUTBOUND}",
            )
        ],
    ),
    (
        "R8",
        [
            guard(
                "Fixer_In",
                "[{name: Ate, type: TTL_CHECK, config: {reference_field: t, max_age_seconds: 9}}]",
            )
        ],
    ),
    ("R9", [guard("Finish_In", "[{name: P, type: PASS_THRU}, {name: C, type: CERBERUS}]")]),
    (
        "R10",
        [add("components", "{name: S2, role: Start, interaction: Errors, direction: OUTBOUND}")],
    ),
    (
        "R11",
        [guard("Work_Out", GATE % "\"amount > 10 and status == 'ACTIVE' and child_count >= 0\"")],
    ),
    (
        "R11",
        [guard("Work_Out", POLICY % "[{condition: 'actor_name == 1', next_interaction: Done}]")],
    ),
    ("R12", [guard("Work_Out", GATE % "'amount > 10'"), second_route()]),
    ("R12", [second_route(DEFAULT % "Fallback")]),
    (
        "R12",
        [
            second_route(
                "[{name: T, type: TTL_CHECK, config: {reference_field: t, max_age_seconds: 6}}]"
            )
        ],
    ),
    (
        "R12",
        [
            second_route(
                "[{name: C, type: COMPOSITE, config: {logic: OR, steps: [{type: PASS_THRU}]}}]"
            )
        ],
    ),
    ("R12", [second_route(FILTER % "{a: Done, b: Errors}")]),
    (
        "R12",
        [
            add(
                "components",
                "{name: Work_Late, role: Work, interaction: Timeouts, direction: OUTBOUND}",
            )
        ],
    ),
    (
        "R12",
        [
            guard(
                "Work_Out",
                POLICY % "[{condition: a > 1, next_interaction: Errors}, {default: true}]",
            ),
            second_route(),
        ],
    ),
    (
        "R13",
        [
            guard(
                "Work_Out",
                "[{name: E, type: CRITERIA_GATE, config: {field: x, required_value: ok}}]",
            )
        ],
    ),
    (
        "R13",
        [
            guard(
                "Work_Out",
                "[{name: E, type: CRITERIA_GATE, "
                "config: {field: x, operator: in, threshold: [1]}}]",
            )
        ],
    ),
    ("R13", [guard("Work_Out", "[{name: E, type: CRITERIA_GATE, config: {criteria: x == 1}}]")]),
    (
        "R13",
        [
            guard(
                "Work_Out",
                "[{name: C, type: COMPOSITE, config: {logic: or, steps: ["
                "{type: TTL_CHECK, config: {reference_field: t, max_age_seconds: 5}}, "
                "{type: COMPOSITE, config: {logic: AND, steps: [{type: PASS_THRU}]}}]}}]",
            )
        ],
    ),
    ("R14", [add("interactions", "{name: inbox}")]),
    ("R15", []),
]


@pytest.mark.parametrize(("rule", "mutations"), KEPT)
def test_a_kept_rule_is_not_reported(rule: str, mutations: list[Mutation]) -> None:
    assert [str(v) for v in violations_after(*mutations) if v.rule == rule] == []


# The reference examples written for the prototype.


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["invoice_processing_workflow.yml", "mixed_agent_workflow.yaml"])
def test_the_good_reference_examples_are_valid(name: str) -> None:
    assert validate(parse_workflow_yaml(example(name))) == []


@pytest.mark.parametrize(
    ("name", "rule", "expected"),
    [
        (
            "invalid_no_alpha.yml",
            "R1",
            "R1 Single origin: workflow 'Invalid_No_Alpha' has no ALPHA",
        ),
        ("invalid_beta_no_strategy.yml", "R5", "BETA role 'Processor' has no strategy"),
        (
            "invalid_omega_no_cerberus.yml",
            "R9",
            "R9 Cerberus mandate: component 'Finalizer_From_Queue' feeds OMEGA without a CERBERUS",
        ),
        ("complete_workflow_example.yaml", "R7", "interaction 'Completed_Queue' has no consumer"),
    ],
)
def test_the_bad_reference_examples_fail_their_rule(name: str, rule: str, expected: str) -> None:
    violations = validate(parse_workflow_yaml(example(name)))
    assert any(v.rule == rule and expected in str(v) for v in violations), [
        str(v) for v in violations
    ]


def test_the_omega_example_fails_only_the_cerberus_mandate() -> None:
    violations = validate(parse_workflow_yaml(example("invalid_omega_no_cerberus.yml")))
    assert violations[0].as_dict() == {
        "rule": "R9",
        "protects": "Cerberus mandate",
        "element": "component 'Finalizer_From_Queue'",
        "message": "R9 Cerberus mandate: component 'Finalizer_From_Queue' feeds OMEGA without "
        "a CERBERUS guardian: add 'guardian: {type: CERBERUS}' to it",
    }
    assert len(violations) == 1
