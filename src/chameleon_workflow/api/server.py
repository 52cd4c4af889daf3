"""Running the app under uvicorn."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with TCP_NODELAY on every connection.

    With ``--workers`` > 1 uvicorn hands its children a socket whose ``proto`` is 0, so
    asyncio does not switch Nagle's algorithm off; a response written in two parts then
    waits for the client's delayed ACK (about 40 ms a request on Linux).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def run(host: str, port: int, workers: int, **kwargs: Any) -> None:
    uvicorn.run(
        "chameleon_workflow.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=NoDelayHttpToolsProtocol,
        loop="uvloop",
        **kwargs,
    )
