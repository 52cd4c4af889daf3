"""Guardian evaluation: gates at checkout and route choice at submit."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from chameleon_workflow.domain.definition import (
    ComponentDef,
    GuardianDef,
    InteractionDef,
    RoleDef,
    WorkflowDefinition,
)
from chameleon_workflow.domain.enums import Direction, GuardianType, RoleType, Strategy
from chameleon_workflow.domain.guardians import GateResult, choose_route, evaluate_gate

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
T = GuardianType


def guardian(kind: GuardianType, name: str = "G", **config: Any) -> GuardianDef:
    return GuardianDef(name, kind, config)


def gate(g: GuardianDef, attrs: dict[str, Any] | None = None, **meta: Any) -> GateResult:
    return evaluate_gate(g, attrs or {}, meta, NOW)


def criteria(**config: Any) -> GuardianDef:
    return guardian(T.CRITERIA_GATE, **config)


def ttl(max_age: Any = 60, field: Any = "stamp") -> GuardianDef:
    return guardian(T.TTL_CHECK, reference_field=field, max_age_seconds=max_age)


# Gates that do not pass, and why.


@pytest.mark.parametrize(
    ("g", "attrs", "reason"),
    [
        (criteria(), {}, "misconfigured (needs a 'condition'"),
        (criteria(field="amount", operator="GT", threshold=5), {}, "attribute 'amount' is missing"),
        (criteria(field="amount", operator="GT", threshold=5), {"amount": "7"}, "orders only two"),
        (criteria(field="amount", operator="GT", threshold=5), {"amount": True}, "orders only two"),
        (criteria(field="amount", operator="GT", threshold=5), {"amount": 5}, "does not hold"),
        (criteria(field="ok", operator="EQ", threshold=1), {"ok": True}, "does not hold"),
        (criteria(field="k", operator="IN", threshold=["a"]), {"k": "b"}, "does not hold"),
        (criteria(condition="amount > 5"), {"amount": 3}, "condition 'amount > 5' does not hold"),
        (
            criteria(condition="amount > 5"),
            {},
            "could not be evaluated: cannot evaluate null > number",
        ),
        (criteria(condition="amount >"), {"amount": 9}, "could not be evaluated: unexpected end"),
        (criteria(criteria="kind == 'x'"), {"kind": "y"}, "does not hold"),
        (ttl(), {}, "attribute 'stamp' is missing"),
        (ttl(), {"stamp": "yesterday"}, "stamp ('yesterday') is not a timestamp"),
        (ttl(), {"stamp": True}, "is not a timestamp"),
        (ttl(), {"stamp": [1]}, "is not a timestamp"),
        (ttl(), {"stamp": 10**20}, "is not a timestamp"),
        (ttl(), {"stamp": "2025-06-01T11:58:59Z"}, "stamp is 61s old, older than 60s"),
        (ttl(), {"stamp": NOW.timestamp() - 61}, "older than 60s"),
        (ttl(max_age=0), {"stamp": NOW.timestamp()}, "misconfigured"),
        (ttl(field=""), {"stamp": NOW.timestamp()}, "misconfigured"),
        (guardian(T.COMPOSITE, logic="XOR", steps=[{"type": "PASS_THRU"}]), {}, "misconfigured"),
        (guardian(T.COMPOSITE, logic="AND", steps=[{"type": "CERBERUS"}]), {}, "must be a gate"),
    ],
)
def test_a_gate_that_cannot_pass_says_why(
    g: GuardianDef, attrs: dict[str, Any], reason: str
) -> None:
    result = gate(g, attrs)
    assert result.passed is False
    assert reason in result.reason, result.reason
    assert result.reason.startswith(f"{g.type.value} 'G': ")


def test_a_condition_error_is_logged_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="chameleon_workflow.domain"):
        result = gate(criteria(condition="amount >"), {"amount": 1})
    assert not result.passed
    record = next(r for r in caplog.records if r.getMessage() == "condition could not be evaluated")
    assert record.__dict__["guardian_name"] == "G"
    assert record.__dict__["condition"] == "amount >"
    assert "unexpected end" in record.__dict__["condition_error"]


def test_composite_and_fails_when_one_step_fails() -> None:
    g = guardian(
        T.COMPOSITE,
        logic="AND",
        steps=[
            {"type": "PASS_THRU"},
            {"type": "CRITERIA_GATE", "config": {"condition": "amount > 5"}},
        ],
    )
    result = gate(g, {"amount": 1})
    assert not result.passed
    assert "AND failed" in result.reason and "G.steps[1]" in result.reason


def test_composite_or_fails_when_every_step_fails() -> None:
    steps = [
        {"type": "CRITERIA_GATE", "config": {"field": "a", "operator": "EQ", "threshold": n}}
        for n in (1, 2)
    ]
    assert not gate(guardian(T.COMPOSITE, logic="OR", steps=steps), {"a": 3}).passed


def test_a_composite_nested_too_deeply_fails_instead_of_recursing() -> None:
    config: dict[str, Any] = {"logic": "AND", "steps": [{"type": "PASS_THRU"}]}
    for _ in range(12):
        config = {"logic": "AND", "steps": [{"type": "COMPOSITE", "config": config}]}
    result = gate(guardian(T.COMPOSITE, **config))
    assert not result.passed
    assert "nested deeper than 8" in result.reason


def test_a_self_referencing_composite_fails_instead_of_recursing() -> None:
    config: dict[str, Any] = {"logic": "OR", "steps": []}
    config["steps"].append({"type": "COMPOSITE", "config": config})
    assert not gate(guardian(T.COMPOSITE, **config)).passed


def test_metadata_overrides_attributes_and_actor_id_stays_hidden() -> None:
    status_gate = criteria(condition="status == 'ACTIVE'")
    assert gate(status_gate, {"status": "forged"}, status="ACTIVE").passed
    assert not gate(status_gate, {"status": "ACTIVE"}, status="PENDING").passed
    actor_gate = criteria(condition="actor_id == 'bob'")
    assert not gate(actor_gate, {}, actor_id="bob").passed


# Gates that pass.


@pytest.mark.parametrize("kind", [T.PASS_THRU, T.CERBERUS, T.DIRECTIONAL_FILTER])
def test_non_judging_guardians_pass(kind: GuardianType) -> None:
    assert gate(guardian(kind)).passed


@pytest.mark.parametrize(
    ("operator", "value", "threshold"),
    [
        ("GT", 6, 5),
        ("gt", 5.5, 5),
        ("LT", "abc", "abd"),
        ("GE", 5, 5),
        ("LE", 4, 5.0),
        ("EQ", "APPROVED", "APPROVED"),
        ("EQ", 1, 1.0),
        ("NE", 1, 2),
        ("NE", True, 1),
        ("IN", "b", ["a", "b"]),
    ],
)
def test_criteria_operators(operator: str, value: Any, threshold: Any) -> None:
    g = criteria(field="x", operator=operator, threshold=threshold)
    result = gate(g, {"x": value})
    assert result.passed, result.reason


def test_required_value_means_equal() -> None:
    g = criteria(field="approval_status", required_value="approved")
    assert gate(g, {"approval_status": "approved"}).passed
    assert not gate(g, {"approval_status": "rejected"}).passed


def test_a_condition_over_attributes_and_metadata_passes() -> None:
    g = criteria(condition="amount > 5 and child_count == finished_child_count")
    assert gate(g, {"amount": 9}, child_count=2, finished_child_count=2).passed


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-06-01T11:59:00Z",
        "2025-06-01T13:59:00+02:00",
        "2025-06-01T11:59:00",  # naive: taken as UTC
        "2025-06-01 11:59:00.5",
        NOW.timestamp() - 60,  # exactly at the limit
        int(NOW.timestamp()),
        datetime(2025, 6, 1, 11, 59),
        "2025-06-02T00:00:00Z",  # from the future: not stale
    ],
)
def test_ttl_passes_within_the_age_limit(stamp: Any) -> None:
    result = gate(ttl(), {"stamp": stamp})
    assert result.passed, result.reason


def test_ttl_takes_a_naive_now_as_utc() -> None:
    g = ttl()
    naive_now = datetime(2025, 6, 1, 12, 0, 0)
    assert evaluate_gate(g, {"stamp": "2025-06-01T11:59:30Z"}, {}, naive_now).passed
    east = datetime(2025, 6, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert evaluate_gate(g, {"stamp": "2025-06-01T11:59:30Z"}, {}, east).passed


def test_composite_or_and_nesting_pass() -> None:
    inner = {
        "logic": "AND",
        "steps": [
            {"type": "PASS_THRU"},
            {"type": "TTL_CHECK", "config": {"reference_field": "stamp", "max_age_seconds": 60}},
        ],
    }
    g = guardian(
        T.COMPOSITE,
        logic="or",
        steps=[
            {"type": "CRITERIA_GATE", "config": {"condition": "amount > 100"}},
            {"type": "COMPOSITE", "config": inner},
        ],
    )
    result = gate(g, {"amount": 1, "stamp": NOW.isoformat()})
    assert result.passed, result.reason
    assert result.reason.startswith("COMPOSITE 'G': OR passed")


# Route choice.


def route(name: str, interaction: str, *guardians: GuardianDef) -> ComponentDef:
    return ComponentDef(name, "Work", interaction, Direction.OUTBOUND, guardians)


def router(*routes: ComponentDef) -> WorkflowDefinition:
    """Work routes into A, B or C; Errors is the Ate interaction and Timeouts the Chronos one."""
    return WorkflowDefinition(
        name="Router",
        roles=(
            RoleDef("Work", RoleType.BETA, Strategy.HOMOGENEOUS),
            RoleDef("Fixer", RoleType.EPSILON),
            RoleDef("Clock", RoleType.TAU),
            RoleDef("Finish", RoleType.OMEGA),
        ),
        interactions=tuple(InteractionDef(n) for n in ("A", "B", "C", "Errors", "Timeouts")),
        components=(
            route("To_Errors", "Errors"),
            ComponentDef("Fixer_In", "Fixer", "Errors", Direction.INBOUND),
            ComponentDef("Clock_In", "Clock", "Timeouts", Direction.INBOUND),
            route("To_Timeouts", "Timeouts"),
            *routes,
        ),
    )


def choose(
    defn: WorkflowDefinition, attrs: dict[str, Any] | None = None, role: str = "Work", **meta: Any
) -> tuple[str | None, str]:
    decision = choose_route(defn, role, attrs or {}, meta, NOW)
    return (decision.component.name if decision.component else None), decision.reason


def policy(*branches: dict[str, Any], name: str = "P", **extra: Any) -> GuardianDef:
    return guardian(T.PASS_THRU, name, interaction_policy={"branches": list(branches)}, **extra)


def test_a_role_without_outbound_components_has_no_route() -> None:
    assert choose(router(), role="Finish") == (None, "role 'Finish' has no outbound component")
    assert choose(router(), role="Nobody") == (None, "role 'Nobody' has no outbound component")


def test_no_match_and_no_default_names_every_route_tried() -> None:
    defn = router(
        route("Big", "A", criteria(name="Big_Gate", field="amount", operator="GT", threshold=10)),
        route("Fresh", "B", ttl()),
    )
    chosen, reason = choose(defn, {"amount": 3})
    assert chosen is None
    assert reason.startswith("no route of role 'Work' matched; tried 'Big' (CRITERIA_GATE")
    assert "amount (3) GT 10 does not hold" in reason
    assert "'Fresh' (TTL_CHECK 'G': attribute 'stamp' is missing)" in reason


def test_a_route_whose_condition_errors_does_not_match_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    defn = router(route("Bad", "A", criteria(condition="amount > 'x'")), route("Next", "B"))
    with caplog.at_level(logging.WARNING, logger="chameleon_workflow.domain"):
        chosen, reason = choose(defn, {"amount": 1})
    assert chosen == "Next"
    assert any(r.__dict__.get("guardian_name") == "G" for r in caplog.records)


def test_all_guardians_of_a_route_must_match() -> None:
    defn = router(
        route("Both", "A", guardian(T.PASS_THRU), criteria(name="C", condition="ok == true")),
        route("Other", "B"),
    )
    assert choose(defn, {"ok": False})[0] == "Other"
    assert choose(defn, {"ok": True})[0] == "Both"


def test_the_first_matching_route_in_definition_order_wins() -> None:
    defn = router(route("First", "A"), route("Second", "B"))
    chosen, reason = choose(defn)
    assert chosen == "First"
    assert reason == "route 'First' matched: no guardian"


def test_failure_paths_are_not_routes_while_normal_routes_exist() -> None:
    assert choose(router(route("Only", "C")))[0] == "Only"


def test_a_role_with_only_failure_paths_routes_through_them() -> None:
    assert choose(router())[0] == "To_Errors"


def test_gates_route_by_passing() -> None:
    defn = router(
        route("Big", "A", criteria(field="amount", operator="GE", threshold=100)),
        route("Small", "B", criteria(condition="amount < 100")),
    )
    assert choose(defn, {"amount": 150})[0] == "Big"
    assert choose(defn, {"amount": 50})[0] == "Small"


def test_a_default_route_is_taken_only_when_nothing_else_matches() -> None:
    defn = router(
        route("Fallback", "C", guardian(T.PASS_THRU, "D", default=True)),
        route("Big", "A", criteria(condition="amount > 10")),
    )
    assert choose(defn, {"amount": 11})[0] == "Big"
    chosen, reason = choose(defn, {"amount": 1})
    assert chosen == "Fallback"
    assert reason == "no route matched, default taken: 'Fallback' is marked default"


def test_a_policy_picks_the_route_of_the_first_branch_that_holds() -> None:
    p = policy(
        {"condition": "amount > 100", "next_interaction": "B"},
        {"condition": "amount > 10", "next_interaction": "C"},
    )
    defn = router(route("Policy", "A", p), route("To_B", "B"), route("To_C", "C"))
    assert choose(defn, {"amount": 500})[0] == "To_B"
    assert choose(defn, {"amount": 50})[0] == "To_C"
    chosen, reason = choose(defn, {"amount": 5})
    assert chosen == "To_B"  # no branch held: the policy route fails and To_B is next
    assert "no branch of the policy of 'P' held" not in reason


def test_a_policy_may_route_into_a_failure_path() -> None:
    defn = router(
        route("Policy", "A", policy({"condition": "bad == true", "next_interaction": "Errors"}))
    )
    assert choose(defn, {"bad": True})[0] == "To_Errors"


def test_a_policy_default_branch_is_a_fallback() -> None:
    p = policy(
        {"condition": "amount > 100", "next_interaction": "B"},
        {"default": True, "next_interaction": "C"},
    )
    defn = router(
        route("Policy", "A", p),
        route("Gate", "B", criteria(condition="amount == 7")),
        route("To_C", "C", criteria(condition="false")),
    )
    assert choose(defn, {"amount": 7})[0] == "Gate"
    chosen, reason = choose(defn, {"amount": 1})
    assert chosen == "To_C"
    assert "fell to its default branch" in reason


def test_a_default_branch_without_target_falls_back_to_its_own_route() -> None:
    defn = router(
        route(
            "Policy",
            "A",
            policy({"condition": "false", "next_interaction": "B"}, {"default": True}),
        ),
        route("To_B", "B", criteria(condition="false")),
    )
    assert choose(defn)[0] == "Policy"


def test_a_policy_without_a_holding_branch_or_default_does_not_match() -> None:
    defn = router(route("Policy", "A", policy({"condition": "x == 1", "next_interaction": "B"})))
    chosen, reason = choose(defn, {"x": 2})
    assert chosen is None
    assert "no branch of the policy of 'P' held (condition 'x == 1' does not hold)" in reason


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (
            policy({"condition": "true", "next_interaction": "Nowhere"}),
            "the role has no route into 'Nowhere'",
        ),
        (
            policy({"default": True, "next_interaction": "Nowhere"}),
            "default branch names 'Nowhere'",
        ),
        (
            guardian(T.PASS_THRU, "P", interaction_policy={"branches": []}),
            "policy of 'P' misconfigured",
        ),
    ],
)
def test_a_broken_policy_does_not_match(p: GuardianDef, expected: str) -> None:
    chosen, reason = choose(router(route("Policy", "A", p)))
    assert chosen is None
    assert expected in reason


def test_a_gate_carrying_a_policy_must_pass_first() -> None:
    p = guardian(
        T.CRITERIA_GATE,
        "P",
        condition="open == true",
        interaction_policy={"branches": [{"condition": "true", "next_interaction": "B"}]},
    )
    defn = router(
        route("Gated", "A", p), route("To_B", "B", criteria(condition="false")), route("To_C", "C")
    )
    assert choose(defn, {"open": True})[0] == "To_B"
    assert choose(defn, {"open": False})[0] == "To_C"


def flt(**routes: str) -> GuardianDef:
    return guardian(T.DIRECTIONAL_FILTER, "F", routing_key="kind", routes=routes)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("urgent", "To_B"), ("normal", "To_C"), ("true", "Filter")],
)
def test_a_directional_filter_picks_the_route_its_value_names(kind: str, expected: str) -> None:
    defn = router(
        route("Filter", "A", flt(urgent="B", normal="C", true="A")),
        route("To_B", "B", criteria(condition="false")),
        route("To_C", "C", criteria(condition="false")),
    )
    chosen, reason = choose(defn, {"kind": kind})
    assert chosen == expected
    assert reason.startswith("route 'Filter' matched: 'F': kind=")


def test_a_directional_filter_matches_values_as_text() -> None:
    defn = router(
        route(
            "Filter",
            "A",
            guardian(T.DIRECTIONAL_FILTER, "F", routing_attribute="k", routes={2: "A", True: "B"}),
        ),
        route("To_B", "B", criteria(condition="false")),
    )
    assert choose(defn, {"k": 2})[0] == "Filter"
    assert choose(defn, {"k": "2"})[0] == "Filter"
    assert choose(defn, {"k": "true"})[0] == "To_B"
    assert choose(defn, {"k": True})[0] == "To_B"


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({}, "DIRECTIONAL_FILTER 'F': 'kind' is missing"),
        ({"kind": "odd"}, "kind='odd' is not a route (known: urgent)"),
    ],
)
def test_a_directional_filter_without_a_route_for_the_value_does_not_match(
    attrs: dict[str, Any], expected: str
) -> None:
    chosen, reason = choose(router(route("Filter", "A", flt(urgent="B"))), attrs)
    assert chosen is None
    assert expected in reason


def test_a_misconfigured_directional_filter_does_not_match() -> None:
    chosen, reason = choose(
        router(route("Filter", "A", guardian(T.DIRECTIONAL_FILTER, "F"))), {"kind": "x"}
    )
    assert chosen is None
    assert "DIRECTIONAL_FILTER 'F' misconfigured" in reason


def test_routes_see_reserved_metadata() -> None:
    defn = router(route("Parent", "A", criteria(condition="child_count > 0")), route("Leaf", "B"))
    assert choose(defn, {}, child_count=2)[0] == "Parent"
    assert choose(defn, {}, child_count=0)[0] == "Leaf"
