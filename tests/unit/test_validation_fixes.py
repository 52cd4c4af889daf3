"""Every message of R1-R15 says what to add or change, not only what is wrong."""

from __future__ import annotations

import re

import pytest

from chameleon_workflow.domain.errors import Violation
from tests.unit.test_parsing import problems, with_changes
from tests.unit.test_validation import BROKEN, R13_BROKEN, Mutation, guard, violations_after

# The imperative a fix starts with, after the statement of the problem.
FIX = re.compile(
    r"(: |; )(add|remove|rename|keep|move|write|mark|correct|compare|give|flatten|route|"
    r"needs?|use|change)\b|\bneeds\b|\bgive one\b|must be\b|must name\b|must each\b"
)


def _unfixed(found: list[Violation]) -> list[str]:
    return [str(v) for v in found if not FIX.search(v.message)]


@pytest.mark.parametrize(("rule", "mutations", "expected"), BROKEN)
def test_a_rule_message_names_the_fix(rule: str, mutations: list[Mutation], expected: str) -> None:
    found = [v for v in violations_after(*mutations) if v.rule == rule]
    assert found
    assert _unfixed(found) == []


@pytest.mark.parametrize(("guardian", "expected"), R13_BROKEN)
def test_a_guardian_configuration_message_names_the_fix(guardian: str, expected: str) -> None:
    found = violations_after(guard("Work_Out", f"[{{name: G, {guardian[1:-1]}}}]"))
    assert _unfixed(found) == []


def test_r7_says_which_component_to_add() -> None:
    found = [str(v) for v in violations_after(lambda d: d["interactions"].append({"name": "X"}))]
    assert found == [
        "R7 Flow integrity: interaction 'X' has no producer (no OUTBOUND component puts work "
        "into it): add a component with direction OUTBOUND that writes to 'X', or remove the "
        "interaction",
        "R7 Flow integrity: interaction 'X' has no consumer (no INBOUND component takes work "
        "from it): add a component with direction INBOUND that reads from 'X', or remove the "
        "interaction",
    ]


def test_r15_names_what_exists() -> None:
    found = violations_after(lambda d: d["components"][0].update(role="Nobody"))
    assert "names unknown role 'Nobody': add a role named 'Nobody', or name one of 'Start'," in (
        " ".join(str(v) for v in found if v.rule == "R15")
    )


def test_r6_says_to_write_a_known_word() -> None:
    found = problems(with_changes(("components", 0, "direction"), "SIDEWAYS"))
    assert _unfixed(found) == []
    assert found[0].message.endswith("(known: INBOUND, OUTBOUND); write one of those")
