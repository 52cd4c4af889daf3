"""The admin audit trail, read-only: no endpoint changes or deletes it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, Field

from ..domain.security import Right
from ..engine.audit import DEFAULT_LIMIT, MAX_LIMIT, AuditEntry, AuditFilter
from .auth import allow
from .deps import EngineDep
from .responses import COMMON
from .views import Time, View

router = APIRouter(prefix="/admin", tags=["admin"], responses=COMMON)


class AuditItem(View):
    """One admin or operator action: who (key id, name, scope), what, with what, how it went."""

    id: int
    at: Time
    key_id: uuid.UUID | None = Field(description="null: the CLI, or authentication was off")
    key_name: str
    scope: str | None = Field(description="the key's scope; 'cli' for command-line actions")
    action: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None = Field(description="status and a summary of the answer")
    request_id: str | None
    outcome: Literal["ok", "refused", "error"]

    @classmethod
    def of(cls, e: AuditEntry) -> Self:
        return cls(
            id=e.id, at=e.at, key_id=e.key_id, key_name=e.key_name, scope=e.scope,
            action=e.action, parameters=e.parameters, result=e.result,
            request_id=e.request_id, outcome=e.outcome,
        )  # fmt: skip


class AuditPage(View):
    items: list[AuditItem]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: last")


@router.get("/audit", dependencies=[allow(Right.READ)])
def audit(
    engine: EngineDep,
    action: Annotated[str | None, Query(max_length=80)] = None,
    key_id: uuid.UUID | None = None,
    since: Annotated[
        AwareDatetime | None, Query(alias="from", description="At or after (with a time zone)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(alias="to", description="Strictly before (with a time zone)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> AuditPage:
    """Recorded admin and operator actions, newest first; filter by action, key and time."""
    page = engine.audit.page(
        AuditFilter(action=action, key_id=key_id, since=since, until=until),
        limit=limit,
        cursor=cursor,
    )
    return AuditPage(items=[AuditItem.of(e) for e in page.items], next_cursor=page.next_cursor)
