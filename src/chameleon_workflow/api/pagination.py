"""Cursor pages over HTTP: ``?limit=`` and ``?cursor=`` in, ``next_cursor`` out.

A cursor is ``base64url(JSON).base64url(MAC)``. The JSON names the list (the keyset's
name), a digest of the list's scope (its path ids and filters) and the key of the last row
served; the MAC is an HMAC-SHA256 (first 16 bytes) keyed from the API key pepper, so every
replica sharing the pepper accepts the others' cursors. A cursor that is not base64url
JSON, whose MAC does not match (forged or altered), that was issued by another list or for
other filters, or whose key does not have this list's column types is a 422 naming which.
Security does not rest on the MAC: a position grants nothing, the route's own rules still
decide what a key may read; the MAC makes cursors opaque and tampering a clear error.

A list route takes ``page: PageDep``, binds it to its keyset and scope (``GET /uows`` binds
to the list only: its filters all share one order), and answers a page model
(``views_pages``)::

    cursor = page.bind(KEYSET, role_id, scope)
    found = engine.x.page(..., after=cursor.after, limit=page.limit)
    return XPage(items=[...], next_cursor=cursor.next(found.next_key))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Query

from ..domain.errors import InvalidInput
from ..engine.keys import DEFAULT_PEPPER
from ..store.pagination import DEFAULT_LIMIT, MAX_LIMIT, Key, Keyset
from .deps import EngineDep

MAX_CURSOR = 2048
_MAC_BYTES = 16
_VERSION = 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(scope: tuple[Any, ...]) -> str:
    text = "\x1f".join("" if p is None else str(p) for p in scope)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _refused(why: str, keyset: Keyset) -> InvalidInput:
    return InvalidInput(
        f"cursor refused: {why}; pass the next_cursor of the previous page of "
        f"this list unchanged, or leave cursor out to start from the beginning",
        field="cursor",
        list=keyset.name,
    )


class Cursors:
    """Signs and checks the cursors of every list."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"chameleon list cursor", hashlib.sha256).digest()

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, keyset: Keyset, scope: tuple[Any, ...], key: Key) -> str:
        body = {"v": _VERSION, "list": keyset.name, "of": _digest(scope), "key": keyset.dump(key)}
        # UTF-8, not \u escapes: a key of 200 astral characters stays under MAX_CURSOR.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def decode(self, keyset: Keyset, scope: tuple[Any, ...], cursor: str) -> Key:
        """The key a cursor of this list and scope carries; InvalidInput (422) otherwise."""
        try:
            body, mac = cursor.split(".")
            raw, signature = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error) as exc:
            raise _refused("it is not a cursor this server issues (malformed)", keyset) from exc
        if not hmac.compare_digest(signature, self._mac(raw)):
            raise _refused("its signature does not match (altered or forged)", keyset)
        try:
            data = json.loads(raw)
        except ValueError as exc:  # only with a leaked pepper: the MAC matched
            raise _refused("it is not a cursor this server issues (malformed)", keyset) from exc
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise _refused("it was issued by another version of the server", keyset)
        if data.get("list") != keyset.name:
            raise _refused(f"it belongs to another list ({data.get('list')})", keyset)
        if data.get("of") != _digest(scope):
            raise _refused("it was issued for other filters or another parent", keyset)
        return keyset.parse(data.get("key"))


@lru_cache(maxsize=4)
def cursors_for(pepper: str | None) -> Cursors:
    return Cursors((pepper or DEFAULT_PEPPER).encode())


@dataclass(frozen=True)
class BoundCursor:
    """The request's cursor read for one list and scope: where to start, how to go on."""

    cursors: Cursors
    keyset: Keyset
    scope: tuple[Any, ...]
    after: Key | None

    def next(self, next_key: Key | None) -> str | None:
        """The ``next_cursor`` of a page ending at ``next_key`` (None: the last page)."""
        if next_key is None:
            return None
        return self.cursors.encode(self.keyset, self.scope, next_key)


@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None
    cursors: Cursors

    def bind(self, keyset: Keyset, *scope: Any) -> BoundCursor:
        """Read the cursor for ``keyset`` in ``scope`` (path ids and filters, in a fixed
        order): a cursor issued anywhere else is refused."""
        after = None
        if self.cursor is not None:
            after = self.cursors.decode(keyset, scope, self.cursor)
        return BoundCursor(self.cursors, keyset, scope, after)


def _page_request(
    engine: EngineDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1-{MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR,
            description="The next_cursor of the previous page (leave out for the first).",
        ),
    ] = None,
) -> PageRequest:
    return PageRequest(limit, cursor, cursors_for(engine.settings.api_key_pepper))


PageDep = Annotated[PageRequest, Depends(_page_request)]
