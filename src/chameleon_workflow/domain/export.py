"""Export a workflow definition as canonical YAML (re-importable) or as Graphviz DOT."""

from __future__ import annotations

import re
from typing import Any

import yaml

from .definition import ComponentDef, GuardianDef, InteractionDef, RoleDef, WorkflowDefinition
from .enums import Direction, RoleType

# Line-break-like and control characters that PyYAML may emit unescaped in plain or
# single-quoted scalars, where a reader would fold them into spaces.
_NEEDS_ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that double-quotes (and so escapes) strings holding special characters."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if _NEEDS_ESCAPES.search(text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def to_mapping(defn: WorkflowDefinition) -> dict[str, Any]:
    """The canonical document as JSON-compatible data: ``parse_workflow_mapping`` reads it back.

    This is what the database stores, so loading a definition never parses YAML again.
    """
    return {"workflow": _workflow(defn)}


def to_yaml(defn: WorkflowDefinition) -> str:
    """Canonical YAML: ``parse_workflow_yaml(to_yaml(d)) == d`` for every parsable ``d``."""
    return yaml.dump(
        to_mapping(defn),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def _compact(pairs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pairs.items() if v is not None}


def _workflow(d: WorkflowDefinition) -> dict[str, Any]:
    head = _compact(
        {
            "name": d.name,
            "description": d.description,
            "version": d.version,
            "ai_context": d.ai_context,
            "schema_json": d.schema_json,
            "zombie_timeout_seconds": d.zombie_timeout_seconds,
            "zombie_policy": d.zombie_policy.value if d.zombie_policy else None,
            "max_reclaims": d.max_reclaims,
            "stale_token_limit_seconds": d.stale_token_limit_seconds,
            "max_visits": d.max_visits,
        }
    )
    head["roles"] = [_role(r) for r in d.roles]
    head["interactions"] = [_interaction(i) for i in d.interactions]
    head["components"] = [_component(c) for c in d.components]
    return head


def _role(r: RoleDef) -> dict[str, Any]:
    return _compact(
        {
            "name": r.name,
            "role_type": r.type.value,
            "strategy": r.strategy.value if r.strategy else None,
            "description": r.description,
            "ai_context": r.ai_context,
            "zombie_timeout_seconds": r.zombie_timeout_seconds,
            "zombie_policy": r.zombie_policy.value if r.zombie_policy else None,
            "max_reclaims": r.max_reclaims,
            "max_visits": r.max_visits,
        }
    )


def _interaction(i: InteractionDef) -> dict[str, Any]:
    return _compact(
        {
            "name": i.name,
            "description": i.description,
            "ai_context": i.ai_context,
            "stale_token_limit_seconds": i.stale_token_limit_seconds,
        }
    )


def _component(c: ComponentDef) -> dict[str, Any]:
    out = _compact(
        {
            "name": c.name,
            "role": c.role,
            "interaction": c.interaction,
            "direction": c.direction.value,
            "description": c.description,
            "ai_context": c.ai_context,
        }
    )
    if c.guardians:
        out["guardians"] = [_guardian(g) for g in c.guardians]
    return out


def _guardian(g: GuardianDef) -> dict[str, Any]:
    return _compact(
        {
            "name": g.name,
            "type": g.type.value,
            "config": dict(g.config),
            "description": g.description,
            "ai_context": g.ai_context,
        }
    )


# Shapes tell the role types apart at a glance; every role is still a box-like node.
_SHAPES = {
    RoleType.ALPHA: "invhouse",
    RoleType.BETA: "box",
    RoleType.OMEGA: "house",
    RoleType.EPSILON: "octagon",
    RoleType.TAU: "hexagon",
}


def dot_quote(text: str) -> str:
    """A DOT double-quoted string; backslashes and newlines are escaped so labels stay literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(defn: WorkflowDefinition) -> str:
    """Graphviz DOT: roles are boxes, interactions ellipses, components directed edges."""
    # Synthetic node ids keep a role and an interaction of the same name apart and keep
    # user text out of identifiers; names only ever appear inside quoted labels.
    role_ids = {r.name: f"r{n}" for n, r in enumerate(defn.roles)}
    interaction_ids = {i.name: f"i{n}" for n, i in enumerate(defn.interactions)}
    lines = [f"digraph {dot_quote(defn.name)} {{", "  rankdir=LR;"]
    for r in defn.roles:
        label = dot_quote(f"{r.name}\n[{r.type.value}]")
        lines.append(f"  {role_ids[r.name]} [shape={_SHAPES[r.type]}, label={label}];")
    for i in defn.interactions:
        lines.append(f"  {interaction_ids[i.name]} [shape=ellipse, label={dot_quote(i.name)}];")
    lines.extend(_dangling_nodes(defn, role_ids, interaction_ids))
    for c in defn.components:
        lines.append(_edge(c, role_ids, interaction_ids))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dangling_nodes(
    defn: WorkflowDefinition, role_ids: dict[str, str], interaction_ids: dict[str, str]
) -> list[str]:
    """Nodes for references that resolve to nothing, so an invalid definition still draws."""
    lines: list[str] = []
    for c in defn.components:
        for ids, name, prefix in ((role_ids, c.role, "r"), (interaction_ids, c.interaction, "i")):
            if name not in ids:
                ids[name] = f"{prefix}x{len(lines)}"
                label = dot_quote(f"{name}\n(undefined)")
                lines.append(f"  {ids[name]} [shape=plaintext, style=dashed, label={label}];")
    return lines


def _edge(c: ComponentDef, role_ids: dict[str, str], interaction_ids: dict[str, str]) -> str:
    role, interaction = role_ids[c.role], interaction_ids[c.interaction]
    tail, head = (role, interaction) if c.direction is Direction.OUTBOUND else (interaction, role)
    label = dot_quote(", ".join(g.type.value for g in c.guardians))
    return f"  {tail} -> {head} [label={label}, tooltip={dot_quote(c.name)}];"
