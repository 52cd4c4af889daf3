"""R12: a role with several outbound routes says how to choose between them."""

from __future__ import annotations

from collections.abc import Iterable

from .definition import ComponentDef, GuardianDef, WorkflowDefinition
from .enums import Direction, GuardianType
from .errors import Violation
from .guardian_config import read_policy

RULE, PROTECTS = "R12", "Deterministic routing"
# Guardian types that decide whether their own route is taken.
_DECIDING = (
    GuardianType.CRITERIA_GATE,
    GuardianType.TTL_CHECK,
    GuardianType.COMPOSITE,
    GuardianType.DIRECTIONAL_FILTER,
)


def routing_violations(defn: WorkflowDefinition) -> Iterable[Violation]:
    """R12 over every role with more than one outbound route (failure paths not counted)."""
    for role in defn.roles:
        outbound = defn.components_of(role.name, Direction.OUTBOUND)
        routes = [c for c in outbound if c.interaction not in defn.failure_paths]
        if len(routes) > 1:
            yield from _role_routes(role.name, routes)


def _role_routes(role: str, routes: list[ComponentDef]) -> Iterable[Violation]:
    where = f"role '{role}'"
    names = ", ".join(f"'{c.name}'" for c in routes)
    defaults = sum(_default_marks(c) for c in routes)
    if defaults == 0 and not any(_has_rule(g) for c in routes for g in c.guardians):
        message = (
            f"{where} has {len(routes)} routes ({names}) but no routing rule or default route: "
            f"add a routing rule to one of them (an interaction_policy, a DIRECTIONAL_FILTER or "
            f"a CRITERIA_GATE guardian), or mark one default ('config: {{default: true}}' on "
            f"its guardian)"
        )
        yield Violation(RULE, PROTECTS, where, message)
    if defaults > 1:
        message = (
            f"{where} marks {defaults} of its routes ({names}) default; at most one may be: "
            f"remove 'default: true' from all but one"
        )
        yield Violation(RULE, PROTECTS, where, message)


def _has_rule(g: GuardianDef) -> bool:
    return g.type in _DECIDING or "interaction_policy" in g.config


def _default_marks(c: ComponentDef) -> int:
    marks = sum(g.is_default for g in c.guardians)
    for g in c.guardians:
        branches, _ = read_policy(g.config)
        marks += sum(b.default for b in branches or ())
    return marks
