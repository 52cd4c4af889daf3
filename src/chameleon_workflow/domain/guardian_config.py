"""Readers of a guardian's free-form ``config``, shared by validation and evaluation.

Each reader returns the typed settings (or ``None``) together with every problem found, so
the validator reports the same problems the runtime would otherwise trip over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .definition import GuardianDef
from .enums import GuardianType

OPERATORS = ("GT", "LT", "GE", "LE", "EQ", "NE", "IN")
ORDERINGS = ("GT", "LT", "GE", "LE")
LOGICS = ("AND", "OR")
# Types that can judge a UOW on its own: usable as steps of a COMPOSITE and as routes.
GATE_TYPES = (
    GuardianType.PASS_THRU,
    GuardianType.CRITERIA_GATE,
    GuardianType.TTL_CHECK,
    GuardianType.COMPOSITE,
)
FIELD_FORM_KEYS = ("field", "operator", "threshold", "required_value")


@dataclass(frozen=True)
class Criteria:
    """Either a ``condition`` or a field comparison ``field operator threshold``."""

    condition: str | None = None
    field: str = ""
    operator: str = "EQ"
    threshold: Any = None


@dataclass(frozen=True)
class Ttl:
    reference_field: str
    max_age_seconds: int


@dataclass(frozen=True)
class Composite:
    logic: str
    steps: tuple[GuardianDef, ...]


@dataclass(frozen=True)
class DirectionalFilter:
    routing_key: str
    routes: Mapping[str, str]  # route key text (see route_key) -> interaction name


@dataclass(frozen=True)
class Branch:
    condition: str | None
    next_interaction: str | None
    default: bool


def blank(value: object) -> bool:
    """True unless ``value`` is a string with visible text."""
    return not isinstance(value, str) or not value.strip()


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def route_key(value: object) -> str:
    """DIRECTIONAL_FILTER matches values as text, spelling booleans and null as YAML does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def read_default(config: Mapping[str, Any]) -> list[str]:
    value = config.get("default")
    if value is None or isinstance(value, bool):
        return []
    return [f"'default' must be true or false, not {value!r}"]


def condition_source(config: Mapping[str, Any]) -> Any:
    """The condition text; the prototype's ``criteria`` is an alias of ``condition``."""
    return config["condition"] if "condition" in config else config.get("criteria")


def read_criteria(config: Mapping[str, Any]) -> tuple[Criteria | None, list[str]]:
    """CRITERIA_GATE settings: a condition, or field + operator + threshold (not both)."""
    problems: list[str] = []
    if "condition" in config and "criteria" in config:
        problems.append("gives both 'condition' and 'criteria'; give one")
    text = condition_source(config)
    field_form = [k for k in FIELD_FORM_KEYS if k in config]
    if text is not None and field_form:
        problems.append(f"gives both a condition and {', '.join(field_form)}; give one")
    if text is not None:
        if blank(text):
            problems.append("'condition' must be a non-blank string")
        return (None if problems else Criteria(condition=text)), problems
    if not field_form:
        return None, ["needs a 'condition' (or 'criteria'), or 'field' + 'operator' + 'threshold'"]
    return _field_criteria(config)


def _field_criteria(config: Mapping[str, Any]) -> tuple[Criteria | None, list[str]]:
    problems: list[str] = []
    field = config.get("field")
    if blank(field):
        problems.append("'field' must name an attribute")
    operator = config.get("operator")
    if "required_value" in config:
        # The prototype's shorthand: required_value means "field EQ required_value".
        if "threshold" in config:
            problems.append("gives both 'threshold' and 'required_value'; give one")
        if operator is not None and str(operator).upper() != "EQ":
            problems.append("'required_value' means EQ; use 'threshold' with other operators")
        operator = "EQ"
        threshold = config["required_value"]
    elif "threshold" not in config:
        problems.append("needs a 'threshold' to compare 'field' with")
        threshold = None
    else:
        threshold = config["threshold"]
    if operator is None:
        problems.append(f"needs an 'operator' (one of {', '.join(OPERATORS)})")
    elif not isinstance(operator, str) or operator.upper() not in OPERATORS:
        known = ", ".join(OPERATORS)
        problems.append(f"has unknown operator {operator!r} (known: {known}); use one of those")
    else:
        operator = operator.upper()
        problems.extend(_threshold_problems(operator, threshold))
    if problems:
        return None, problems
    return Criteria(field=str(field), operator=str(operator), threshold=threshold), []


