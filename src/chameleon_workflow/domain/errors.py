"""One error hierarchy for the engine.

Every error a client can cause is a subclass of :class:`ChameleonError`; the HTTP and
CLI adapters map each class to a status code or exit code in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class ChameleonError(Exception):
    """Root of every error the engine raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ChameleonError):
    """The request is well-formed JSON/YAML but its content is not acceptable."""


class ConditionError(InvalidInput):
    """A condition of the policy language could not be parsed or evaluated."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message, position=position)
        self.position = position


@dataclass(frozen=True)
class Violation:
    """One broken rule of a workflow definition."""

    rule: str
    protects: str
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.protects}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "protects": self.protects,
            "element": self.element,
            "message": str(self),
        }


class DefinitionInvalid(InvalidInput):
    """A workflow definition broke one or more rules; nothing was written."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        summary = "; ".join(str(v) for v in self.violations)
        super().__init__(f"workflow definition is invalid: {summary}")


class PayloadTooLarge(InvalidInput):
    """The request body exceeds the configured cap."""


class UnsupportedMediaType(InvalidInput):
    """The request body's declared type (or lack of one) is not one the operation takes."""


class HostNotAllowed(InvalidInput):
    """The request names a host (``Host`` header) the server is not configured to answer."""


class NotFound(ChameleonError):
    """Something the request names does not exist."""


class UnknownTemplate(NotFound):
    pass


class UnknownInstance(NotFound):
    pass


class UnknownRole(NotFound):
    pass


ACTOR_HINT = (
    "register actors with POST /actors and assign them to roles with POST /actors/{id}/assignments"
)


class UnknownActor(NotFound):
    """An actor id that was never registered; the message says how to register one."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(f"{message}; {ACTOR_HINT}", **details)


class UnknownUow(NotFound):
    pass


class UnknownMemory(NotFound):
    pass


class Conflict(ChameleonError):
    """The request is valid but the current state does not allow it."""


class LeaseLost(Conflict):
    """The caller does not (or no longer) hold the lease on the UOW."""


class InvalidState(Conflict):
    """The UOW or another object is in a state that forbids the operation."""


class InstancePaused(Conflict):
    """The instance's kill switch is on: its work is paused until a pilot resumes it."""


class UnknownIntervention(NotFound):
    pass


class MemoryHeld(Conflict):
    """The memory is under legal hold: nothing may archive or delete it until released."""


class NotAssigned(ChameleonError):
    """The actor is not assigned to the role it acts for."""


class Unauthenticated(ChameleonError):
    """No valid API key. The message never says whether the key was missing, malformed,
    unknown, revoked or expired (the server's log and metrics do: ``reason``)."""

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


class Forbidden(ChameleonError):
    """The API key is valid but its scope (or its actor) does not allow this request."""


class RateLimited(ChameleonError):
    """Too many requests of this kind from this key or address; retry after a while."""

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class DatabaseUnavailable(ChameleonError):
    """The database cannot serve now (unreachable, locked, out of connections): retry later."""


class SchemaNotCurrent(ChameleonError):
    """The database has no Chameleon schema, or another version of it than this code's."""
