"""Workflow YAML (the prototype's format) to the typed :class:`WorkflowDefinition`.

Parsing reports every structural and vocabulary problem of a document at once, as a
:class:`DefinitionInvalid`; the constitutional rules are checked later by :mod:`.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .definition import ComponentDef, GuardianDef, InteractionDef, RoleDef, WorkflowDefinition
from .enums import Direction, GuardianType, RoleType, Strategy, ZombiePolicy
from .errors import DefinitionInvalid
from .parsing_fields import (
    Problems,
    a_type,
    aliased,
    check_keys,
    config_of,
    enum_value,
    free_form,
    mapping_list,
    name_of,
    optional_str,
    positive_int,
    reference,
    unknown_fix,
    usable_name,
    version_str,
)
from .yaml_budget import DEFAULT_BUDGET, YamlBudget, over_budget
from .yaml_loading import compose, construct

EMPTY_DOCUMENT = (
    "the document is empty: send a workflow definition in YAML, a mapping with a 'workflow' key"
)
SECTIONS = ("roles", "interactions", "components", "guardians")
_NULL_TAG = "tag:yaml.org,2002:null"
REQUIRED_SECTIONS = ("roles", "interactions", "components")
# The keys each element may carry, in the order messages list them.
_COMMON = ("description", "ai_context")
_ZOMBIE = ("zombie_timeout_seconds", "zombie_policy", "max_reclaims")
_LOOP = ("max_visits",)  # the loop guard (docs/pilot.md)
WORKFLOW_KEYS = (
    "name", "version", *_COMMON, "schema_json", *_ZOMBIE, "stale_token_limit_seconds", *_LOOP
)  # fmt: skip
ROLE_KEYS = ("name", "role_type", "type", "strategy", *_COMMON, *_ZOMBIE, *_LOOP)
INTERACTION_KEYS = ("name", *_COMMON, "stale_token_limit_seconds")
_LINKS = ("role", "role_name", "interaction", "interaction_name", "direction")
COMPONENT_KEYS = ("name", *_LINKS, *_COMMON, "guardian", "guardians")
GUARDIAN_KEYS = ("name", "type", "config", "attributes", *_COMMON, "component_name", "component")


def parse_workflow_yaml(
    text: str, budget: YamlBudget | None = DEFAULT_BUDGET
) -> WorkflowDefinition:
    """Parse a YAML document (safe loader only); raises DefinitionInvalid listing all problems.

    The document is composed first and refused, before any Python data is built from it,
    when its aliases and merge keys would expand it beyond ``budget`` (None: no budget).
    """
    problems = Problems()
    try:
        data = _load(text, budget, problems)
    except yaml.YAMLError as exc:
        problems.structure("document", f"the document is not valid YAML: {exc}")
        raise DefinitionInvalid(problems.violations) from exc
    except (ValueError, OverflowError) as exc:
        # The loader's own conversions: e.g. a 2024-13-45 timestamp or a 5000-digit integer.
        problems.structure("document", f"the document holds a value YAML cannot load: {exc}")
        raise DefinitionInvalid(problems.violations) from exc
    except RecursionError:
        # PyYAML composes nested collections recursively; absurd nesting must not be a crash.
        problems.structure("document", "the document is nested too deeply")
        raise DefinitionInvalid(problems.violations) from None
    if problems:
        raise DefinitionInvalid(problems.violations)
    return parse_workflow_mapping(data)


def _load(text: str, budget: YamlBudget | None, problems: Problems) -> object:
    root = compose(text)
    if root is None or (root.tag == _NULL_TAG and root.value == ""):
        problems.structure("document", EMPTY_DOCUMENT)
        return None
    refusal = over_budget(root, len(text), budget) if budget else None
    if refusal:
        problems.structure("document", refusal)
        return None
    return construct(root)


def parse_workflow_mapping(data: object) -> WorkflowDefinition:
    """Build the typed model from loaded YAML/JSON; raises DefinitionInvalid with all problems."""
    problems = Problems()
    definition = _workflow(data, problems)
    if problems or definition is None:
        raise DefinitionInvalid(problems.violations)
    return definition


def _workflow(data: object, p: Problems) -> WorkflowDefinition | None:
    if not isinstance(data, Mapping):
        p.structure(
            "document",
            f"the document must be a mapping with a 'workflow' key, not {a_type(data)}",
        )
        return None
    check_keys(data, ("workflow", *SECTIONS), "the document", p)
    head = data.get("workflow")
    if not isinstance(head, Mapping):
        what = "has no 'workflow' mapping" if head is None else f"has {a_type(head)} as 'workflow'"
        p.structure("workflow", f"the document {what}")
        head = {}
    check_keys(head, (*WORKFLOW_KEYS, *SECTIONS), "workflow", p)
    name = name_of(head, "workflow", p)
    settings = _workflow_settings(head, p)
    # Sections are read one after another so problems are reported in document order.
    role_items = _section(data, head, "roles", p)
    roles = tuple(r for r in (_role(label, m, p) for label, m in role_items) if r)
    interaction_items = _section(data, head, "interactions", p)
    interactions = tuple(
        i for i in (_interaction(label, m, p) for label, m in interaction_items) if i
    )
    component_items = _section(data, head, "components", p)
    components = _components(component_items, _section(data, head, "guardians", p), p)
    if name is None:
        return None
    return WorkflowDefinition(
        name=name,
        roles=roles,
        interactions=interactions,
        components=components,
        **settings,
    )


def _workflow_settings(head: Mapping[Any, Any], p: Problems) -> dict[str, Any]:
    return {
        "description": optional_str(head, "description", "workflow", p),
        "version": version_str(head.get("version"), "workflow", p),
        "ai_context": free_form(head.get("ai_context"), "ai_context", "workflow", p),
        "schema_json": free_form(head.get("schema_json"), "schema_json", "workflow", p),
        "zombie_timeout_seconds": positive_int(head, "zombie_timeout_seconds", "workflow", p),
        "zombie_policy": _zombie_policy(head, "workflow", p),
        "max_reclaims": positive_int(head, "max_reclaims", "workflow", p),
        "stale_token_limit_seconds": positive_int(head, "stale_token_limit_seconds", "workflow", p),
        "max_visits": positive_int(head, "max_visits", "workflow", p),
    }


def _section(
    data: Mapping[Any, Any], head: Mapping[Any, Any], section: str, p: Problems
) -> list[tuple[str, Mapping[Any, Any]]]:
    """A list section, found at the top level or under ``workflow`` (not both)."""
    if section in data and section in head:
        p.structure(
            section, f"section '{section}' appears both at the top level and under 'workflow'"
        )
        return []
    value = data.get(section, head.get(section))
    if value is None:
        if section in REQUIRED_SECTIONS:
            p.structure(section, f"the workflow has no '{section}' section")
        return []
    return mapping_list(value, section, p)


def _label(kind: str, data: Mapping[Any, Any], fallback: str) -> str:
    name = data.get("name")
    return f"{kind} '{name}'" if usable_name(name) else fallback


def _zombie_policy(data: Mapping[Any, Any], where: str, p: Problems) -> ZombiePolicy | None:
    return enum_value(
        data.get("zombie_policy"), ZombiePolicy, "zombie_policy", where, p, lower=True
    )


def _role(label: str, data: Mapping[Any, Any], p: Problems) -> RoleDef | None:
    where = _label("role", data, label)
    check_keys(data, ROLE_KEYS, where, p)
    name = name_of(data, where, p)
    raw_type = aliased(data, ("role_type", "type"), where, p)
    if raw_type is None:
        p.structure(where, f"{where} has no role_type")
    role_type = enum_value(raw_type, RoleType, "type", where, p)
    strategy = enum_value(data.get("strategy"), Strategy, "strategy", where, p)
    role = RoleDef(
        name=name or "",
        type=role_type or RoleType.BETA,
        strategy=strategy,
        description=optional_str(data, "description", where, p),
        ai_context=free_form(data.get("ai_context"), "ai_context", where, p),
        zombie_timeout_seconds=positive_int(data, "zombie_timeout_seconds", where, p),
        zombie_policy=_zombie_policy(data, where, p),
        max_reclaims=positive_int(data, "max_reclaims", where, p),
        max_visits=positive_int(data, "max_visits", where, p),
    )
    if role.max_visits is not None and role_type is RoleType.ALPHA:
        p.structure(
            where,
            f"{where}: max_visits limits how often work enters a role, and work never enters "
            f"an ALPHA role: remove it",
        )
    return role if name and role_type else None


def _interaction(label: str, data: Mapping[Any, Any], p: Problems) -> InteractionDef | None:
    where = _label("interaction", data, label)
    check_keys(data, INTERACTION_KEYS, where, p)
    name = name_of(data, where, p)
    interaction = InteractionDef(
        name=name or "",
        description=optional_str(data, "description", where, p),
        ai_context=free_form(data.get("ai_context"), "ai_context", where, p),
        stale_token_limit_seconds=positive_int(data, "stale_token_limit_seconds", where, p),
    )
    return interaction if name else None


@dataclass
class _RawComponent:
    """A component as read, before its guardians (nested and top-level) are named and typed."""

    where: str
    data: Mapping[Any, Any]
    name: str | None
    guardians: list[tuple[str, Mapping[Any, Any]]] = field(default_factory=list)


def _components(
    items: list[tuple[str, Mapping[Any, Any]]],
    top_guardians: list[tuple[str, Mapping[Any, Any]]],
    p: Problems,
) -> tuple[ComponentDef, ...]:
    raws = [_raw_component(label, data, p) for label, data in items]
    by_name: dict[str, _RawComponent] = {}
    for raw in raws:
        if raw.name is not None:
            by_name.setdefault(raw.name, raw)
    for label, data in top_guardians:
        _attach(label, data, by_name, p)
    built = (_component(raw, p) for raw in raws)
    return tuple(c for c in built if c is not None)


def _raw_component(label: str, data: Mapping[Any, Any], p: Problems) -> _RawComponent:
    where = _label("component", data, label)
    check_keys(data, COMPONENT_KEYS, where, p)
    raw = _RawComponent(where, data, name_of(data, where, p))
    nested = data.get("guardian")
    if nested is not None:
        if isinstance(nested, Mapping):
            raw.guardians.append((f"{where}.guardian", nested))
        else:
            p.structure(where, f"{where}: guardian must be a mapping, not {a_type(nested)}")
    if data.get("guardians") is not None:
        raw.guardians.extend(mapping_list(data["guardians"], f"{where}.guardians", p))
    for g_label, g_data in raw.guardians:
        named = aliased(g_data, ("component_name", "component"), g_label, p)
        if named is not None and named != raw.name:
            p.structure(g_label, f"{g_label} is nested in {where} but names component {named!r}")
    return raw


def _attach(
    label: str, data: Mapping[Any, Any], by_name: Mapping[str, _RawComponent], p: Problems
) -> None:
    """Top-level guardians join their component's list after its nested ones, in file order."""
    where = _label("guardian", data, label)
    target = reference(
        aliased(data, ("component_name", "component"), where, p), "component", where, p
    )
    if target is None:
        return
    raw = by_name.get(target)
    if raw is None:
        fix = unknown_fix("component", target, by_name)
        p.reference(where, f"{where} names unknown component {target!r}: {fix}")
        return
    raw.guardians.append((label, data))