def _threshold_problems(operator: str, threshold: Any) -> list[str]:
    if operator == "IN" and not isinstance(threshold, list):
        return ["operator IN needs a list 'threshold'"]
    if operator in ORDERINGS and not (is_number(threshold) or isinstance(threshold, str)):
        return [f"operator {operator} needs a number or string 'threshold', not {threshold!r}"]
    return []


def read_ttl(config: Mapping[str, Any]) -> tuple[Ttl | None, list[str]]:
    problems: list[str] = []
    reference_field = config.get("reference_field")
    if blank(reference_field):
        problems.append("needs 'reference_field' naming the timestamp attribute")
    max_age = config.get("max_age_seconds")
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age <= 0:
        problems.append(f"needs 'max_age_seconds' as a positive integer, not {max_age!r}")
    if problems or not isinstance(max_age, int):
        return None, problems
    return Ttl(str(reference_field), max_age), []


def read_composite(name: str, config: Mapping[str, Any]) -> tuple[Composite | None, list[str]]:
    """COMPOSITE settings; steps become guardians named ``<name>.steps[<i>]``."""
    problems: list[str] = []
    logic = config.get("logic")
    if not isinstance(logic, str) or logic.upper() not in LOGICS:
        problems.append(f"needs 'logic' AND or OR, not {logic!r}")
    steps = config.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append("needs a non-empty 'steps' list of {type, config}")
        steps = []
    guardians = []
    for index, step in enumerate(steps):
        guardian, step_problems = read_step(f"{name}.steps[{index}]", step)
        problems.extend(step_problems)
        if guardian is not None:
            guardians.append(guardian)
    if problems:
        return None, problems
    return Composite(str(logic).upper(), tuple(guardians)), []


def read_step(name: str, step: object) -> tuple[GuardianDef | None, list[str]]:
    """One COMPOSITE step ``{type, config}`` as a guardian called ``name``."""
    if not isinstance(step, Mapping):
        return None, [f"{name} must be a mapping {{type, config}}"]
    unknown = [str(k) for k in step if k not in ("type", "config")]
    if unknown:
        listed = ", ".join(unknown)
        return None, [f"{name} has unknown key(s) {listed}; give only type and config"]
    raw_type, config = step.get("type"), step.get("config", {})
    known = ", ".join(GATE_TYPES)
    if not isinstance(raw_type, str) or raw_type.strip().upper() not in GATE_TYPES:
        return None, [f"{name} has type {raw_type!r}; a step must be a gate ({known})"]
    if config is None:
        config = {}
    if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
        return None, [f"{name} config must be a mapping with string keys"]
    return GuardianDef(name, GuardianType(raw_type.strip().upper()), dict(config)), []


def read_filter(config: Mapping[str, Any]) -> tuple[DirectionalFilter | None, list[str]]:
    """DIRECTIONAL_FILTER settings; ``routing_attribute`` is the prototype's ``routing_key``."""
    problems: list[str] = []
    key = config["routing_key"] if "routing_key" in config else config.get("routing_attribute")
    if "routing_key" in config and "routing_attribute" in config:
        problems.append("gives both 'routing_key' and 'routing_attribute'; give one")
    if blank(key):
        problems.append("needs 'routing_key' naming the attribute to route on")
    routes = config.get("routes")
    if not isinstance(routes, Mapping) or not routes:
        problems.append("needs a non-empty 'routes' mapping (value -> interaction)")
        routes = {}
    bad = [route_key(k) for k, v in routes.items() if blank(v)]
    if bad:
        problems.append(f"routes {', '.join(bad)} must each name an interaction")
    if problems:
        return None, problems
    return DirectionalFilter(str(key), {route_key(k): str(v) for k, v in routes.items()}), []


def read_policy(config: Mapping[str, Any]) -> tuple[tuple[Branch, ...] | None, list[str]]:
    """The ``interaction_policy`` branches, or ``(None, [])`` when there is no policy."""
    policy = config.get("interaction_policy")
    if policy is None:
        return None, []
    branches = policy.get("branches") if isinstance(policy, Mapping) else None
    if not isinstance(branches, list) or not branches:
        return None, ["'interaction_policy' needs a non-empty 'branches' list"]
    read = [_branch(index, item) for index, item in enumerate(branches)]
    problems = [problem for _, found in read for problem in found]
    parsed = tuple(b for b, _ in read if b is not None)
    if sum(b.default for b in parsed) > 1:
        problems.append("'interaction_policy' has more than one default branch; keep one")
    return (None if problems else parsed), problems


