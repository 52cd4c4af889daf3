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
