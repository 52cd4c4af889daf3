"""A typed Python client for the Chameleon HTTP API: :class:`Client` (sync) and
:class:`AsyncClient` (async), over httpx.

Keys: ``api_key`` is sent as ``Authorization: Bearer <key>``.

Types: the answers are pydantic models in :mod:`.models`, written by hand and kept true to the
server by a test — each model whose response has a schema in ``/openapi.json`` is checked
field by field (name present, required exactly when the schema requires it); the answers
the schema leaves free-form (checkout, submit, failure, heartbeat, …) are checked against the
server's live answers. Unknown fields are kept, so a newer server does not break the client.

Errors: an error answer ``{"error", "message", "details"}`` raises the exception of
:mod:`.errors` named by ``error`` (``LeaseLost``, ``NotAssigned``, ``UnknownUow``…), all
:class:`ChameleonError` with ``status``, ``error``, ``message`` and ``details``.

Retries (:class:`RetryPolicy`: attempts, exponential backoff with jitter, ``Retry-After``):

* on a 503 (the server did nothing) and on a connection error raised before the request was
  sent (connect error/timeout, pool timeout) — always;
* on an error after the request may have been sent (connection reset, read timeout, server
  disconnected) — only when sending it again is safe: reads, heartbeats, assignments, and a
  **submit or failure report that carries its** ``lease_id``: the server answers the identical
  retry as a replay (``replayed: true``, nothing done twice; docs/api.md "Retrying a submit or
  a failure report"). A submit or failure report *without* ``lease_id``, a checkout, and the
  other writes are not re-sent then: :class:`TransportError` is raised, and the caller must
  find out (``uow()``) what happened;
* never on a 4xx answer.

A checkout that finds nothing (204) returns ``None``.
"""

from ._client import AsyncClient, Client, RetryPolicy
from .errors import (
    ChameleonError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InstancePaused,
    InvalidInput,
    InvalidState,
    LeaseLost,
    NotAssigned,
    NotFound,
    RateLimited,
    TransportError,
    Unauthenticated,
    UnknownActor,
    UnknownInstance,
    UnknownIntervention,
    UnknownMemory,
    UnknownRole,
    UnknownTemplate,
    UnknownUow,
    ValidationError,
)

__all__ = [
    "AsyncClient",
    "ChameleonError",
    "Client",
    "Conflict",
    "DatabaseUnavailable",
    "Forbidden",
    "InstancePaused",
    "InvalidInput",
    "InvalidState",
    "LeaseLost",
    "NotAssigned",
    "NotFound",
    "RateLimited",
    "RetryPolicy",
    "TransportError",
    "Unauthenticated",
    "UnknownActor",
    "UnknownInstance",
    "UnknownIntervention",
    "UnknownMemory",
    "UnknownRole",
    "UnknownTemplate",
    "UnknownUow",
    "ValidationError",
]
