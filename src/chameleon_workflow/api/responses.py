"""The error statuses each operation declares in /openapi.json, with the one error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every 4xx and 503 answer: the error class, a message saying how to fix it, and extras."""

    error: str = Field(description="The error's name, e.g. UnknownUow, LeaseLost, ValidationError")
    message: str = Field(description="What is wrong and how to fix it")
    details: dict[str, Any] | None = Field(default=None, description="Data about the error")
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="Each invalid part of the request (ValidationError)"
    )
    violations: list[dict[str, Any]] | None = Field(
        default=None, description="Each broken rule of a workflow definition (DefinitionInvalid)"
    )
    detail: Any = Field(default=None, description="The framework's message (framework errors)")


_ERROR_REF = "#/components/schemas/ErrorBody"
DESCRIPTIONS = {
    400: "The request cannot be read",
    403: "The actor is not assigned to the role (NotAssigned)",
    404: "Something the request names does not exist",
    409: "The current state forbids it: lease lost, or a state conflict",
    413: "The request body is larger than the configured cap (PayloadTooLarge)",
    422: "The request is invalid: each problem is named",
    503: "The database is unreachable or busy (DatabaseUnavailable); retry after Retry-After",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a router or route: each status with its description and body.

    The JSON content is spelled out because FastAPI files a model under the route's own
    media type, and errors are JSON on the YAML and DOT exports too.
    """
    return {
        status: {
            "model": ErrorBody,
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
        }
        for status in statuses
    }


# Every operation can meet an unavailable database; every one with parameters can be invalid.
COMMON = responses(422, 503)
# Operations that take a body also meet the body cap and bodies that cannot be decoded.
WITH_BODY = responses(400, 413)
