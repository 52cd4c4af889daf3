"""PILOT_APPROVAL settings and max_visits are checked at import, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from chameleon_workflow.domain.errors import DefinitionInvalid
from chameleon_workflow.domain.export import to_mapping, to_yaml
from chameleon_workflow.domain.parsing import parse_workflow_mapping, parse_workflow_yaml
from chameleon_workflow.engine.templates import validate_yaml

PILOT = Path(__file__).resolve().parents[1] / "fixtures" / "pilot"
GATE = (PILOT / "approval_gate.yml").read_text(encoding="utf-8")
LOOP = (PILOT / "loop_guard.yml").read_text(encoding="utf-8")
GATE_SETTINGS = """            condition: "amount > 1000"
            priority: high
            expires_in_seconds: 3600
            on_expiry: approve
            title: Approve a big spend
"""


def _with_settings(settings: str) -> str:
    assert GATE_SETTINGS in GATE
    return GATE.replace(GATE_SETTINGS, settings)


def _violations(text: str) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate_yaml(text)
    return [(v.rule, v.message) for v in caught.value.violations]


@pytest.mark.parametrize(
    ("settings", "rule", "words"),
    [
        ('            condition: "amount >>"\n', "R11", ["does not parse"]),
        ("            condition: \"actor_id == 'x'\"\n", "R11", ["actor_id"]),
        ('            condition: "  "\n', "R13", ["non-blank"]),
        ("            priority: urgent\n", "R13", ["unknown priority 'urgent'", "critical"]),
        ("            priority: 3\n", "R13", ["unknown priority 3"]),
        ("            on_expiry: later\n", "R13", ["unknown on_expiry 'later'", "cancel"]),
        ("            expires_in_seconds: 0\n", "R13", ["expires_in_seconds", "not 0"]),
        ("            expires_in_seconds: -60\n", "R13", ["positive integer", "-60"]),
        ('            expires_in_seconds: "60"\n', "R13", ["positive integer", "'60'"]),
        ("            expires_in_seconds: true\n", "R13", ["positive integer", "True"]),
        ("            expires_in_seconds: 1.5\n", "R13", ["positive integer", "1.5"]),
        ("            expire_in_seconds: 60\n", "R13", ["unknown key(s) expire_in_seconds"]),
        ('            title: ""\n', "R13", ["'title' must be a non-blank string"]),
        (f"            title: {'t' * 201}\n", "R13", ["at most 200"]),
    ],
)
def test_a_bad_approval_setting_is_rejected_naming_the_guardian(
    settings: str, rule: str, words: list[str]
) -> None:
    every = _violations(_with_settings(settings))
    assert all("'big_spend'" in m for _, m in every), every
    found = [f for f in every if f[0] == rule]  # a blank condition is also R11's
    assert len(found) == 1 and len(every) == (2 if '"  "' in settings else 1), every
    message = found[0][1]
    assert "guardian 'big_spend' on component 'Draft_Out'" in message
    for word in words:
        assert word in message, (word, message)


def test_every_problem_of_one_gate_is_reported_at_once() -> None:
    settings = "            priority: urgent\n            on_expiry: never\n            x: 1\n"
    messages = [m for _, m in _violations(_with_settings(settings))]
    assert len(messages) == 3 and all("big_spend" in m for m in messages)


def test_a_gate_on_an_inbound_component_is_valid_and_default_marks_are_not() -> None:
    inbound = GATE.replace(
        "    - {name: Review_In, role: Review, interaction: Reviews, direction: INBOUND}",
        "    - name: Review_In\n      role: Review\n      interaction: Reviews\n"
        "      direction: INBOUND\n"
        "      guardian: {name: second_look, type: PILOT_APPROVAL, config: {default: true}}",
    )
    found = _violations(inbound)
    assert [r for r, _ in found] == ["R13"] and "default" in found[0][1]
    assert validate_yaml(inbound.replace(", config: {default: true}", "")).warnings == ()


def test_the_minimal_gate_takes_the_defaults() -> None:
    assert validate_yaml(_with_settings("")).warnings == ()
    assert validate_yaml(_with_settings("            on_expiry: CANCEL\n")).warnings == ()


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("  max_visits: 5\n", "  max_visits: 0\n", ["workflow: max_visits must be a positive"]),
        ("  max_visits: 5\n", '  max_visits: "5"\n', ["max_visits must be a positive", "'5'"]),
        ("max_visits: 2}", "max_visits: -2}", ["role 'Draft': max_visits", "-2"]),
        ("max_visits: 2}", "max_visits: true}", ["role 'Draft': max_visits", "True"]),
        ("max_visit: 5", "max_visit: 5", []),  # placeholder replaced below
        (
            "{name: Origin, type: ALPHA}",
            "{name: Origin, type: ALPHA, max_visits: 3}",
            ["role 'Origin'", "never enters an ALPHA role"],
        ),
    ],
)
def test_a_bad_max_visits_is_rejected_naming_where(old: str, new: str, words: list[str]) -> None:
    if not words:  # a misspelt key is not silently ignored
        old, new, words = "  max_visits: 5\n", "  max_visit: 5\n", ["unknown key 'max_visit'"]
    assert old in LOOP
    found = _violations(LOOP.replace(old, new))
    assert len(found) == 1, found
    for word in words:
        assert word in found[0][1], (word, found)


def test_max_visits_round_trips_and_the_role_setting_wins() -> None:
    defn = parse_workflow_yaml(LOOP)
    assert (defn.max_visits, defn.max_visits_of("Draft"), defn.max_visits_of("Review")) == (
        5,
        2,
        5,
    )
    assert parse_workflow_mapping(to_mapping(defn)) == defn
    assert parse_workflow_yaml(to_yaml(defn)) == defn
    assert to_mapping(defn)["workflow"]["max_visits"] == 5


def test_only_roles_whose_routes_meet_a_pilot_check_leave_the_fast_path() -> None:
    assert parse_workflow_yaml(GATE).pilot_checked_roles == {"Draft"}
    plain = GATE.replace("type: PILOT_APPROVAL", "type: PASS_THRU").replace(
        GATE_SETTINGS, "            default: true\n"
    )
    assert parse_workflow_yaml(plain).pilot_checked_roles == frozenset()
    # Every route of the loop workflow enters a role with a limit; without one, none does.
    assert "Review" in parse_workflow_yaml(LOOP).pilot_checked_roles
    unlimited = LOOP.replace("  max_visits: 5\n", "").replace(", max_visits: 2}", "}")
    assert parse_workflow_yaml(unlimited).pilot_checked_roles == frozenset()
