"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from .. import __version__
from ..engine.core import Engine
from ..settings import Settings
from . import auth, crosssite, docs_page, errors, home, metrics, stream
from .audit import AuditRequests
from .deps import EngineDep
from .limits import BodyLimit
from .ratelimit import RateLimits
from .request_id import RequestId
from .responses import responses
from .routes_admin import router as admin_router
from .routes_audit import router as audit_router
from .routes_discovery import router as discovery_router
from .routes_interventions import router as interventions_router
from .routes_keys import router as keys_router
from .routes_killswitch import router as killswitch_router
from .routes_memory import router as memory_router
from .routes_stream import router as stream_router
from .routes_templates import router as templates_router
from .routes_waiver import router as waiver_router
from .routes_workflow import router as workflow_router


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app; the engine is created (or adopted) and closed by the lifespan."""
    settings = settings or (engine.settings if engine is not None else Settings())
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine(settings)
        app.state.scheduler = None
        if settings.scheduler_enabled:  # the engine composes it; the app only runs it
            app.state.scheduler = app.state.engine.scheduler()
            await app.state.scheduler.start()
        # The live pilot stream: reads events only while a stream is open; ends the open
        # streams when the server is told to stop (else it would wait for them forever).
        app.state.pilot_stream = stream.Broadcaster(app.state.engine)
        app.state.pilot_stream.watch_exit()
        if settings.scheduler_enabled:
            app.state.pilot_stream.start_pruning()
        try:
            yield
        finally:
            await app.state.pilot_stream.close()
            if app.state.scheduler is not None:
                await app.state.scheduler.stop()
            if owns_engine:
                app.state.engine.close()

    app = FastAPI(
        title="Chameleon", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    docs_page.install(app)
    app.state.settings = settings
    app.state.rate_limits = RateLimits.of(
        enabled=settings.rate_limit_enabled,
        auth_failures_per_minute=settings.rate_limit_auth_failures_per_minute,
        actions_per_minute=settings.rate_limit_actions_per_minute,
        max_tracked=settings.rate_limit_max_tracked,
    )
    errors.install(app)
    metrics.install(app)
    # Before any router with /api/interventions/{id}: "stream" is not an id.
    app.include_router(stream_router)
    routers = (templates_router, workflow_router, discovery_router, memory_router, admin_router)
    for router in routers:
        app.include_router(router)
    app.include_router(audit_router)
    app.include_router(keys_router)
    app.include_router(interventions_router)
    app.include_router(waiver_router)
    app.include_router(killswitch_router)

    @app.get("/health", tags=["operations"])
    async def health(engine: EngineDep) -> dict[str, Any]:
        """Liveness: the process answers. Touches no database (see ``/ready``)."""
        return {"status": "ok", "database": engine.db.dialect}

    @app.get(
        "/ready",
        tags=["operations"],
        responses=responses(503),
    )
    def ready(engine: EngineDep) -> dict[str, Any]:
        """Readiness: the database answers and has this version's schema (else 503)."""
        engine.require_schema()
        return {"status": "ready", "database": engine.db.dialect}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request, engine: EngineDep) -> HTMLResponse:
        # Open: it shows templates and instances only to a key that may read (or when keys
        # are off); anyone else sees how to sign in.
        return HTMLResponse(home.render(engine, overview=auth.may_read(request)))

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditRequests)  # outside the body cap: a 413 is recorded as refused
    crosssite.install(app, settings)  # body types, CORS, allowed hosts (outermost of the three)
    auth.document(app)  # /openapi.json: the bearer key, and 401/403/429 on every guarded route
    app.add_middleware(RequestId)  # outermost: every response and log line carries the id
    return app
