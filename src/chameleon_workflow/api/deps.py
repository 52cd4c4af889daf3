"""Access to the engine living on the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..engine.core import Engine


def _engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(_engine)]
