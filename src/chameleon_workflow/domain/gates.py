"""Pure evaluation of gate guardians (PASS_THRU, CRITERIA_GATE, TTL_CHECK, COMPOSITE, ...).

Nothing here raises for bad data: a gate that cannot decide fails, and its reason says why.
"""

from __future__ import annotations

import logging
import operator as op
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .definition import GuardianDef
from .enums import GuardianType
from .errors import ConditionError
from .guardian_config import (
    Criteria,
    is_number,
    read_composite,
    read_criteria,
    read_ttl,
)
from .policy import RESERVED_METADATA, Condition, parse_condition

logger = logging.getLogger(__name__)

# Bounds recursion through COMPOSITE steps, including self-referencing YAML anchors.
MAX_COMPOSITE_DEPTH = 8

_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "GT": op.gt,
    "LT": op.lt,
    "GE": op.ge,
    "LE": op.le,
}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str


def condition_env(attrs: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes overlaid by reserved metadata; other metadata (e.g. actor_id) stays hidden."""
    env = dict(attrs)
    env.update({k: v for k, v in meta.items() if k in RESERVED_METADATA})
    return env


@lru_cache(maxsize=512)
def _parsed(text: str) -> Condition:
    return parse_condition(text)


def condition_holds(guardian: str, text: str, env: Mapping[str, Any]) -> tuple[bool, str]:
    """Evaluate a condition; one that cannot be evaluated does not hold (and is logged)."""
    try:
        held = _parsed(text).evaluate(env)
    except ConditionError as exc:
        logger.warning(
            "condition could not be evaluated",
            extra={"guardian_name": guardian, "condition": text, "condition_error": exc.message},
        )
        return False, f"condition {text!r} could not be evaluated: {exc.message}"
    return held, f"condition {text!r} {'holds' if held else 'does not hold'}"


def evaluate_gate(
    g: GuardianDef, attrs: Mapping[str, Any], meta: Mapping[str, Any], now: datetime
) -> GateResult:
    """Whether ``g`` admits a UOW with these attributes and metadata at ``now``."""
    return gate(g, condition_env(attrs, meta), now, 0)


def gate(g: GuardianDef, env: Mapping[str, Any], now: datetime, depth: int) -> GateResult:
    """Evaluate ``g`` over a prepared environment (see :func:`condition_env`)."""
    if g.type is GuardianType.CRITERIA_GATE:
        result = _criteria_gate(g, env)
    elif g.type is GuardianType.TTL_CHECK:
        result = _ttl_gate(g, env, now)
    elif g.type is GuardianType.COMPOSITE:
        result = _composite_gate(g, env, now, depth)
    elif g.type is GuardianType.PASS_THRU:
        result = GateResult(True, "admits every UOW")
    elif g.type is GuardianType.CERBERUS:
        result = GateResult(True, "enforced by the OMEGA checkout itself")
    elif g.type is GuardianType.DIRECTIONAL_FILTER:
        result = GateResult(True, "routes outbound work and does not gate")
    elif g.type is GuardianType.PILOT_APPROVAL:
        result = GateResult(True, "parks matching work for a pilot and does not gate")
    elif g.type is GuardianType.CONDITIONAL_INJECTOR:
        result = GateResult(True, "changes what the actor is told, never where work goes")
    else:  # pragma: no cover - the enum is closed
        raise AssertionError(g.type)
    return GateResult(result.passed, f"{g.type.value} {g.name!r}: {result.reason}")


def _misconfigured(problems: list[str]) -> GateResult:
    return GateResult(False, f"misconfigured ({'; '.join(problems)})")


def _criteria_gate(g: GuardianDef, env: Mapping[str, Any]) -> GateResult:
    criteria, problems = read_criteria(g.config)
    if criteria is None:
        return _misconfigured(problems)
    if criteria.condition is not None:
        return GateResult(*condition_holds(g.name, criteria.condition, env))
    return _field_comparison(criteria, env)


def _field_comparison(c: Criteria, env: Mapping[str, Any]) -> GateResult:
    if c.field not in env:
        return GateResult(False, f"attribute {c.field!r} is missing")
    value = env[c.field]
    shown = f"{c.field} ({value!r}) {c.operator} {c.threshold!r}"
    try:
        passed = compare(c.operator, value, c.threshold)
    except TypeError as exc:
        return GateResult(False, f"cannot evaluate {shown}: {exc}")
    return GateResult(passed, f"{shown} {'holds' if passed else 'does not hold'}")


def json_equal(left: Any, right: Any) -> bool:
    """Equality as in the policy language: a boolean never equals a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def compare(operator: str, value: Any, threshold: Any) -> bool:
    """Apply a CRITERIA_GATE operator; raises TypeError when the operands cannot be compared."""
    if operator == "EQ":
        return json_equal(value, threshold)
    if operator == "NE":
        return not json_equal(value, threshold)
    if operator == "IN":
        if not isinstance(threshold, list):
            raise TypeError("IN needs a list threshold")
        return any(json_equal(value, item) for item in threshold)
    both_numbers = is_number(value) and is_number(threshold)
    both_strings = isinstance(value, str) and isinstance(threshold, str)
    if not (both_numbers or both_strings):
        raise TypeError(f"{operator} orders only two numbers or two strings")
    return _ORDERINGS[operator](value, threshold)


def _ttl_gate(g: GuardianDef, env: Mapping[str, Any], now: datetime) -> GateResult:
    ttl, problems = read_ttl(g.config)
    if ttl is None:
        return _misconfigured(problems)
    if ttl.reference_field not in env:
        return GateResult(False, f"attribute {ttl.reference_field!r} is missing")
    reference = as_utc(env[ttl.reference_field])
    if reference is None:
        shown = env[ttl.reference_field]
        return GateResult(False, f"{ttl.reference_field} ({shown!r}) is not a timestamp")
    age = (as_aware(now) - reference).total_seconds()
    passed = age <= ttl.max_age_seconds
    verdict = "within" if passed else "older than"
    return GateResult(
        passed, f"{ttl.reference_field} is {age:.0f}s old, {verdict} {ttl.max_age_seconds}s"
    )


def as_aware(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def as_utc(value: object) -> datetime | None:
    """An ISO-8601 string, epoch seconds or a datetime as an aware datetime; None if unparseable."""
    if isinstance(value, datetime):
        return as_aware(value)
    if isinstance(value, str):
        try:
            return as_aware(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _composite_gate(
    g: GuardianDef, env: Mapping[str, Any], now: datetime, depth: int
) -> GateResult:
    if depth >= MAX_COMPOSITE_DEPTH:
        return GateResult(False, f"COMPOSITE steps nested deeper than {MAX_COMPOSITE_DEPTH}")
    composite, problems = read_composite(g.name, g.config)
    if composite is None:
        return _misconfigured(problems)
    results = []
    for step in composite.steps:
        result = gate(step, env, now, depth + 1)
        results.append(result)
        # Short-circuit like the policy language's and/or.
        if result.passed == (composite.logic == "OR"):
            break
    passed = (
        all(r.passed for r in results)
        if composite.logic == "AND"
        else any(r.passed for r in results)
    )
    detail = "; ".join(r.reason for r in results)
    return GateResult(passed, f"{composite.logic} {'passed' if passed else 'failed'} [{detail}]")
