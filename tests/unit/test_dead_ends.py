"""Dead ends (W1-W3): valid definitions where work can get stuck are warned about, not refused."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from chameleon_workflow.domain.parsing import parse_workflow_yaml
from chameleon_workflow.domain.validation import validate
from chameleon_workflow.domain.validation_dead_ends import DefinitionWarning, dead_ends
from tests.unit.test_validation import EXAMPLES, MINIMAL, Mutation, add, drop, update


def warnings_after(*mutations: Mutation) -> list[DefinitionWarning]:
    doc = yaml.safe_load(MINIMAL)
    for mutate in mutations:
        mutate(doc)
    defn = parse_workflow_yaml(yaml.safe_dump(doc))
    assert validate(defn) == [], "dead ends are checked on valid definitions"
    return dead_ends(defn)


# The minimal workflow's failure roles: EPSILON back to Work's inbox, TAU too.
FIXER_BACK = add(
    "components", "{name: Fixer_Back, role: Fixer, interaction: Inbox, direction: OUTBOUND}"
)
CLOCK_BACK = add(
    "components", "{name: Clock_Back, role: Clock, interaction: Inbox, direction: OUTBOUND}"
)


def test_failure_roles_without_a_way_back_are_warned_about() -> None:
    found = warnings_after()
    assert [(w.code, w.element) for w in found] == [("W1", "role 'Fixer'"), ("W1", "role 'Clock'")]
    assert str(found[0]) == (
        "W1: EPSILON role 'Fixer' has no path back into the flow or to OMEGA (it writes only "
        "to 'Timeouts'), so work it remediates can only fail again or be abandoned; add a "
        "component with direction OUTBOUND from 'Fixer' into an interaction a BETA or OMEGA "
        "role takes work from"
    )
    assert "(it has no OUTBOUND component)" in str(found[1])
    assert found[0].as_dict() == {
        "code": "W1",
        "element": "role 'Fixer'",
        "message": str(found[0]),
    }


def test_a_path_through_the_other_failure_role_counts() -> None:
    # Fixer -> Timeouts -> Clock -> Inbox (read by BETA Work): both find their way back.
    assert warnings_after(CLOCK_BACK) == []


def test_a_path_to_omega_counts() -> None:
    to_done = "{name: %s_Done, role: %s, interaction: Done, direction: OUTBOUND}"
    found = warnings_after(
        add("components", to_done % ("Fixer", "Fixer")),
        add("components", to_done % ("Clock", "Clock")),
    )
    assert found == []


def test_a_loop_between_the_failure_roles_is_no_way_back() -> None:
    clock_to_errors = "{name: Clock_Errors, role: Clock, interaction: Errors, direction: OUTBOUND}"
    found = warnings_after(add("components", clock_to_errors))
    assert [w.code for w in found] == ["W1", "W1"]


def test_a_role_nothing_leads_to_is_unreachable() -> None:
    found = warnings_after(
        FIXER_BACK,
        CLOCK_BACK,
        add("roles", "{name: Side, role_type: BETA, strategy: HOMOGENEOUS}"),
        add("interactions", "{name: Side_Inbox}"),
        add(
            "components", "{name: Side_In, role: Side, interaction: Side_Inbox, direction: INBOUND}"
        ),
        add(
            "components",
            "{name: Side_Out, role: Side, interaction: Side_Inbox, direction: OUTBOUND}",
        ),
    )
    assert [str(w) for w in found] == [
        "W2: BETA role 'Side' can never be reached from ALPHA; add a component with direction "
        "OUTBOUND into 'Side_Inbox' from a role ALPHA leads to"
    ]


def test_failure_roles_are_reached_through_the_engine() -> None:
    # No chain from ALPHA leads to Errors or Timeouts: the engine puts failed work there.
    clock_errors = "{name: Clock_Errors, role: Clock, interaction: Errors, direction: OUTBOUND}"
    found = warnings_after(
        FIXER_BACK, CLOCK_BACK, drop("components", "Work_Fail"), add("components", clock_errors)
    )
    assert found == []


SHUT = "[{name: Shut, type: CRITERIA_GATE, config: {condition: '1 > 2'}}]"


def test_a_queue_whose_only_consumer_never_passes_its_gate_is_a_dead_end() -> None:
    found = warnings_after(
        FIXER_BACK, CLOCK_BACK, update("components", "Work_In", f"{{guardians: {SHUT}}}")
    )
    assert [str(w) for w in found if w.code == "W3"] == [
        "W3: interaction 'Inbox' receives PENDING work that none of its consumers can ever take "
        "('Work_In' has guardian 'Shut', which never passes); add a component with direction "
        "INBOUND from 'Inbox' to a BETA or OMEGA or EPSILON or TAU role, or correct the gate"
    ]


@pytest.mark.parametrize(
    "gate",
    [
        "[{name: G, type: CRITERIA_GATE, config: {condition: 'amount > 2'}}]",
        "[{name: G, type: CRITERIA_GATE, config: {condition: '2 > 1'}}]",
        "[{name: G, type: CRITERIA_GATE, config: {field: amount, operator: GT, threshold: 1}}]",
        "[{name: G, type: COMPOSITE, config: {logic: OR, steps: [{type: CRITERIA_GATE, "
        "config: {condition: 'false'}}, {type: PASS_THRU}]}}]",
    ],
)
def test_a_gate_that_can_pass_is_no_dead_end(gate: str) -> None:
    assert (
        warnings_after(
            FIXER_BACK, CLOCK_BACK, update("components", "Work_In", f"{{guardians: {gate}}}")
        )
        == []
    )


def test_a_composite_and_with_a_shut_step_never_passes() -> None:
    gate = (
        "[{name: G, type: COMPOSITE, config: {logic: AND, steps: [{type: PASS_THRU}, "
        "{type: CRITERIA_GATE, config: {condition: 'null > 1'}}]}}]"
    )
    found = warnings_after(
        FIXER_BACK, CLOCK_BACK, update("components", "Work_In", f"{{guardians: {gate}}}")
    )
    assert [w.element for w in found if w.code == "W3"] == ["interaction 'Inbox'"]


def test_a_second_consumer_that_can_take_the_work_is_enough() -> None:
    other = (
        "{name: Fixer_Inbox, role: Fixer, interaction: Inbox, direction: INBOUND, "
        "guardians: [{type: PASS_THRU}]}"
    )
    found = warnings_after(
        FIXER_BACK,
        CLOCK_BACK,
        update("components", "Work_In", f"{{guardians: {SHUT}}}"),
        add("components", other),
    )
    assert [w.code for w in found] == []


def test_failed_work_in_the_ate_queue_needs_a_failure_role_that_can_take_it() -> None:
    fixer_shut = f"{{guardians: {SHUT}}}"
    found = warnings_after(FIXER_BACK, CLOCK_BACK, update("components", "Fixer_In", fixer_shut))
    assert [str(w) for w in found if w.code == "W3"] == [
        "W3: interaction 'Errors' receives PENDING work that none of its consumers can ever take "
        "('Fixer_In' has guardian 'Shut', which never passes); add a component with direction "
        "INBOUND from 'Errors' to a BETA or OMEGA or EPSILON or TAU role, or correct the gate",
        "W3: interaction 'Errors' receives FAILED work that none of its consumers can ever take "
        "('Fixer_In' has guardian 'Shut', which never passes); add a component with direction "
        "INBOUND from 'Errors' to a EPSILON or TAU role, or correct the gate",
    ]


def test_the_prototype_invoice_example_warns_and_the_bundled_one_does_not() -> None:
    original = parse_workflow_yaml((EXAMPLES / "invoice_processing_workflow.yml").read_text())
    assert [(w.code, w.element) for w in dead_ends(original)] == [
        ("W1", "role 'Error_Handler'"),
        ("W1", "role 'Timeout_Manager'"),
    ]
    bundled = resources.files("chameleon_workflow.examples")
    for name in ("invoice_processing_workflow.yml", "mixed_agent_workflow.yaml"):
        defn = parse_workflow_yaml(bundled.joinpath(name).read_text(encoding="utf-8"))
        assert validate(defn) == [] and dead_ends(defn) == [], name
