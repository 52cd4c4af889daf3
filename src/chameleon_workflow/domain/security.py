"""Who may do what: API key scopes, the rights they grant, and the key format.

Pure: no I/O. The HTTP adapter asks :func:`allows` for every route's declared right; an
``actor`` key is further bound to one actor (see :class:`Principal`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    ADMIN = "admin"  # everything, including key management
    OPERATOR = "operator"  # read everything, maintenance, toxic marks, global memory, pilot
    ACTOR = "actor"  # bound to one actor: its own work, its own UOWs and playbook
    VIEWER = "viewer"  # read only


class Right(StrEnum):
    """What a route needs. Every route declares exactly one (the matrix test checks)."""

    READ = "read"  # read any record
    WORK = "work"  # checkout, heartbeat, submit, failure — as an actor
    OPERATE = "operate"  # maintenance, toxic marks, global memory writes
    ADMIN = "admin"  # definitions, instances, actors, assignments, keys


_GRANTS: dict[Scope, frozenset[Right]] = {
    Scope.ADMIN: frozenset(Right),
    Scope.OPERATOR: frozenset({Right.READ, Right.OPERATE}),
    Scope.ACTOR: frozenset({Right.WORK}),
    Scope.VIEWER: frozenset({Right.READ}),
}

# The narrowest scope that has each right (for "needs scope X" messages).
NEEDED: dict[Right, str] = {
    Right.READ: "viewer, operator or admin",
    Right.WORK: "actor (bound to that actor) or admin",
    Right.OPERATE: "operator or admin",
    Right.ADMIN: "admin",
}


def allows(scope: Scope, right: Right) -> bool:
    return right in _GRANTS[scope]


@dataclass(frozen=True)
class Principal:
    """The caller, as its API key says."""

    key_id: uuid.UUID | None  # None: authentication is off (local experiments only)
    name: str
    scope: Scope
    actor_id: uuid.UUID | None = None

    def acts_for(self, actor_id: uuid.UUID) -> bool:
        """May this caller act as (or read the own records of) ``actor_id``?"""
        if self.scope is Scope.ACTOR:
            return self.actor_id == actor_id
        return self.scope is Scope.ADMIN

    @property
    def is_bound(self) -> bool:
        return self.scope is Scope.ACTOR


# --- the key format ----------------------------------------------------------------------------

PREFIX = "chm_"
_KEY = re.compile(r"^chm_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def format_key(key_id: uuid.UUID, secret: str) -> str:
    """The key as shown once: ``chm_<id hex>_<256-bit secret, base64url>``."""
    return f"{PREFIX}{key_id.hex}_{secret}"


def parse_key(text: str) -> tuple[uuid.UUID, str] | None:
    """The key's id and secret, or None if ``text`` is not shaped like a key."""
    m = _KEY.match(text)
    if m is None:
        return None
    return uuid.UUID(m.group(1)), m.group(2)
