"""Authentication and authorization of HTTP requests.

Every route declares the one :class:`~chameleon_workflow.domain.security.Right` it needs
with ``dependencies=[allow(Right.X)]`` (or is listed in :data:`OPEN_PATHS`); the
authorization matrix test fails for a route that does neither. The caller is the API key
in ``Authorization: Bearer <key>``; an ``actor`` key is further checked by the route
against the actor the request acts as (:func:`act_as`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from ..domain.errors import Forbidden, RateLimited, Unauthenticated
from ..domain.security import NEEDED, Principal, Right, Scope, allows
from .metrics import record_auth_failure
from .ratelimit import client_address, limit_action, limits_of

# Paths anyone may call: liveness, readiness, metrics (configurable), the API page and the
# assets it loads, and the home page.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/openapi.json", "/"})

# Requests to routes needing these rights count against the key's action limit.
LIMITED = frozenset({Right.OPERATE, Right.ADMIN})

ANONYMOUS = Principal(key_id=None, name="anonymous (authentication off)", scope=Scope.ADMIN)


def bearer_token(request: Request) -> str | None:
    """The key in ``Authorization: Bearer <key>``, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    kind, _, token = header.partition(" ")
    return token.strip() if kind.lower() == "bearer" and token.strip() else ""


def current_principal(request: Request) -> Principal:
    """The caller of this request (authenticated once per request)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if not request.app.state.settings.auth_enabled:
        principal = ANONYMOUS
    else:
        principal = _authenticate(request)
    request.state.principal = principal
    return principal


def _authenticate(request: Request) -> Principal:
    """The key's principal; failures from an address beyond its limit are refused (429)
    before the key is looked up (``api.ratelimit``)."""
    token = bearer_token(request)
    limits = limits_of(request)
    # Only a presented key is a guess: a request without one is neither limited nor counted.
    failures = limits.auth_failures if limits is not None and token else None
    address = client_address(request)
    if failures is not None:
        try:
            failures.check(address, token)
        except RateLimited:
            record_auth_failure(request.app, "rate_limited")
            raise
    try:
        principal: Principal = request.app.state.engine.keys.authenticate(token)
    except Unauthenticated as refused:
        record_auth_failure(request.app, refused.reason)
        if failures is not None:
            failures.failed(address)
        raise
    if failures is not None and token:
        failures.succeeded(token)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def allow(right: Right, *, own: bool = False) -> Any:
    """The dependency a route declares: the caller's scope must grant ``right``.

    With ``own``, an ``actor`` key passes too, and the route itself limits it to its own
    actor's records (:func:`own_only`).
    """

    def check(request: Request, principal: PrincipalDep) -> Principal:
        if right in LIMITED:
            limit_action(request, principal)
        if own and principal.scope is Scope.ACTOR:
            return principal
        if not allows(principal.scope, right):
            record_auth_failure(request.app, "forbidden")
            raise Forbidden(
                f"this request needs an API key with scope {NEEDED[right]}; "
                f"this key's scope is {principal.scope.value}",
                needed=right.value,
                scope=principal.scope.value,
            )
        return principal

    check.right = right  # type: ignore[attr-defined]  # read by the matrix test
    check.own = own  # type: ignore[attr-defined]
    return Depends(check)


def rule_of(dependency: Callable[..., Any]) -> tuple[Right, bool] | None:
    """The right a route dependency enforces and whether actor keys may read their own
    records there (None: not an :func:`allow` dependency)."""
    right = getattr(dependency, "right", None)
    return (right, bool(getattr(dependency, "own", False))) if right is not None else None


def own_only(principal: Principal, allowed: bool, what: str) -> None:
    """Refuse an actor key a record that is not its actor's (``allowed`` says if it is)."""
    if principal.scope is Scope.ACTOR and not allowed:
        raise Forbidden(
            f"an actor key reads only its own actor's {what}; this one is not "
            f"(actor {principal.actor_id})",
            key_actor_id=str(principal.actor_id),
        )


def sees_leases(principal: Principal) -> bool:
    """Lease ids are secrets: shown to their holder at checkout, and to admin keys only."""
    return principal.scope is Scope.ADMIN


def author(principal: Principal, claimed: str) -> str:
    """Who a change is written as: the caller's key (its name and id), never a name the
    client supplies; only with authentication off is the client's ``claimed`` name used."""
    if principal.key_id is None:
        return claimed
    return f"{principal.name[:150]} (key {principal.key_id})"


def act_as(principal: Principal, actor_id: uuid.UUID) -> None:
    """An actor key may act only as its own actor (an admin key as anyone)."""
    if principal.scope is Scope.ACTOR and principal.actor_id != actor_id:
        raise Forbidden(
            f"this API key acts as actor {principal.actor_id}, not {actor_id}",
            key_actor_id=str(principal.actor_id),
            actor_id=str(actor_id),
        )


def may_read(request: Request) -> bool:
    """Whether this request may see what a viewer sees (keys off, or a reading key sent);
    for open pages that show more to those who may read. A bad key counts as refused."""
    if not request.app.state.settings.auth_enabled:
        return True
    if not request.headers.get("authorization"):
        return False
    try:
        return allows(current_principal(request).scope, Right.READ)
    except Unauthenticated:
        return False


def require_reader(request: Request) -> Principal:
    """For a path that is open unless configured otherwise: a key with the READ right."""
    principal = current_principal(request)
    if not allows(principal.scope, Right.READ):
        raise Forbidden(
            f"this request needs an API key with scope {NEEDED[Right.READ]}; "
            f"this key's scope is {principal.scope.value}",
            needed=Right.READ.value,
            scope=principal.scope.value,
        )
    return principal


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_REFUSALS = {
    "401": {"description": "No valid API key (Unauthenticated)", "content": _ERROR},
    "403": {
        "description": "The key's scope or actor does not allow this (Forbidden, NotAssigned)",
        "content": _ERROR,
    },
    "429": {
        "description": "Rate limited (RateLimited); retry after Retry-After",
        "content": _ERROR,
    },
}


def document(app: Any) -> None:
    """Make ``/openapi.json`` say every operation but the open paths needs a bearer key (so
    the API page's "Authorize" button takes one), and that it may answer 401, 403 or 429."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["apiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (chm_...): 'chameleon keys create', or the file "
            "chameleon.admin-key that 'make run' made",
        }
        for path, item in spec.get("paths", {}).items():
            if path in OPEN_PATHS:
                continue
            for operation in item.values():
                if isinstance(operation, dict):
                    operation["security"] = [{"apiKey": []}]
                    answers = operation.setdefault("responses", {})
                    for status, answer in _REFUSALS.items():
                        answers.setdefault(status, answer)
        return spec

    app.openapi = openapi
