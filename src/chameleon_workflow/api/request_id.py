"""One id per request: the client's ``X-Request-ID`` when it is sane, else a new one.

The id is returned in the ``X-Request-ID`` response header, put on ``request.state.request_id``
and in the ``REQUEST_ID`` context variable for the duration of the request, so every log line
written while serving it carries it (see ``chameleon_workflow.logs``).
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import REQUEST_ID

__all__ = ["HEADER", "REQUEST_ID", "RequestId", "current_request_id", "sane"]

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
# Letters, digits and a few separators (UUIDs, ULIDs, trace ids, base64url), at most 128:
# nothing a log line or a header could be confused by.
_SANE = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")


def sane(value: bytes | None) -> str | None:
    """``value`` as the request id if it is acceptable, else None."""
    if value is None or not _SANE.fullmatch(value):
        return None
    return value.decode("ascii")


def current_request_id() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    return REQUEST_ID.get()


class RequestId:
    """Pure ASGI middleware: accepts or makes the request id and returns it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [v for k, v in scope.get("headers") or [] if k == _HEADER_KEY]
        request_id = (sane(given[0]) if len(given) == 1 else None) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER_KEY, request_id.encode("ascii"))

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, with_id)
        finally:
            REQUEST_ID.reset(token)
