"""The pilot's live stream: Server-Sent Events of intervention requests and paused instances."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ..domain.errors import InvalidInput
from ..domain.security import Right
from .auth import allow
from .responses import COMMON
from .stream import Broadcaster

router = APIRouter(prefix="/api/interventions", tags=["pilot"], responses=COMMON)

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


@router.get(
    "/stream",
    dependencies=[allow(Right.READ)],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless text/event-stream: `id: <event id>`, "
            "`event: <kind>`, `data: <JSON>` per event, `: keep-alive` comments",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream(
    request: Request,
    instance_id: Annotated[
        uuid.UUID | None, Query(description="Only this instance's events")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume: replay the stored events after this id first",
        ),
    ] = None,
) -> StreamingResponse:
    """Live events: `intervention.created`, `intervention.resolved`, `intervention.expired`,
    `instance.paused`, `instance.resumed` (docs/pilot.md). Without `Last-Event-ID` only
    events from now on; with it, every stored event after that id first."""
    after = _event_id(last_event_id)
    broadcaster: Broadcaster = request.app.state.pilot_stream
    sub = await broadcaster.subscribe(instance_id)
    return StreamingResponse(
        broadcaster.events(sub, after), media_type="text/event-stream", headers=STREAM_HEADERS
    )


def _event_id(header: str | None) -> int | None:
    if header is None or not header.strip():
        return None
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise InvalidInput(
            f"Last-Event-ID must be an event id this stream sent (a whole number), not {text!r}",
            last_event_id=text[:40],
        )
    return int(text)
