"""Dead ends: shapes that are valid but where work can get stuck. They are warnings, not errors.

The flow is the graph of components: a role's OUTBOUND component leads to an interaction, an
interaction's INBOUND components lead to the roles that take work from it.

- **W1 No way back** (EPSILON, TAU): a failure role has a path back into the flow when a chain
  of components leads from it to an interaction a BETA or OMEGA role takes work from (possibly
  through the other failure role). Without one, remediated work can only fail again or be
  abandoned: it ping-pongs between the failure roles until the zombie protocol gives up.
- **W2 Unreachable role**: no chain of components leads to the role from ALPHA or from the
  Ate and Chronos interactions (which the engine itself feeds with failed work).
- **W3 Queue nobody can take from**: work lands in an interaction as PENDING (routed there by
  an OUTBOUND component) or as FAILED (it is the Ate or Chronos interaction); BETA and OMEGA
  take only PENDING work, EPSILON and TAU take both, and a consumer whose gate never passes
  (a condition on no attribute that is false, e.g. ``1 > 2``) takes nothing. An interaction
  that receives work none of its consumers can take holds that work for ever.

Only components count: routing conditions are not evaluated (a route is a possible path).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .definition import ComponentDef, GuardianDef, WorkflowDefinition
from .enums import Direction, GuardianType, RoleType, UowStatus
from .errors import ConditionError
from .gates import MAX_COMPOSITE_DEPTH
from .guardian_config import read_composite, read_criteria
from .policy import parse_condition

_NORMAL = frozenset({RoleType.BETA, RoleType.OMEGA})
_FAILURE = (RoleType.EPSILON, RoleType.TAU)


@dataclass(frozen=True)
class DefinitionWarning:
    """A dead end in a valid definition: ``code`` (W1–W3), the element and what to change."""

    code: str
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "element": self.element, "message": str(self)}


class _Flow:
    """The component graph of a definition, by name."""

    def __init__(self, defn: WorkflowDefinition) -> None:
        self.types = {r.name: r.type for r in defn.roles}
        self.writes: dict[str, list[str]] = {}
        self.readers: dict[str, list[str]] = {}
        for c in defn.components:
            if c.direction is Direction.OUTBOUND:
                self.writes.setdefault(c.role, []).append(c.interaction)
            else:
                self.readers.setdefault(c.interaction, []).append(c.role)

    def reach(self, roles: Iterable[str], interactions: Iterable[str]) -> tuple[set[str], set[str]]:
        """Every role and interaction a chain of components leads to from the given ones."""
        seen_roles: set[str] = set()
        seen_interactions: set[str] = set()
        todo_roles, todo_interactions = list(roles), list(interactions)
        while todo_roles or todo_interactions:
            for role in todo_roles:
                if role not in seen_roles:
                    seen_roles.add(role)
                    todo_interactions.extend(self.writes.get(role, ()))
            todo_roles = []
            for interaction in todo_interactions:
                if interaction not in seen_interactions:
                    seen_interactions.add(interaction)
                    todo_roles.extend(self.readers.get(interaction, ()))
            todo_interactions = []
        return seen_roles, seen_interactions


def dead_ends(defn: WorkflowDefinition) -> list[DefinitionWarning]:
    """Every dead end of a definition that passed validation, in definition order."""
    flow = _Flow(defn)
    return [*_no_way_back(defn, flow), *_unreachable(defn, flow), *_untaken(defn, flow)]


def _no_way_back(defn: WorkflowDefinition, flow: _Flow) -> Iterable[DefinitionWarning]:
    for role in defn.roles:
        if role.type not in _FAILURE:
            continue
        _, reached = flow.reach([role.name], [])
        if any(flow.types.get(r) in _NORMAL for i in reached for r in flow.readers.get(i, ())):
            continue
        where = f"role '{role.name}'"
        writes = ", ".join(f"'{i}'" for i in flow.writes.get(role.name, ()))
        shown = f"it writes only to {writes}" if writes else "it has no OUTBOUND component"
        message = (
            f"{role.type.value} {where} has no path back into the flow or to OMEGA ({shown}), "
            f"so work it remediates can only fail again or be abandoned; add a "
            f"component with direction OUTBOUND from '{role.name}' into an interaction a BETA "
            f"or OMEGA role takes work from"
        )
        yield DefinitionWarning("W1", where, message)


def _unreachable(defn: WorkflowDefinition, flow: _Flow) -> Iterable[DefinitionWarning]:
    alpha = [r.name for r in defn.roles_of_type(RoleType.ALPHA)]
    reached, _ = flow.reach(alpha, defn.failure_paths)
    for role in defn.roles:
        if role.name in reached:
            continue
        where = f"role '{role.name}'"
        reads = [c.interaction for c in defn.components_of(role.name, Direction.INBOUND)]
        if reads:
            fix = f"add a component with direction OUTBOUND into '{reads[0]}' from a role ALPHA"
            fix += " leads to"
        else:
            fix = f"add a component with direction INBOUND from an interaction to '{role.name}'"
        message = f"{role.type.value} {where} can never be reached from ALPHA; {fix}"
        yield DefinitionWarning("W2", where, message)


def _untaken(defn: WorkflowDefinition, flow: _Flow) -> Iterable[DefinitionWarning]:
    produced = {i for interactions in flow.writes.values() for i in interactions}
    inbound: dict[str, list[ComponentDef]] = {}
    for c in defn.components:
        if c.direction is Direction.INBOUND:
            inbound.setdefault(c.interaction, []).append(c)
    for interaction in defn.interactions:
        name = interaction.name
        consumers = inbound.get(name, [])
        arriving = [UowStatus.PENDING] if name in produced else []
        arriving += [UowStatus.FAILED] if name in defn.failure_paths else []
        for status in arriving:
            why = [_refusal(c, flow.types.get(c.role), status) for c in consumers]
            if consumers and all(why):
                yield _untaken_warning(name, status, why)


def _refusal(c: ComponentDef, role_type: RoleType | None, status: UowStatus) -> str | None:
    """Why component ``c`` can never take work of ``status`` (None when it can)."""
    if status not in _takes(role_type):
        kind = role_type.value if role_type else "unknown"
        return f"'{c.name}' belongs to {kind} role '{c.role}', which takes no {status.value} work"
    shut = next((g for g in c.guardians if _never_passes(g, 0)), None)
    if shut is not None:
        return f"'{c.name}' has guardian '{shut.name}', which never passes"
    return None


def _never_passes(g: GuardianDef, depth: int) -> bool:
    """A gate that holds for no work at all: a condition on no attribute that is false (or
    cannot be evaluated), or a COMPOSITE whose logic makes such a step decisive."""
    if g.type is GuardianType.CRITERIA_GATE:
        criteria, _ = read_criteria(g.config)
        return (
            criteria is not None
            and criteria.condition is not None
            and _constantly_false(criteria.condition)
        )
    if g.type is GuardianType.COMPOSITE and depth < MAX_COMPOSITE_DEPTH:
        composite, _ = read_composite(g.name, g.config)
        if composite is None:
            return False
        shut = [_never_passes(step, depth + 1) for step in composite.steps]
        return any(shut) if composite.logic.upper() == "AND" else all(shut)
    return False


def _constantly_false(text: str) -> bool:
    try:
        condition = parse_condition(text)
    except ConditionError:
        return False  # R11 reports it
    if condition.names:
        return False
    try:
        return not condition.evaluate({})
    except ConditionError:
        return True


def _takes(role_type: RoleType | None) -> tuple[UowStatus, ...]:
    """The statuses of the work a role of this type checks out."""
    if role_type in _NORMAL:
        return (UowStatus.PENDING,)
    if role_type in _FAILURE:
        return (UowStatus.PENDING, UowStatus.FAILED)
    return ()


def _untaken_warning(
    interaction: str, status: UowStatus, why: list[str | None]
) -> DefinitionWarning:
    where = f"interaction '{interaction}'"
    kinds = " or ".join(t.value for t in RoleType if status in _takes(t))
    message = (
        f"{where} receives {status.value} work that none of its consumers can ever take "
        f"({'; '.join(w for w in why if w)}); add a component with direction INBOUND from "
        f"'{interaction}' to a {kinds} role, or correct the gate"
    )
    return DefinitionWarning("W3", where, message)
