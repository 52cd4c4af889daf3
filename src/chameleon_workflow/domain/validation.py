"""The constitutional rules of a workflow definition.

:func:`validate` reports every broken rule at once, ordered by rule id and then by the
definition's own order; :func:`check` raises them as one :class:`DefinitionInvalid`.
Rule ids and what they protect are documented in ``docs/workflows.md``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from .definition import ComponentDef, RoleDef, WorkflowDefinition
from .enums import Direction, GuardianType, RoleType, Strategy
from .errors import DefinitionInvalid, Violation
from .parsing_fields import unknown_fix
from .validation_guardians import condition_violations, config_violations
from .validation_routing import routing_violations

Rule = Callable[[WorkflowDefinition], Iterable[Violation]]

_SINGLETONS = (
    ("R1", "Single origin", RoleType.ALPHA),
    ("R2", "Single terminal", RoleType.OMEGA),
    ("R3", "Error handling (Ate path)", RoleType.EPSILON),
    ("R4", "Timeout handling (Chronos path)", RoleType.TAU),
)


def validate(defn: WorkflowDefinition) -> list[Violation]:
    """Every violated rule of ``defn`` (empty when the definition is valid)."""
    return [v for rule in _RULES for v in rule(defn)]


def check(defn: WorkflowDefinition) -> None:
    """Raise DefinitionInvalid listing every violation, or return when ``defn`` is valid."""
    violations = validate(defn)
    if violations:
        raise DefinitionInvalid(violations)


def _singletons(defn: WorkflowDefinition) -> Iterable[Violation]:
    for rule, protects, role_type in _SINGLETONS:
        roles = defn.roles_of_type(role_type)
        if not roles:
            message = (
                f"workflow '{defn.name}' has no {role_type.value} role; exactly one is required: "
                f"add a role with role_type {role_type.value}"
            )
            yield Violation(rule, protects, f"workflow '{defn.name}'", message)
        elif len(roles) > 1:
            names = ", ".join(f"'{r.name}'" for r in roles)
            message = (
                f"workflow has {len(roles)} {role_type.value} roles ({names}); exactly one is "
                f"required: keep one and change the role_type of the others (or remove them)"
            )
            yield Violation(rule, protects, f"role '{roles[1].name}'", message)


def _strategies(defn: WorkflowDefinition) -> Iterable[Violation]:
    known = " or ".join(s.value for s in Strategy)
    for role in defn.roles_of_type(RoleType.BETA):
        if role.strategy is None:
            message = (
                f"BETA role '{role.name}' has no strategy ({known}): add 'strategy: "
                f"HOMOGENEOUS' or 'strategy: HETEROGENEOUS' to it"
            )
            yield Violation("R5", "Decomposition strategy", f"role '{role.name}'", message)


def _flow(defn: WorkflowDefinition) -> Iterable[Violation]:
    by_interaction: dict[str, list[ComponentDef]] = {}
    for c in defn.components:
        by_interaction.setdefault(c.interaction, []).append(c)
    for interaction in defn.interactions:
        linked = by_interaction.get(interaction.name, [])
        where = f"interaction '{interaction.name}'"
        if not any(c.direction is Direction.OUTBOUND for c in linked):
            message = (
                f"{where} has no producer (no OUTBOUND component puts work into it): add a "
                f"component with direction OUTBOUND that writes to '{interaction.name}', or "
                f"remove the interaction"
            )
            yield Violation("R7", "Flow integrity", where, message)
        if not any(c.direction is Direction.INBOUND for c in linked):
            message = (
                f"{where} has no consumer (no INBOUND component takes work from it): add a "
                f"component with direction INBOUND that reads from '{interaction.name}', or "
                f"remove the interaction"
            )
            yield Violation("R7", "Flow integrity", where, message)


def _inbound_of(defn: WorkflowDefinition, role_type: RoleType) -> list[ComponentDef]:
    roles = {r.name for r in defn.roles_of_type(role_type)}
    return [c for c in defn.components if c.role in roles and c.direction is Direction.INBOUND]


def _ate_guard(defn: WorkflowDefinition) -> Iterable[Violation]:
    for c in _inbound_of(defn, RoleType.EPSILON):
        if not c.guardians:
            message = (
                f"component '{c.name}' feeds EPSILON without a guardian: add a guardian to it "
                f"(e.g. 'guardian: {{type: PASS_THRU}}')"
            )
            yield Violation("R8", "Ate guard", f"component '{c.name}'", message)


def _cerberus(defn: WorkflowDefinition) -> Iterable[Violation]:
    for c in _inbound_of(defn, RoleType.OMEGA):
        if not any(g.type is GuardianType.CERBERUS for g in c.guardians):
            message = (
                f"component '{c.name}' feeds OMEGA without a CERBERUS guardian: add "
                f"'guardian: {{type: CERBERUS}}' to it"
            )
            yield Violation("R9", "Cerberus mandate", f"component '{c.name}'", message)


def _directions(defn: WorkflowDefinition) -> Iterable[Violation]:
    expected = ((RoleType.ALPHA, Direction.OUTBOUND), (RoleType.OMEGA, Direction.INBOUND))
    for role_type, needed in expected:
        for role in defn.roles_of_type(role_type):
            yield from _direction_of(defn, role, needed)


def _direction_of(
    defn: WorkflowDefinition, role: RoleDef, needed: Direction
) -> Iterable[Violation]:
    where = f"role '{role.name}'"
    forbidden = Direction.INBOUND if needed is Direction.OUTBOUND else Direction.OUTBOUND
    if not defn.components_of(role.name, needed):
        message = (
            f"{role.type.value} {where} has no {needed.value} component: add a component "
            f"with role '{role.name}' and direction {needed.value}"
        )
        yield Violation("R10", "Directional integrity", where, message)
    for c in defn.components_of(role.name, forbidden):
        message = (
            f"{role.type.value} {where} must not have {forbidden.value} component '{c.name}': "
            f"remove it, or give it to another role"
        )
        yield Violation("R10", "Directional integrity", f"component '{c.name}'", message)


def _unique_names(defn: WorkflowDefinition) -> Iterable[Violation]:
    kinds = (
        ("role", [r.name for r in defn.roles]),
        ("interaction", [i.name for i in defn.interactions]),
        ("component", [c.name for c in defn.components]),
        ("guardian", [g.name for c in defn.components for g in c.guardians]),
    )
    for kind, names in kinds:
        for name, count in Counter(names).items():
            if count > 1:
                message = (
                    f"{count} {kind}s are named '{name}'; {kind} names must be unique: rename "
                    f"all but one"
                )
                yield Violation("R14", "Unique names", f"{kind} '{name}'", message)


def _references(defn: WorkflowDefinition) -> Iterable[Violation]:
    roles = [r.name for r in defn.roles]
    interactions = [i.name for i in defn.interactions]
    role_set, interaction_set = set(roles), set(interactions)
    for c in defn.components:
        where = f"component '{c.name}'"
        if c.role not in role_set:
            message = f"{where} names unknown role '{c.role}': {unknown_fix('role', c.role, roles)}"
            yield Violation("R15", "Referential integrity", where, message)
        if c.interaction not in interaction_set:
            fix = unknown_fix("interaction", c.interaction, interactions)
            message = f"{where} names unknown interaction '{c.interaction}': {fix}"
            yield Violation("R15", "Referential integrity", where, message)


# R6 (known vocabulary) is enforced while parsing: the typed model cannot hold unknown words.
_RULES: tuple[Rule, ...] = (
    _singletons,
    _strategies,
    _flow,
    _ate_guard,
    _cerberus,
    _directions,
    condition_violations,
    routing_violations,
    config_violations,
    _unique_names,
    _references,
)
