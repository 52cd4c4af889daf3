"""Every admin and operator request goes into the audit trail (``engine.audit``).

A pure ASGI middleware: once routing has picked the route, a request to a route that needs
the OPERATE or ADMIN right with a method that changes something (not GET/HEAD/OPTIONS) is
recorded with its caller (the principal ``api.auth`` put on the request's state), its
parameters (path parameters, query and JSON body; other bodies by size and SHA-256), the
status and a summary of the answer, and the request id. The answer is held back until the
record is written, so a client that reads the trail after its call finds it there.

Requests without an authenticated caller (401) are not recorded: there is no one to name
(the auth failure metric and the log count them). A new route needs nothing to be recorded;
:data:`ACTIONS` gives the known ones stable names, others are named after their handler.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..domain.security import Principal, Right
from ..engine.audit import KEY_CREATE, KEY_REVOKE, Outcome
from ..store import faults
from .auth import rule_of
from .ratelimit import SKIP_AUDIT

logger = logging.getLogger(__name__)

AUDITED_RIGHTS = frozenset({Right.OPERATE, Right.ADMIN})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_JSON_BODY = 256 * 1024  # larger bodies are recorded by size and digest only

# Route (handler) name -> the action's name in the trail.
ACTIONS: dict[str, str] = {
    "run_zombie_protocol": "maintenance.zombie_protocol",
    "run_stale_token_protocol": "maintenance.stale_token_protocol",
    "run_memory_decay": "maintenance.memory_decay",
    "mark_toxic": "toxic.mark",
    "mark_toxic_bulk": "toxic.mark_bulk",
    "unmark_toxic": "toxic.unmark",
    "write_memory": "memory.write",
    "archive_memory": "memory.archive",
    "restore_memory": "memory.restore",
    "hold_memory": "memory.hold",
    "release_memory": "memory.release",
    "reset_playbook": "memory.playbook_reset",
    "kill_switch": "pilot.kill_switch",
    "resume_instance": "pilot.instance_resume",
    "waive_guardian": "pilot.waive",
    "pilot_resume": "pilot.resume",
    "pilot_cancel": "pilot.cancel",
    "pilot_clarification": "pilot.clarification",
    "approve_intervention": "intervention.approve",
    "reject_intervention": "intervention.reject",
    "import_template": "template.import",
    "instantiate": "instance.instantiate",
    "genesis": "instance.genesis",
    "create_actor": "actor.create",
    "assign": "actor.assign",
    "create_key": KEY_CREATE,
    "revoke_key": KEY_REVOKE,
}


def action_of(route: Any, method: str) -> str | None:
    """The action a request to ``route`` with ``method`` is recorded as (None: not audited)."""
    if route is None or method in READ_METHODS:
        return None
    for dep in getattr(route, "dependencies", ()):
        rule = rule_of(dep.dependency) if dep.dependency is not None else None
        if rule is not None and rule[0] in AUDITED_RIGHTS:
            name = str(getattr(route, "name", "") or getattr(route, "path", "unknown"))
            return ACTIONS.get(name, name)
    return None


class AuditRequests:
    """Records admin and operator requests; everything else passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in READ_METHODS:
            await self.app(scope, receive, send)
            return
        body = _Body()
        held: list[Message] = []
        action: str | None = None

        async def capture() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.add(message.get("body", b""))
            return message

        async def hold(message: Message) -> None:
            nonlocal action
            if message["type"] == "http.response.start":
                action = action_of(scope.get("route"), scope.get("method", ""))
            if action is None:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await self._record(scope, action, body, held)
                for m in held:
                    await send(m)

        try:
            await self.app(scope, capture, hold)
        except Exception:
            # Not handled below (a bug): recorded as an error, then left to the server.
            failed = action_of(scope.get("route"), scope.get("method", ""))
            if failed is not None and not held:
                await self._record(scope, failed, body, [{"status": 500}])
            raise

    async def _record(self, scope: Scope, action: str, body: _Body, held: list[Message]) -> None:
        state = scope.get("state") or {}
        principal: Principal | None = state.get("principal")
        if principal is None or state.get(SKIP_AUDIT):
            return
        status = int(held[0].get("status", 500))
        answer = b"".join(m.get("body", b"") for m in held[1:])
        engine = scope["app"].state.engine
        try:
            await run_in_threadpool(
                engine.audit.record,
                action,
                by=principal,
                parameters=parameters(scope, body),
                result=result(status, answer),
                outcome=Outcome.of_status(status),
                request_id=state.get("request_id"),
            )
        except faults.FAULTS as exc:  # the database is down: one line, as for any 503
            fault = faults.unavailable(exc, engine.db.url, "the database")
            if fault is None:
                logger.exception("audit: could not record %s", action, extra={"action": action})
            else:
                logger.error(
                    "audit: could not record %s: %s",
                    action,
                    fault.message,
                    extra={"action": action},
                )
        except Exception:  # the action stands whatever happens to its record; say so loudly
            logger.exception("audit: could not record %s", action, extra={"action": action})


class _Body:
    """The request body as it streams in: its size, digest, and text while it is small."""

    def __init__(self) -> None:
        self.size = 0
        self.digest = hashlib.sha256()
        self.chunks: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.digest.update(chunk)
        if self.size <= MAX_JSON_BODY:
            self.chunks.append(chunk)


def _content_type(scope: Scope) -> str:
    for key, value in scope.get("headers") or []:
        if key == b"content-type":
            return str(value.decode("latin-1").split(";")[0].strip().lower())
    return ""


def parameters(scope: Scope, body: _Body) -> dict[str, Any]:
    """What the request asked for: path parameters and JSON body fields side by side (the
    path wins a clash), the query under ``query``, any other body by size and digest."""
    params: dict[str, Any] = {}
    decoded: Any = None
    kind = _content_type(scope)
    if body.size and body.size <= MAX_JSON_BODY and kind.endswith("json"):
        try:
            decoded = json.loads(b"".join(body.chunks))
        except (ValueError, RecursionError):
            decoded = None
    if isinstance(decoded, dict):
        params.update(decoded)
    elif decoded is not None:
        params["body"] = decoded
    elif body.size:
        params["body"] = {
            "bytes": body.size,
            "sha256": body.digest.hexdigest(),
            "content_type": kind or None,
        }
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
    if query:
        params["query"] = dict(query)
    params.update({k: str(v) for k, v in (scope.get("path_params") or {}).items()})
    return params


def result(status: int, answer: bytes) -> dict[str, Any]:
    """The status and a summary of the answer: an error's name and message, or the answer's
    top-level values (lists by their length, nested objects by their plain values)."""
    summary: dict[str, Any] = {"status": status}
    try:
        decoded: Any = json.loads(answer) if answer else None
    except (ValueError, RecursionError):
        return summary
    if not isinstance(decoded, dict):
        return summary
    if status >= 400:
        summary |= {k: decoded[k] for k in ("error", "message", "details") if k in decoded}
        return summary
    summary["summary"] = {k: _short(v) for k, v in decoded.items()}
    return summary


def _short(value: Any) -> Any:
    if isinstance(value, list):
        return {"items": len(value)}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not isinstance(v, list | dict)}
    return value
