"""The typed model of a workflow definition (a template's content).

Parsing YAML into this model lives in :mod:`.parsing`; the constitutional rules live in
:mod:`.validation`. Instances are immutable so a parsed definition can be shared freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .enums import Direction, GuardianType, RoleType, Strategy, ZombiePolicy


@dataclass(frozen=True)
class GuardianDef:
    name: str
    type: GuardianType
    config: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    ai_context: Any = None

    @property
    def is_default(self) -> bool:
        """A route marked default is taken only when no other route matches."""
        return bool(self.config.get("default", False))


@dataclass(frozen=True)
class RoleDef:
    name: str
    type: RoleType
    strategy: Strategy | None = None
    description: str | None = None
    ai_context: Any = None
    # Zombie protocol overrides for work leased by this role (None: workflow default).
    zombie_timeout_seconds: int | None = None
    zombie_policy: ZombiePolicy | None = None
    max_reclaims: int | None = None
    # The loop guard: how often a UOW may enter this role (None: the workflow's setting).
    max_visits: int | None = None


@dataclass(frozen=True)
class InteractionDef:
    name: str
    description: str | None = None
    ai_context: Any = None
    stale_token_limit_seconds: int | None = None


@dataclass(frozen=True)
class ComponentDef:
    name: str
    role: str
    interaction: str
    direction: Direction
    guardians: tuple[GuardianDef, ...] = ()
    description: str | None = None
    ai_context: Any = None


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    roles: tuple[RoleDef, ...]
    interactions: tuple[InteractionDef, ...]
    components: tuple[ComponentDef, ...]
    description: str | None = None
    version: str | None = None  # the author's label; template versions are numbered by import
    ai_context: Any = None
    schema_json: Any = None
    # Governance defaults for the whole workflow (None: the server's settings apply).
    zombie_timeout_seconds: int | None = None
    zombie_policy: ZombiePolicy | None = None
    max_reclaims: int | None = None
    stale_token_limit_seconds: int | None = None
    # The loop guard for every role that does not set its own (None: no guard).
    max_visits: int | None = None

    def role(self, name: str) -> RoleDef | None:
        return next((r for r in self.roles if r.name == name), None)

    def roles_of_type(self, role_type: RoleType) -> list[RoleDef]:
        return [r for r in self.roles if r.type is role_type]

    def components_of(self, role: str, direction: Direction) -> list[ComponentDef]:
        return list(self._components_by_role.get((role, direction), ()))

    # Indexes built on first use (the definition is immutable), so that validating or
    # routing a large definition stays linear in its size.
    @cached_property
    def _components_by_role(self) -> dict[tuple[str, Direction], list[ComponentDef]]:
        index: dict[tuple[str, Direction], list[ComponentDef]] = {}
        for c in self.components:
            index.setdefault((c.role, c.direction), []).append(c)
        return index

    def _first_inbound_of(self, role_type: RoleType) -> str | None:
        roles = self.roles_of_type(role_type)
        if not roles:
            return None
        inbound = self.components_of(roles[0].name, Direction.INBOUND)
        return inbound[0].interaction if inbound else None

    @property
    def ate_interaction(self) -> str | None:
        """EPSILON's inbound interaction: where explicit failures and rejections go."""
        return self._first_inbound_of(RoleType.EPSILON)

    @property
    def chronos_interaction(self) -> str | None:
        """TAU's inbound interaction: where zombies and stale tokens go."""
        return self._first_inbound_of(RoleType.TAU)

    @cached_property
    def failure_paths(self) -> frozenset[str]:
        return frozenset(i for i in (self.ate_interaction, self.chronos_interaction) if i)

    def routes_of(self, role: str) -> list[ComponentDef]:
        """The OUTBOUND components a submit by ``role`` is routed through, in order.

        Failure paths (into Ate or Chronos) are excluded unless they are all the role has.
        """
        outbound = self.components_of(role, Direction.OUTBOUND)
        normal = [c for c in outbound if c.interaction not in self.failure_paths]
        return normal if normal else outbound

    # --- the pilot's checks on a submit's route (see engine.pilot_checks) ---------------------

    def max_visits_of(self, role: str) -> int | None:
        """The loop guard's limit for ``role``: its own ``max_visits``, else the workflow's."""
        r = self.role(role)
        own = r.max_visits if r is not None else None
        return own if own is not None else self.max_visits

    def entering(self, interaction: str) -> list[str]:
        """The roles work put into ``interaction`` enters (those with an INBOUND into it)."""
        return list(dict.fromkeys(c.role for c in self._inbound_into.get(interaction, ())))

    @cached_property
    def _inbound_into(self) -> dict[str, list[ComponentDef]]:
        index: dict[str, list[ComponentDef]] = {}
        for c in self.components:
            if c.direction is Direction.INBOUND:
                index.setdefault(c.interaction, []).append(c)
        return index

    def approval_gates(self, route: ComponentDef) -> list[GuardianDef]:
        """The PILOT_APPROVAL guardians work routed through ``route`` meets: on the route
        itself (an OUTBOUND component), then on the INBOUND components into its interaction."""
        into = self._inbound_into.get(route.interaction, [])
        return [
            g for c in (route, *into) for g in c.guardians if g.type is GuardianType.PILOT_APPROVAL
        ]

    @cached_property
    def pilot_checked_roles(self) -> frozenset[str]:
        """Roles whose submits a pilot check may stop (an approval gate or a loop guard on a
        route they may take): their submits take the locked path, never the one-statement one.

        Decided once per definition from its shape; empty for workflows using neither.
        """
        gated = {
            c.interaction
            for c in self.components
            if any(g.type is GuardianType.PILOT_APPROVAL for g in c.guardians)
            and c.direction is Direction.INBOUND
        }
        guarded = {
            c.interaction
            for c in self.components
            if c.direction is Direction.INBOUND and self.max_visits_of(c.role) is not None
        }
        return frozenset(
            c.role
            for c in self.components
            if c.direction is Direction.OUTBOUND
            and (
                c.interaction in gated | guarded
                or any(g.type is GuardianType.PILOT_APPROVAL for g in c.guardians)
            )
        )
