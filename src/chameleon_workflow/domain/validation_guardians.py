"""Rules about guardians: R11 (safe conditions) and R13 (well-formed guardian config)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .definition import ComponentDef, GuardianDef, WorkflowDefinition
from .enums import Direction, GuardianType
from .errors import ConditionError, Violation
from .gates import MAX_COMPOSITE_DEPTH
from .guardian_config import (
    blank,
    read_allowed_models,
    read_approval,
    read_composite,
    read_criteria,
    read_default,
    read_filter,
    read_injector,
    read_policy,
    read_step,
    read_ttl,
)
from .policy import parse_condition

FORBIDDEN_NAME = "actor_id"


def _guardians(defn: WorkflowDefinition) -> Iterator[tuple[ComponentDef, GuardianDef]]:
    for c in defn.components:
        for g in c.guardians:
            yield c, g


def condition_violations(defn: WorkflowDefinition) -> Iterable[Violation]:
    """R11: every condition parses and none depends on who did the work (``actor_id``)."""
    for c, g in _guardians(defn):
        where = f"guardian '{g.name}' on component '{c.name}'"
        for label, text in _conditions(g, 0):
            problem = _condition_problem(text)
            if problem:
                message = f"{where}: {label} {text!r} {problem}"
                yield Violation("R11", "Safe policy language", f"guardian '{g.name}'", message)
        for label, name in _field_names(g):
            if name == FORBIDDEN_NAME:
                message = f"{where}: {label} {_actor_problem()}"
                yield Violation("R11", "Safe policy language", f"guardian '{g.name}'", message)


def _actor_problem() -> str:
    return (
        f"refers to {FORBIDDEN_NAME}; routing must not depend on who did the work: compare a "
        f"UOW attribute instead"
    )


def _condition_problem(text: str) -> str | None:
    try:
        condition = parse_condition(text)
    except ConditionError as exc:
        return (
            f"does not parse: {exc.message}; correct it (see 'The condition language' in "
            f"docs/workflows.md)"
        )
    if FORBIDDEN_NAME in condition.names:
        return _actor_problem()
    return None


def _conditions(g: GuardianDef, depth: int) -> Iterator[tuple[str, str]]:
    """Every condition string of a guardian: its gate, its policy branches and its steps."""
    config = g.config
    if g.type is GuardianType.CRITERIA_GATE:
        for key in ("condition", "criteria"):
            if isinstance(config.get(key), str):
                yield key, config[key]
    if g.type is GuardianType.PILOT_APPROVAL and isinstance(config.get("condition"), str):
        yield "condition", config["condition"]
    policy = config.get("interaction_policy")
    branches = policy.get("branches") if isinstance(policy, Mapping) else None
    for index, branch in enumerate(branches if isinstance(branches, list) else []):
        if isinstance(branch, Mapping) and isinstance(branch.get("condition"), str):
            yield f"interaction_policy branch {index} condition", branch["condition"]
    if g.type is GuardianType.CONDITIONAL_INJECTOR:
        rules = config.get("rules")
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            # A blank condition is reported by R13 (the rule needs one).
            if isinstance(rule, Mapping) and not blank(rule.get("condition")):
                yield f"rule {index} condition", rule["condition"]
    if g.type is GuardianType.COMPOSITE and depth < MAX_COMPOSITE_DEPTH:
        for step in _steps(g):
            for label, text in _conditions(step, depth + 1):
                yield f"step {step.name} {label}", text


def _steps(g: GuardianDef) -> list[GuardianDef]:
    """The well-formed steps of a COMPOSITE (malformed ones are reported by R13)."""
    steps = g.config.get("steps")
    read = (read_step(f"{g.name}.steps[{i}]", s) for i, s in enumerate(steps or ()))
    return [step for step, _ in read if step is not None] if isinstance(steps, list) else []


def _field_names(g: GuardianDef) -> Iterator[tuple[str, Any]]:
    keys = {
        GuardianType.CRITERIA_GATE: ("field",),
        GuardianType.DIRECTIONAL_FILTER: ("routing_key", "routing_attribute"),
    }.get(g.type, ())
    for key in keys:
        if key in g.config:
            yield key, g.config[key]


def config_violations(defn: WorkflowDefinition) -> Iterable[Violation]:
    """R13: each guardian's config is complete and consistent with its component."""
    targets_of: dict[str, set[str]] = {}
    for c in defn.components:
        if c.direction is Direction.OUTBOUND:
            targets_of.setdefault(c.role, set()).add(c.interaction)
    models_problems = read_allowed_models(defn.ai_context)[1]
    for c, g in _guardians(defn):
        targets = targets_of.get(c.role, set())
        problems = _placement_problems(g, c) + _problems(g, c.role, targets, 0)
        if g.type is GuardianType.CONDITIONAL_INJECTOR:
            problems += models_problems
        for problem in problems:
            message = f"guardian '{g.name}' on component '{c.name}' {problem}"
            yield Violation("R13", "Guardian configuration", f"guardian '{g.name}'", message)