def _branch(index: int, item: object) -> tuple[Branch | None, list[str]]:
    where = f"branch {index}"
    if not isinstance(item, Mapping):
        return None, [f"{where} must be a mapping"]
    default = item.get("default", False)
    condition, target = item.get("condition"), item.get("next_interaction")
    problems: list[str] = []
    if not isinstance(default, bool):
        problems.append(f"{where}: 'default' must be true or false")
    elif default and condition is not None:
        problems.append(
            f"{where} is a default branch and must not have a condition; remove one of them"
        )
    elif not default and blank(condition):
        problems.append(f"{where} needs a 'condition' (or 'default: true')")
    if (not default or target is not None) and blank(target):
        problems.append(f"{where} needs 'next_interaction' naming an interaction")
    if problems:
        return None, problems
    return Branch(condition, target, bool(default)), []


# --- PILOT_APPROVAL -------------------------------------------------------------------------

APPROVAL_KEYS = (
    "condition",
    "priority",
    "expires_in_seconds",
    "on_expiry",
    "title",
    "description",
    "default",
)
PRIORITIES = ("critical", "high", "normal", "low")
ON_EXPIRY = ("cancel", "approve")
# Ten years: the longest a gate may let a request wait before it expires.
MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600
MAX_TITLE = 200


@dataclass(frozen=True)
class Approval:
    """A PILOT_APPROVAL gate: which work it parks (no condition: all) and the request's
    settings; ``on_expiry`` matters only with ``expires_in_seconds``."""

    condition: str | None = None
    priority: str = "normal"
    expires_in_seconds: int | None = None
    on_expiry: str = "cancel"
    title: str | None = None
    description: str | None = None


def read_approval(config: Mapping[str, Any]) -> tuple[Approval | None, list[str]]:
    """PILOT_APPROVAL settings, every problem named (the condition's syntax is R11's)."""
    problems: list[str] = []
    unknown = [str(k) for k in config if k not in APPROVAL_KEYS]
    if unknown:
        known = ", ".join(APPROVAL_KEYS)
        problems.append(f"has unknown key(s) {', '.join(unknown)} (known: {known})")
    condition = config.get("condition")
    if condition is not None and blank(condition):
        problems.append("'condition' must be a non-blank string (or left out: park all work)")
    priority = config.get("priority", "normal")
    if not isinstance(priority, str) or priority.strip().lower() not in PRIORITIES:
        problems.append(f"has unknown priority {priority!r} (known: {', '.join(PRIORITIES)})")
    expires = config.get("expires_in_seconds")
    if expires is not None and (
        not isinstance(expires, int)
        or isinstance(expires, bool)
        or not 0 < expires <= MAX_EXPIRY_SECONDS
    ):
        problems.append(
            f"needs 'expires_in_seconds' as a positive integer of seconds (at most "
            f"{MAX_EXPIRY_SECONDS}), not {expires!r}"
        )
    on_expiry = config.get("on_expiry", "cancel")
    if not isinstance(on_expiry, str) or on_expiry.strip().lower() not in ON_EXPIRY:
        problems.append(f"has unknown on_expiry {on_expiry!r} (known: {', '.join(ON_EXPIRY)})")
    for key in ("title", "description"):
        if key in config and blank(config[key]):
            problems.append(f"'{key}' must be a non-blank string")
    title = config.get("title")
    if isinstance(title, str) and len(title) > MAX_TITLE:
        problems.append(f"'title' must be at most {MAX_TITLE} characters (a request's title)")
    if problems:
        return None, problems
    return (
        Approval(
            condition=condition,
            priority=str(priority).strip().lower(),
            expires_in_seconds=expires,
            on_expiry=str(on_expiry).strip().lower(),
            title=config.get("title"),
            description=config.get("description"),
        ),
        [],
    )


# --- CONDITIONAL_INJECTOR (Dynamic Context Injection) ----------------------------------------

INJECTOR_SCOPES = ("pre_execution",)
INJECTOR_ACTIONS = ("mutate",)
RULE_KEYS = ("condition", "action", "payload")
PAYLOAD_KEYS = ("model_override", "instructions", "knowledge_fragments")


