"""The one place where engine errors become HTTP responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..domain.errors import (
    ChameleonError,
    Conflict,
    DatabaseUnavailable,
    DefinitionInvalid,
    Forbidden,
    HostNotAllowed,
    InvalidInput,
    NotAssigned,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SchemaNotCurrent,
    Unauthenticated,
    UnsupportedMediaType,
)
from ..store import faults

logger = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides the status.
STATUS: list[tuple[type[ChameleonError], int]] = [
    (DatabaseUnavailable, 503),
    (SchemaNotCurrent, 503),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (HostNotAllowed, 400),
    (DefinitionInvalid, 422),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (NotAssigned, 403),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
]


# What a 503 tells the client to wait before trying again.
RETRY_AFTER_SECONDS = 2


def status_for(exc: ChameleonError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 400)


def error_body(exc: ChameleonError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(exc).__name__, "message": exc.message}
    if isinstance(exc, DefinitionInvalid):
        body["violations"] = [v.as_dict() for v in exc.violations]
    elif exc.details:
        body["details"] = exc.details
    return body


def engine_error_response(exc: ChameleonError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] | None = None
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    elif isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="chameleon"'}
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ChameleonError)
    async def _engine_error(_: Request, exc: ChameleonError) -> JSONResponse:
        return engine_error_response(exc)

    async def _database_fault(request: Request, exc: Exception) -> JSONResponse:
        # Faults of the database itself become 503 (the connection is kept); anything else
        # (integrity, SQL and programming errors) is re-raised and stays a logged 500.
        fault = faults.unavailable(exc, request.app.state.engine.db.url, "the database")
        if fault is None:
            raise exc
        logger.warning("database unavailable: %s", fault.message)
        return engine_error_response(fault)

    for fault_type in faults.FAULTS:
        app.add_exception_handler(fault_type, _database_fault)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "location": ".".join(str(p) for p in e.get("loc", ())),
                "problem": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['location']}: {p['problem']}" for p in problems)
        return JSONResponse(
            {"error": "ValidationError", "message": message, "problems": problems},
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        # Framework errors (unparseable body, unknown path, wrong method) get the same shape
        # as engine errors; "detail" stays for clients that read FastAPI's default.
        try:
            name = HTTPStatus(exc.status_code).phrase.replace(" ", "").replace("-", "")
        except ValueError:
            name = "HTTPError"
        body = {"error": name, "message": str(exc.detail), "detail": exc.detail}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
