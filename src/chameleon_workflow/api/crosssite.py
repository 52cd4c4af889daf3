"""No cross-site requests: body types a browser cannot send unasked, allowed hosts, CORS.

A page on another site can make a browser send a "simple" request without asking the server
first (no CORS preflight): GET, HEAD or POST with a body of type
``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``. Three
pure ASGI middlewares close the doors such requests use (docs/security.md, "Cross-site
requests and hosts"):

- :class:`BodyTypes`: a request with a body must declare the type its operation takes
  (``application/json``, or a YAML type for ``POST /templates``), else 415. Types a browser
  may send cross-site are never among them. A request without a body passes whatever it
  declares: there is nothing to read.
- :class:`AllowedHosts`: the ``Host`` header must name the server (``allowed_hosts``), else
  400, so a name an attacker points at this address (DNS rebinding) is not answered.
- CORS is off (no CORS header at all) unless ``cors_origins`` names origins; then Starlette's
  ``CORSMiddleware`` answers those origins only.

:func:`install` adds the three; :func:`document` makes ``/openapi.json`` say the same.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ..domain.errors import ChameleonError, HostNotAllowed, UnsupportedMediaType
from ..settings import Settings, host_pattern
from .errors import engine_error_response

__all__ = [
    "JSON_TYPES",
    "RAW_BODY_TYPES",
    "YAML_TYPES",
    "AllowedHosts",
    "BodyTypes",
    "document",
    "host_allowed",
    "install",
    "request_host",
]

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
# A workflow definition is YAML. text/yaml needs a preflight like application/yaml: only
# text/plain, form and multipart types are "CORS-safelisted".
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
# Operations that read the raw body, by (method, path); every other body is JSON.
RAW_BODY_TYPES: Mapping[tuple[str, str], tuple[str, ...]] = {("POST", "/templates"): YAML_TYPES}

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID")
CORS_EXPOSED = ("X-Request-ID", "Retry-After", "WWW-Authenticate")
_SHOWN = 100  # at most this much of a client's header is echoed in an error


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [v for k, v in scope.get("headers") or [] if k.lower() == name]


async def _refuse(exc: ChameleonError, scope: Scope, receive: Receive, send: Send) -> None:
    await engine_error_response(exc)(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    """Whether the request carries a body: a non-zero length, or a chunked one."""
    lengths = _header(scope, b"content-length")
    return bool(_header(scope, b"transfer-encoding")) or any(v.strip() != b"0" for v in lengths)


def _media_type(scope: Scope) -> str | None:
    """The declared body type without parameters, in lower case (None: not declared)."""
    given = _header(scope, b"content-type")
    if not given:
        return None
    return given[0].decode("latin-1").split(";", 1)[0].strip().lower()


def accepted_types(method: str, path: str) -> tuple[str, ...]:
    """The body types an operation takes."""
    return RAW_BODY_TYPES.get((method, path.rstrip("/") or "/"), JSON_TYPES)


class BodyTypes:
    """415 for a request whose body is not of a type its operation takes (or is untyped)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        allowed = accepted_types(method, path)
        declared = _media_type(scope)
        if declared in allowed:
            await self.app(scope, receive, send)
            return
        kinds = (
            f"type {allowed[0]}" if len(allowed) == 1 else f"one of the types {', '.join(allowed)}"
        )
        sent = f"of type {declared[:_SHOWN]!r}" if declared else "without a Content-Type"
        refused = UnsupportedMediaType(
            f"{method} {path[:_SHOWN]} takes a body of {kinds}; this request sent one {sent}. "
            f"Send the header 'Content-Type: {allowed[0]}'",
            accepted=list(allowed),
            received=declared[:_SHOWN] if declared else None,
        )
        await _refuse(refused, scope, receive, send)


def request_host(value: bytes) -> str:
    """The host a ``Host`` header names, in the form of :func:`host_pattern`: no port."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):  # [IPv6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.rstrip(".")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``host`` (see :func:`request_host`) matches one of ``patterns``."""
    for pattern in patterns:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):  # a subdomain
            return True
    return False


class AllowedHosts:
    """400 for a request whose ``Host`` header names no host of ``allowed_hosts``."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.patterns = tuple(host_pattern(h) for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.patterns:
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"host")
        host = request_host(given[0])[:_SHOWN] if len(given) == 1 else None
        if host and host_allowed(host, self.patterns):
            await self.app(scope, receive, send)
            return
        logger.info(
            "refused Host %r: not in CHAMELEON_ALLOWED_HOSTS (%s)",
            host if host is not None else f"{len(given)} Host headers",
            ", ".join(self.patterns),
            extra={"host": host},
        )
        if host is None:
            problem = f"a request names its host in one Host header; this one sent {len(given)}"
        else:
            problem = f"this server does not answer to the host {host!r} (Host header)"
        refused = HostNotAllowed(
            f"{problem}; the names it answers to are listed by its operator in "
            "CHAMELEON_ALLOWED_HOSTS",
            host=host,
        )
        await _refuse(refused, scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the three middlewares, outermost last: hosts, then CORS, then body types.

    Call it after the middlewares that must run inside these (the body cap) and before
    those that must wrap them (the request id, so a refusal carries one).
    """
    app.add_middleware(BodyTypes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
        )
    app.add_middleware(AllowedHosts, allowed_hosts=settings.allowed_hosts)
    document(app)


_ERROR_415 = {
    "description": "The body's Content-Type is not one the operation takes (UnsupportedMediaType)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def document(app: FastAPI) -> None:
    """Make ``/openapi.json`` list the body types each operation takes, and its 415."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        for path, item in spec.get("paths", {}).items():
            for method, operation in item.items():
                body = operation.get("requestBody") if isinstance(operation, dict) else None
                if not body:
                    continue
                raw = RAW_BODY_TYPES.get((method.upper(), path))
                if raw is not None:
                    declared: dict[str, Any] = body.get("content") or {}
                    first: dict[str, Any] = next(iter(declared.values()), {})
                    schema = first.get("schema", {})
                    body["content"] = {t: {"schema": schema} for t in raw}
                operation.setdefault("responses", {})["415"] = _ERROR_415
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