def _component(raw: _RawComponent, p: Problems) -> ComponentDef | None:
    where, data = raw.where, raw.data
    role = reference(aliased(data, ("role", "role_name"), where, p), "role", where, p)
    interaction = reference(
        aliased(data, ("interaction", "interaction_name"), where, p), "interaction", where, p
    )
    if data.get("direction") is None:
        p.structure(where, f"{where} has no direction")
    direction = enum_value(data.get("direction"), Direction, "direction", where, p)
    guardians = tuple(
        _guardian(label, g, raw.name or where, index, p)
        for index, (label, g) in enumerate(raw.guardians, start=1)
    )
    description = optional_str(data, "description", where, p)
    ai_context = free_form(data.get("ai_context"), "ai_context", where, p)
    if raw.name is None or role is None or interaction is None or direction is None:
        return None
    return ComponentDef(
        name=raw.name,
        role=role,
        interaction=interaction,
        direction=direction,
        guardians=tuple(g for g in guardians if g is not None),
        description=description,
        ai_context=ai_context,
    )


def _guardian(
    label: str, data: Mapping[Any, Any], component: str, index: int, p: Problems
) -> GuardianDef | None:
    """A guardian without a name is called ``<component>_guardian_<n>`` (n counts from 1)."""
    check_keys(data, GUARDIAN_KEYS, _label("guardian", data, label), p)
    name = name_of(data, label, p, required=False) if "name" in data else None
    name = name or f"{component}_guardian_{index}"
    where = f"guardian '{name}'"
    if data.get("type") is None:
        p.structure(where, f"{where} has no type")
    guardian_type = enum_value(data.get("type"), GuardianType, "type", where, p)
    # The prototype's documentation spells a guardian's settings ``attributes``.
    config = config_of(aliased(data, ("config", "attributes"), where, p), where, p)
    description = optional_str(data, "description", where, p)
    ai_context = free_form(data.get("ai_context"), "ai_context", where, p)
    if guardian_type is None:
        return None
    return GuardianDef(
        name=name,
        type=guardian_type,
        config=config,
        description=description,
        ai_context=ai_context,
    )
