"""The admin audit trail: who did which admin or operator action, with what, and how it went.

Every admin and operator request over HTTP is recorded by the API's audit middleware
(``api.audit``); actions outside HTTP (``chameleon keys ...``) call :meth:`AuditTrail.record`
themselves. The trail is append-only: nothing here (nor any endpoint) changes or deletes a row.

A record is written in its own transaction once the action has finished, so it says how the
action ended; if that write fails the action stands and the failure is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..domain.errors import InvalidInput
from ..domain.security import Principal
from ..store import audit as store
from ..store.audit import AuditFilter, AuditRow
from ..store.database import Database
from .clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_TEXT = 1000  # longer strings in parameters and results are cut to this many characters
MAX_ITEMS = 1000  # longer lists are cut to this many items
MAX_DEPTH = 6
CLI_SCOPE = "cli"
KEY_CREATE = "key.create"
KEY_REVOKE = "key.revoke"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

__all__ = ["AuditEntry", "AuditFilter", "AuditPage", "AuditTrail", "Outcome", "bounded"]


class Outcome(StrEnum):
    OK = "ok"  # the action was done (2xx)
    REFUSED = "refused"  # an authenticated caller was refused (403, 404, 409, 422, 429, ...)
    ERROR = "error"  # the server failed (5xx)

    @classmethod
    def of_status(cls, status: int) -> Outcome:
        if status >= 500:
            return cls.ERROR
        return cls.REFUSED if status >= 400 else cls.OK


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action, as the audit listing shows it."""

    id: int
    at: datetime
    key_id: uuid.UUID | None
    key_name: str
    scope: str | None
    action: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    request_id: str | None
    outcome: str

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        assert row.id is not None
        return cls(
            row.id, row.at, row.key_id, row.key_name, row.scope, row.action, row.parameters,
            row.result, row.request_id, row.outcome,
        )  # fmt: skip


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    next_cursor: str | None


class AuditTrail:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def record(
        self,
        action: str,
        *,
        by: Principal | str,
        parameters: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        outcome: Outcome | str = Outcome.OK,
        request_id: str | None = None,
    ) -> AuditEntry:
        """Append one action to the trail and return it.

        ``by``: the caller's :class:`Principal` (its key id, name and scope are recorded), or
        for actions outside HTTP a name such as ``"cli:alice"`` (no key id, scope ``cli``).
        ``parameters`` and ``result`` must be JSON-able; long strings and lists are cut
        (:func:`bounded`). ``outcome``: ok, refused or error.
        """
        if isinstance(by, Principal):
            key_id, name, scope = by.key_id, by.name, by.scope.value
        else:
            key_id, name, scope = None, by, CLI_SCOPE
        row = AuditRow(
            id=None,
            at=self.clock(),
            key_id=key_id,
            key_name=name[:200],
            scope=scope,
            action=action[:80],
            parameters=bounded(dict(parameters or {})),
            result=bounded(dict(result)) if result is not None else None,
            request_id=request_id[:128] if request_id else None,
            outcome=Outcome(outcome).value,
        )
        with self.db.begin() as conn:
            row_id = store.append(conn, row)
        logger.info(
            "audit: %s %s by %s",
            row.action,
            row.outcome,
            row.key_name,
            extra={"action": row.action, "key_id": str(key_id or ""), "outcome": row.outcome},
        )
        return AuditEntry.of(replace(row, id=row_id))

    def page(
        self, f: AuditFilter, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> AuditPage:
        """Recorded actions matching ``f``, newest first; a page of ``limit`` after ``cursor``
        (the ``next_cursor`` of the previous page; anything else is InvalidInput)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", limit=limit)
        after = decode_cursor(cursor) if cursor is not None else None
        f = AuditFilter(f.action, f.key_id, _utc(f.since, "from"), _utc(f.until, "to"))
        with self.db.connect() as conn:
            rows = store.page(conn, f, after, limit + 1)
        more = len(rows) > limit
        items = [AuditEntry.of(r) for r in rows[:limit]]
        last = items[-1] if more else None
        return AuditPage(items, encode_cursor(last.at, last.id) if last else None)


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = json.dumps(["audit", at.isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor from :func:`encode_cursor` names; anything else is InvalidInput."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, at, row_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if kind != "audit" or when.tzinfo is None or type(row_id) is not int:
            raise ValueError("not an audit cursor")
        if not 0 < row_id < 2**63:
            raise ValueError("id out of range")
        return when.astimezone(UTC), row_id
    except (binascii.Error, ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise InvalidInput(
            "cursor is not one this server issued: pass the next_cursor of the previous "
            "page unchanged, or leave cursor out to start from the newest",
            cursor=cursor[:100],
        ) from exc


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (e.g. 2026-01-01T00:00:00Z)", field=name)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"{name} is out of range once converted to UTC", field=name) from exc


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` as storable JSON with strings cut to MAX_TEXT characters and lists to
    MAX_ITEMS items (a cut says how much was left out), so one record stays small. NUL and
    unpaired surrogates, which neither database stores, become U+FFFD."""
    if isinstance(value, str):
        value = _UNSTORABLE.sub("\ufffd", value)
        if len(value) <= MAX_TEXT:
            return value
        return f"{value[:MAX_TEXT]}... ({len(value) - MAX_TEXT} more characters)"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {bounded(str(k)[:MAX_TEXT]): bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"... ({len(value) - MAX_ITEMS} more items)")
        return items
    return bounded(str(value), depth)