def _placement_problems(g: GuardianDef, c: ComponentDef) -> list[str]:
    """Routing settings belong on OUTBOUND components, Cerberus on INBOUND ones."""
    problems = read_default(g.config)
    if c.direction is Direction.INBOUND:
        if g.config.get("default") is True:
            problems.append(
                "marks an INBOUND component default; only outbound routes can be: remove "
                "'default' from it"
            )
        if "interaction_policy" in g.config:
            problems.append(
                "has an interaction_policy, but INBOUND components do not route: move it to "
                "an OUTBOUND component of the same role"
            )
        if g.type is GuardianType.DIRECTIONAL_FILTER:
            problems.append(
                "is a DIRECTIONAL_FILTER on an INBOUND component; filters route outbound: "
                "move it to an OUTBOUND component"
            )
    elif g.type is GuardianType.CONDITIONAL_INJECTOR:
        problems.append(
            "is a CONDITIONAL_INJECTOR on an OUTBOUND component; injectors change what the "
            "actor is told at checkout: move it to an INBOUND component"
        )
    elif g.type is GuardianType.CERBERUS:
        problems.append(
            "is a CERBERUS on an OUTBOUND component; Cerberus guards OMEGA's inbound: move it "
            "to OMEGA's INBOUND component, or change its type"
        )
    if g.type is GuardianType.DIRECTIONAL_FILTER and "interaction_policy" in g.config:
        problems.append(
            "has both a DIRECTIONAL_FILTER and an interaction_policy; give one: remove the other"
        )
    return problems


def _problems(g: GuardianDef, role: str, targets: set[str], depth: int) -> list[str]:
    branches, problems = read_policy(g.config)
    for index, branch in enumerate(branches or ()):
        if branch.next_interaction is not None and branch.next_interaction not in targets:
            problems.append(
                _no_route(f"interaction_policy branch {index}", branch.next_interaction, role)
            )
    return problems + _type_problems(g, role, targets, depth)


def _no_route(what: str, target: str, role: str) -> str:
    return (
        f"{what} routes to '{target}', but role '{role}' has no OUTBOUND component into it: "
        f"add a component with role '{role}', direction OUTBOUND and interaction '{target}', "
        f"or route to one of the role's own outbound interactions"
    )


def _type_problems(g: GuardianDef, role: str, targets: set[str], depth: int) -> list[str]:
    if g.type is GuardianType.CRITERIA_GATE:
        return read_criteria(g.config)[1]
    if g.type is GuardianType.TTL_CHECK:
        return read_ttl(g.config)[1]
    if g.type is GuardianType.DIRECTIONAL_FILTER:
        rule, problems = read_filter(g.config)
        routes = rule.routes.items() if rule else ()
        return problems + [
            _no_route(f"routes value '{k}'", t, role) for k, t in routes if t not in targets
        ]
    if g.type is GuardianType.COMPOSITE:
        return _composite_problems(g, role, targets, depth)
    if g.type is GuardianType.PILOT_APPROVAL:
        return read_approval(g.config)[1]
    if g.type is GuardianType.CONDITIONAL_INJECTOR:
        return read_injector(g.name, g.config)[1]
    return []


def _composite_problems(g: GuardianDef, role: str, targets: set[str], depth: int) -> list[str]:
    if depth >= MAX_COMPOSITE_DEPTH:
        return [
            f"nests COMPOSITE steps deeper than {MAX_COMPOSITE_DEPTH} levels: flatten the "
            f"steps (an AND of ANDs is one AND)"
        ]
    problems = read_composite(g.name, g.config)[1]
    for step in _steps(g):
        step_problems = _type_problems(step, role, targets, depth + 1)
        problems.extend(f"(step {step.name}) {p}" for p in step_problems)
    return problems