@dataclass(frozen=True)
class InjectionRule:
    """One rule of an injector: when ``condition`` holds at checkout, mutate what the actor
    is told (its model, instructions and knowledge fragments)."""

    index: int
    condition: str
    model_override: str | None = None
    instructions: str | None = None
    knowledge_fragments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Injector:
    """A CONDITIONAL_INJECTOR guardian's rules, in order."""

    guardian: str
    rules: tuple[InjectionRule, ...]


def read_injector(name: str, config: Mapping[str, Any]) -> tuple[Injector | None, list[str]]:
    """CONDITIONAL_INJECTOR settings: ``scope`` (only ``pre_execution``; the default) and a
    non-empty ``rules`` list of ``{condition, action: mutate, payload}``.

    Whether each condition parses is checked with the other conditions (R11).
    """
    problems: list[str] = []
    scope = config.get("scope", INJECTOR_SCOPES[0])
    if scope not in INJECTOR_SCOPES:
        problems.append(
            f"has scope {scope!r}; only 'pre_execution' (at checkout) is supported: set "
            f"'scope: pre_execution' or remove it"
        )
    rules = config.get("rules")
    if not isinstance(rules, list) or not rules:
        problems.append(
            "needs a non-empty 'rules' list of {condition, action: mutate, payload}; an "
            f"injector without rules does nothing, not {rules!r}"
        )
        rules = []
    read = [_injection_rule(index, item) for index, item in enumerate(rules)]
    problems.extend(problem for _, found in read for problem in found)
    if problems:
        return None, problems
    return Injector(name, tuple(r for r, _ in read if r is not None)), []


def _injection_rule(index: int, item: object) -> tuple[InjectionRule | None, list[str]]:
    where = f"rule {index}"
    if not isinstance(item, Mapping):
        return None, [f"{where} must be a mapping {{condition, action, payload}}"]
    problems: list[str] = []
    unknown = [str(k) for k in item if k not in RULE_KEYS]
    if unknown:
        problems.append(
            f"{where} has unknown key(s) {', '.join(unknown)}; give only condition, action "
            f"and payload"
        )
    condition = item.get("condition")
    if blank(condition):
        problems.append(
            f"{where} needs a 'condition' in the condition language, not {condition!r} "
            f"(write 'true' for a rule that always applies)"
        )
    action = item.get("action")
    if not isinstance(action, str) or action.strip().lower() not in INJECTOR_ACTIONS:
        known = ", ".join(INJECTOR_ACTIONS)
        problems.append(f"{where} has unknown action {action!r} (known: {known}); use mutate")
    payload, payload_problems = _payload(where, item.get("payload"))
    problems.extend(payload_problems)
    if problems or payload is None:
        return None, problems
    return InjectionRule(index, str(condition), **payload), []


def _payload(where: str, payload: object) -> tuple[dict[str, Any] | None, list[str]]:
    keys = ", ".join(PAYLOAD_KEYS)
    if not isinstance(payload, Mapping) or not payload:
        return None, [f"{where} needs a 'payload' mapping setting one or more of {keys}"]
    problems: list[str] = []
    unknown = [str(k) for k in payload if k not in PAYLOAD_KEYS]
    if unknown:
        problems.append(f"{where} payload has unknown key(s) {', '.join(unknown)} (known: {keys})")
    read: dict[str, Any] = {}
    for key in ("model_override", "instructions"):
        if key in payload:
            value = payload[key]
            if blank(value):
                problems.append(f"{where} payload '{key}' must be non-blank text, not {value!r}")
            else:
                read[key] = value
    if "knowledge_fragments" in payload:
        fragments = payload["knowledge_fragments"]
        if not isinstance(fragments, list) or any(blank(f) for f in fragments):
            problems.append(
                f"{where} payload 'knowledge_fragments' must be a list of non-blank texts, "
                f"not {fragments!r}"
            )
        else:
            read["knowledge_fragments"] = tuple(fragments)
    return (None if problems else read), problems


def read_allowed_models(ai_context: object) -> tuple[frozenset[str], list[str]]:
    """The models a workflow lets an injector choose (``ai_context.allowed_models``); none
    when it lists none."""
    if not isinstance(ai_context, Mapping) or "allowed_models" not in ai_context:
        return frozenset(), []
    models = ai_context["allowed_models"]
    if not isinstance(models, list) or any(blank(m) for m in models):
        return frozenset(), [
            "needs the workflow's ai_context 'allowed_models' to be a list of model names, "
            f"not {models!r}"
        ]
    return frozenset(models), []
