"""The API's errors as exceptions: the class is chosen by the ``error`` name in the body
``{"error", "message", "details"}``, falling back to the HTTP status."""

from __future__ import annotations

from typing import Any


class ChameleonError(Exception):
    """An error answer from the server (or a network failure after the retries)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        details: Any = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error or type(self).__name__
        self.details = details
        self.body = body

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.message}" if self.status else self.message


class InvalidInput(ChameleonError):
    """422: the server refused the request's content."""


class ValidationError(InvalidInput):
    """422: the body or query did not match the request's schema."""


class DefinitionInvalid(InvalidInput):
    """422: a template definition was refused."""


class PayloadTooLarge(InvalidInput):
    """413."""


class UnsupportedMediaType(InvalidInput):
    """415."""


class NotFound(ChameleonError):
    """404."""


class UnknownTemplate(NotFound):
    pass


class UnknownInstance(NotFound):
    pass


class UnknownRole(NotFound):
    pass


class UnknownActor(NotFound):
    pass


class UnknownUow(NotFound):
    pass


class UnknownMemory(NotFound):
    pass


class UnknownIntervention(NotFound):
    pass


class Conflict(ChameleonError):
    """409."""


class LeaseLost(Conflict):
    """409: the lease ended (zombie sweep, another request used it): drop the work."""


class InvalidState(Conflict):
    pass


class InstancePaused(Conflict):
    pass


class MemoryHeld(Conflict):
    pass


class NotAssigned(ChameleonError):
    """403: the actor is not assigned to the role."""


class Unauthenticated(ChameleonError):
    """401: no key, or a key the server does not know."""


class Forbidden(ChameleonError):
    """403: the key's scope does not allow this."""


class RateLimited(ChameleonError):
    """429."""


class DatabaseUnavailable(ChameleonError):
    """503 after the retries (the server could not reach its database)."""


class SchemaNotCurrent(DatabaseUnavailable):
    """503: the database schema is not at the server's version."""


class TransportError(ChameleonError):
    """The request could not be completed over the network (after the retries that were safe)."""


_BY_NAME: dict[str, type[ChameleonError]] = {
    cls.__name__: cls
    for cls in (
        InvalidInput,
        ValidationError,
        DefinitionInvalid,
        PayloadTooLarge,
        UnsupportedMediaType,
        NotFound,
        UnknownTemplate,
        UnknownInstance,
        UnknownRole,
        UnknownActor,
        UnknownUow,
        UnknownMemory,
        UnknownIntervention,
        Conflict,
        LeaseLost,
        InvalidState,
        InstancePaused,
        MemoryHeld,
        NotAssigned,
        Unauthenticated,
        Forbidden,
        RateLimited,
        DatabaseUnavailable,
        SchemaNotCurrent,
    )
}

_BY_STATUS: dict[int, type[ChameleonError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: InvalidInput,
    429: RateLimited,
    503: DatabaseUnavailable,
}


def error_from(status: int, body: Any, text: str) -> ChameleonError:
    """The exception for an error answer."""
    name = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    if isinstance(body, dict) and details is None and "problems" in body:
        details = {"problems": body["problems"]}
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status, ChameleonError)
    return cls(
        str(message) if message is not None else (text or f"HTTP {status}"),
        status=status,
        error=name if isinstance(name, str) else None,
        details=details,
        body=body,
    )
