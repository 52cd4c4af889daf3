"""Guardian evaluation used by the runtime: gates at checkout, routes at submit.

Routes are chosen among ``defn.routes_of(role)`` in definition order; the first match wins
and a route marked default is taken only when nothing else matched. Nothing here raises for
bad data or bad conditions: they simply do not match, and the reason says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .definition import ComponentDef, GuardianDef, WorkflowDefinition
from .enums import Direction, GuardianType
from .gates import GateResult, condition_env, condition_holds, evaluate_gate, gate
from .guardian_config import Branch, read_filter, read_policy, route_key

__all__ = ["GateResult", "RouteDecision", "choose_route", "evaluate_gate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    component: ComponentDef | None
    reason: str


@dataclass(frozen=True)
class _Verdict:
    """What one guardian says about its component's route."""

    kind: str  # "pass", "select" (route to ``component``), "fallback" or "fail"
    reason: str
    component: ComponentDef | None = None


@dataclass
class _Outcome:
    chosen: ComponentDef | None = None
    fallback: ComponentDef | None = None
    reasons: list[str] = field(default_factory=list)


def choose_route(
    defn: WorkflowDefinition,
    role: str,
    attrs: Mapping[str, Any],
    meta: Mapping[str, Any],
    now: datetime,
) -> RouteDecision:
    """The outbound component a submit by ``role`` takes, or None with the reason why."""
    routes = defn.routes_of(role)
    if not routes:
        return RouteDecision(None, f"role {role!r} has no outbound component")
    env = condition_env(attrs, meta)
    outbound = defn.components_of(role, Direction.OUTBOUND)
    fallback: tuple[ComponentDef, str] | None = None
    tried: list[str] = []
    for component in routes:
        if any(g.is_default for g in component.guardians):
            fallback = fallback or (component, f"{component.name!r} is marked default")
            continue
        outcome = _match(component, outbound, env, now)
        detail = "; ".join(outcome.reasons) or "no guardian"
        if outcome.chosen is not None:
            return RouteDecision(outcome.chosen, f"route {component.name!r} matched: {detail}")
        if outcome.fallback is not None and fallback is None:
            fallback = (outcome.fallback, f"{detail} (default of {component.name!r})")
        tried.append(f"{component.name!r} ({detail})")
    if fallback is not None:
        reason = f"no route matched, default taken: {fallback[1]}"
        return RouteDecision(fallback[0], reason)
    reason = f"no route of role {role!r} matched; tried {', '.join(tried)}"
    logger.info("no route matched", extra={"role": role, "routes_tried": len(tried)})
    return RouteDecision(None, reason)


def _match(
    component: ComponentDef,
    outbound: Sequence[ComponentDef],
    env: Mapping[str, Any],
    now: datetime,
) -> _Outcome:
    """A component matches only if all its guardians do; a selecting guardian picks the target."""
    outcome = _Outcome()
    selected: ComponentDef | None = None
    for g in component.guardians:
        verdict = _route_verdict(g, component, outbound, env, now)
        outcome.reasons.append(verdict.reason)
        if verdict.kind == "fail":
            return _Outcome(reasons=outcome.reasons)
        if verdict.kind == "select" and selected is None:
            selected = verdict.component
        if verdict.kind == "fallback" and outcome.fallback is None:
            outcome.fallback = verdict.component
    if selected is None and outcome.fallback is not None:
        return outcome
    outcome.chosen = selected or component
    return outcome


def _route_verdict(
    g: GuardianDef,
    component: ComponentDef,
    outbound: Sequence[ComponentDef],
    env: Mapping[str, Any],
    now: datetime,
) -> _Verdict:
    if g.type is GuardianType.DIRECTIONAL_FILTER:
        return _filter_verdict(g, outbound, env)
    if g.type is not GuardianType.PASS_THRU:
        result = gate(g, env, now, 0)
        if not result.passed or "interaction_policy" not in g.config:
            return _Verdict("pass" if result.passed else "fail", result.reason)
    if "interaction_policy" in g.config:
        return _policy_verdict(g, component, outbound, env)
    return _Verdict("pass", f"PASS_THRU {g.name!r}")


def _into(outbound: Sequence[ComponentDef], interaction: str) -> ComponentDef | None:
    return next((c for c in outbound if c.interaction == interaction), None)


def _selected(g: GuardianDef, outbound: Sequence[ComponentDef], target: str, why: str) -> _Verdict:
    component = _into(outbound, target)
    if component is None:
        return _Verdict("fail", f"{g.name!r}: {why}, but the role has no route into {target!r}")
    return _Verdict("select", f"{g.name!r}: {why}", component)


def _filter_verdict(
    g: GuardianDef, outbound: Sequence[ComponentDef], env: Mapping[str, Any]
) -> _Verdict:
    rule, problems = read_filter(g.config)
    if rule is None:
        return _Verdict(
            "fail", f"DIRECTIONAL_FILTER {g.name!r} misconfigured: {'; '.join(problems)}"
        )
    if rule.routing_key not in env:
        return _Verdict("fail", f"DIRECTIONAL_FILTER {g.name!r}: {rule.routing_key!r} is missing")
    value = route_key(env[rule.routing_key])
    target = rule.routes.get(value)
    if target is None:
        known = ", ".join(rule.routes)
        why = f"{rule.routing_key}={value!r} is not a route (known: {known})"
        return _Verdict("fail", f"DIRECTIONAL_FILTER {g.name!r}: {why}")
    return _selected(g, outbound, target, f"{rule.routing_key}={value!r} routes to {target!r}")


def _policy_verdict(
    g: GuardianDef,
    component: ComponentDef,
    outbound: Sequence[ComponentDef],
    env: Mapping[str, Any],
) -> _Verdict:
    branches, problems = read_policy(g.config)
    if branches is None:
        return _Verdict("fail", f"policy of {g.name!r} misconfigured: {'; '.join(problems)}")
    tried: list[str] = []
    default: Branch | None = None
    for branch in branches:
        if branch.default:
            default = branch
            continue
        held, why = condition_holds(g.name, str(branch.condition), env)
        if held:
            return _selected(g, outbound, str(branch.next_interaction), why)
        tried.append(why)
    if default is not None:
        # A default branch without next_interaction defaults to the carrying component.
        name = default.next_interaction or component.interaction
        target = _into(outbound, name)
        if target is None:
            return _Verdict("fail", f"{g.name!r}: default branch names {name!r}, not a route")
        return _Verdict("fallback", f"policy of {g.name!r} fell to its default branch", target)
    return _Verdict("fail", f"no branch of the policy of {g.name!r} held ({'; '.join(tried)})")
