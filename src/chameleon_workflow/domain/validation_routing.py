"""R12: a role with several routes says how to choose between them, and every route counts."""

from __future__ import annotations

from collections.abc import Iterable

from .definition import ComponentDef, GuardianDef, WorkflowDefinition
from .enums import Direction, GuardianType
from .errors import Violation
from .guardian_config import read_filter, read_policy

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
        message = f"{where} has {len(routes)} routes ({names}) but no routing rule or default route"
        yield Violation(RULE, PROTECTS, where, message)
        return  # every route but the first is shadowed; saying so again adds nothing
    if defaults > 1:
        message = f"{where} marks {defaults} of its routes ({names}) default; at most one may be"
        yield Violation(RULE, PROTECTS, where, message)
    yield from _shadowed(where, routes)


def _has_rule(g: GuardianDef) -> bool:
    return g.type in _DECIDING or "interaction_policy" in g.config


def _default_marks(c: ComponentDef) -> int:
    marks = sum(g.is_default for g in c.guardians)
    for g in c.guardians:
        branches, _ = read_policy(g.config)
        marks += sum(b.default for b in branches or ())
    return marks


def _always_matches(c: ComponentDef) -> bool:
    return not any(g.is_default or _has_rule(g) for g in c.guardians)


def _shadowed(where: str, routes: list[ComponentDef]) -> Iterable[Violation]:
    """Routes that can never be taken because an earlier route always matches."""
    first = next((i for i, c in enumerate(routes) if _always_matches(c)), None)
    if first is None:
        return
    # Routes chosen by a policy or filter evaluated before the catch-all stay reachable.
    selected = {t for c in routes[:first] if not _is_default(c) for t in _selected_targets(c)}
    catch_all = routes[first]
    for index, c in enumerate(routes):
        evaluated = index == first or (index < first and not _is_default(c))
        if evaluated or c.interaction in selected:
            continue
        message = (
            f"{where}: route '{c.name}' is never taken, "
            f"because route '{catch_all.name}' before it always matches"
        )
        yield Violation(RULE, PROTECTS, f"component '{c.name}'", message)


def _is_default(c: ComponentDef) -> bool:
    return any(g.is_default for g in c.guardians)


def _selected_targets(c: ComponentDef) -> set[str]:
    """Interactions a policy (non-default branch) or a filter on ``c`` may route to."""
    targets: set[str] = set()
    for g in c.guardians:
        branches, _ = read_policy(g.config)
        targets.update(str(b.next_interaction) for b in branches or () if not b.default)
        if g.type is GuardianType.DIRECTIONAL_FILTER:
            rule, _ = read_filter(g.config)
            targets.update(rule.routes.values() if rule else ())
    return targets
