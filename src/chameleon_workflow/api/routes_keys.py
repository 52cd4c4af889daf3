"""API key management over HTTP (admin keys only): create, list, revoke.

A new key's text is in the creation answer and nowhere else, ever; listings carry
everything but the secret. The command line (``chameleon keys``) does the same on the
database directly, which is how the first key is made.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter
from pydantic import Field

from ..domain.security import Principal, Right, Scope
from ..engine.keys import MAX_EXPIRY_DAYS, KeyInfo
from ..store.keys import KEYS
from .auth import PrincipalDep, allow
from .deps import EngineDep
from .pagination import PageDep
from .responses import COMMON, WITH_BODY, responses
from .schemas import Body
from .views import Time, View
from .views_pages import NEXT

router = APIRouter(prefix="/admin/keys", tags=["keys"], responses=COMMON)
ADMIN = [allow(Right.ADMIN)]
# A number of days, strictly: ``true`` and ``"30"`` are not durations.
Days = Annotated[float, Field(gt=0, le=MAX_EXPIRY_DAYS, strict=True)]


class KeyRequest(Body):
    scope: Scope
    actor_id: uuid.UUID | None = Field(
        default=None, description="The actor an actor key acts as (actor keys only)."
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    expires_in_days: Days | None = None


class ApiKey(View):
    """A key as listed: everything but its secret, and its state now."""

    id: uuid.UUID
    name: str
    scope: Scope
    actor_id: uuid.UUID | None
    state: str = Field(description="active, expired or revoked")
    created_at: Time
    created_by: str
    last_used_at: Time | None
    expires_at: Time | None
    revoked_at: Time | None

    @classmethod
    def of(cls, k: KeyInfo, now: datetime) -> Self:
        return cls(
            id=k.id, name=k.name, scope=k.scope, actor_id=k.actor_id, state=k.state(now),
            created_at=k.created_at, created_by=k.created_by, last_used_at=k.last_used_at,
            expires_at=k.expires_at, revoked_at=k.revoked_at,
        )  # fmt: skip


class CreatedApiKey(ApiKey):
    """A new key: ``key`` is its text, shown in this answer only (it is stored hashed)."""

    key: str = Field(description="Send as 'Authorization: Bearer <key>'. Shown this once.")


def _creator(principal: Principal) -> str:
    if principal.key_id is None:
        return "api:anonymous"
    return f"api:key {principal.key_id} ({principal.name})"


@router.post("", status_code=201, responses=WITH_BODY, dependencies=ADMIN)
def create_key(body: KeyRequest, engine: EngineDep, principal: PrincipalDep) -> CreatedApiKey:
    """Create a key; its text is in this answer and never again."""
    info, key = engine.keys.create(
        body.scope,
        actor_id=body.actor_id,
        name=body.name,
        expires_in_days=body.expires_in_days,
        created_by=_creator(principal),
    )
    return CreatedApiKey(**ApiKey.of(info, engine.clock()).model_dump(), key=key)


class ApiKeyPage(View):
    """Keys, oldest first (``api.pagination``)."""

    items: list[ApiKey]
    next_cursor: str | None = NEXT


@router.get("", dependencies=ADMIN)
def list_keys(engine: EngineDep, page: PageDep) -> ApiKeyPage:
    """Every key, oldest first, without secrets, one page at a time."""
    now = engine.clock()
    cursor = page.bind(KEYS)
    found = engine.keys.page(after=cursor.after, limit=page.limit)
    items = [ApiKey.of(k, now) for k in found.items]
    return ApiKeyPage(items=items, next_cursor=cursor.next(found.next_key))


@router.post("/{key_id}/revoke", responses=responses(404), dependencies=ADMIN)
def revoke_key(key_id: uuid.UUID, engine: EngineDep) -> ApiKey:
    """Revoke a key (again: no change); refused everywhere within the auth cache time."""
    return ApiKey.of(engine.keys.revoke(key_id), engine.clock())
