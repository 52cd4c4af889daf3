"""What each call sends and how its answer is read, shared by the sync and async clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import models as m

T = TypeVar("T")
M = TypeVar("M", bound=m.Model)

YAML = "application/yaml"


@dataclass(frozen=True)
class Spec(Generic[T]):
    """One request. ``resend_safe``: may be sent again after it may have reached the server
    (a read timeout, a connection dropped after sending) — reads, idempotent writes, and a
    submit/failure/heartbeat that carries its ``lease_id`` (the server answers a replay)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    content_type: str | None = None
    resend_safe: bool = False
    empty: T | None = None  # the answer to a 204
    extra_timeout: float = 0.0


def _model(cls: type[M]) -> Callable[[Any], M]:
    return cls.model_validate


def _dict(body: Any) -> dict[str, Any]:
    return dict(body)


def _s(value: uuid.UUID | str) -> str:
    return str(value)


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def get(path: str, parse: Callable[[Any], T], **params: Any) -> Spec[T]:
    return Spec("GET", path, parse, params=_clean(params), resend_safe=True)


def post(path: str, parse: Callable[[Any], T], body: Any, *, safe: bool = False) -> Spec[T]:
    return Spec("POST", path, parse, json=body, resend_safe=safe)


# -- work --------------------------------------------------------------------------------------


def checkout(actor_id: uuid.UUID | str, role_id: uuid.UUID | str) -> Spec[m.Checkout | None]:
    body = {"actor_id": _s(actor_id), "role_id": _s(role_id)}
    # Not resend-safe: a checkout that landed leases a UOW; sending it again leases another.
    parse: Callable[[Any], m.Checkout | None] = m.Checkout.model_validate
    return Spec("POST", "/workflow/checkout", parse, json=body)


def submit(
    uow_id: uuid.UUID | str,
    actor_id: uuid.UUID | str,
    result_attributes: Mapping[str, Any] | None,
    *,
    lease_id: uuid.UUID | str | None,
    reasoning: str | None,
    children: list[dict[str, Any]] | None,
) -> Spec[m.SubmitResult]:
    body: dict[str, Any] = {
        "uow_id": _s(uow_id),
        "actor_id": _s(actor_id),
        "result_attributes": dict(result_attributes or {}),
    }
    if reasoning is not None:
        body["reasoning"] = reasoning
    if children is not None:
        body["children"] = children
    if lease_id is not None:
        body["lease_id"] = _s(lease_id)
    return post("/workflow/submit", _model(m.SubmitResult), body, safe=lease_id is not None)


def failure(
    uow_id: uuid.UUID | str,
    actor_id: uuid.UUID | str,
    error_code: str,
    *,
    details: Any,
    lease_id: uuid.UUID | str | None,
) -> Spec[m.FailureResult]:
    body: dict[str, Any] = {
        "uow_id": _s(uow_id),
        "actor_id": _s(actor_id),
        "error_code": error_code,
    }
    if details is not None:
        body["details"] = details
    if lease_id is not None:
        body["lease_id"] = _s(lease_id)
    return post("/workflow/failure", _model(m.FailureResult), body, safe=lease_id is not None)


def heartbeat(
    uow_id: uuid.UUID | str, actor_id: uuid.UUID | str, lease_id: uuid.UUID | str | None
) -> Spec[m.Heartbeat]:
    body: dict[str, Any] = {"actor_id": _s(actor_id)}
    if lease_id is not None:
        body["lease_id"] = _s(lease_id)
    # A heartbeat only moves last_heartbeat forward: sending it twice is harmless.
    return post(f"/workflow/uow/{_s(uow_id)}/heartbeat", _model(m.Heartbeat), body, safe=True)


# -- definitions, instances, actors --------------------------------------------------------


def import_template(yaml_text: str) -> Spec[m.TemplateImport]:
    return Spec(
        "POST",
        "/templates",
        _model(m.TemplateImport),
        content=yaml_text.encode("utf-8"),
        content_type=YAML,
    )


def instantiate(
    template_id: uuid.UUID | str,
    initial_context: Mapping[str, Any] | None,
    name: str | None,
    description: str | None,
) -> Spec[m.Instantiated]:
    body: dict[str, Any] = {
        "template_id": _s(template_id),
        "initial_context": dict(initial_context or {}),
    }
    if name is not None:
        body["instance_name"] = name
    if description is not None:
        body["instance_description"] = description
    return post("/workflow/instantiate", _model(m.Instantiated), body)


def genesis(
    instance_id: uuid.UUID | str, initial_context: Mapping[str, Any] | None
) -> Spec[dict[str, Any]]:
    body = {"initial_context": dict(initial_context or {})}
    return post(f"/instances/{_s(instance_id)}/genesis", _dict, body)


def create_actor(name: str, actor_type: str) -> Spec[m.ActorCreated]:
    return post("/actors", _model(m.ActorCreated), {"name": name, "type": actor_type})


def assign(actor_id: uuid.UUID | str, role_id: uuid.UUID | str) -> Spec[m.Assignment]:
    # Idempotent: assigning twice answers created=false.
    path = f"/actors/{_s(actor_id)}/assignments"
    return post(path, _model(m.Assignment), {"role_id": _s(role_id)}, safe=True)


# -- memory ----------------------------------------------------------------------------------


def write_memory(
    role_id: uuid.UUID | str,
    key: str,
    value: Any,
    *,
    reasoning: str,
    scope: str | None,
    actor_id: uuid.UUID | str | None,
    confidence: float | None,
    source_uow_id: uuid.UUID | str | None,
) -> Spec[m.Memory]:
    body: dict[str, Any] = {"key": key, "value": value, "reasoning": reasoning}
    if scope is not None:
        body["scope"] = scope
    if actor_id is not None:
        body["actor_id"] = _s(actor_id)
    if confidence is not None:
        body["confidence"] = confidence
    if source_uow_id is not None:
        body["source_uow_id"] = _s(source_uow_id)
    return post(f"/roles/{_s(role_id)}/memories", _model(m.Memory), body)


def memory_change(verb: str, memory_id: uuid.UUID | str, reason: str) -> Spec[m.Memory]:
    if verb == "archive":
        return Spec(
            "DELETE", f"/memories/{_s(memory_id)}", _model(m.Memory), json={"reason": reason}
        )
    return post(f"/memories/{_s(memory_id)}/{verb}", _model(m.Memory), {"reason": reason})


# -- pilot -------------------------------------------------------------------------------------


def request_intervention(
    uow_id: uuid.UUID | str,
    actor_id: uuid.UUID | str,
    title: str,
    *,
    lease_id: uuid.UUID | str | None,
    type: str | None,
    description: str | None,
    priority: str | None,
) -> Spec[m.Intervention]:
    body: dict[str, Any] = {"actor_id": _s(actor_id), "title": title}
    for name, value in (("type", type), ("description", description), ("priority", priority)):
        if value is not None:
            body[name] = value
    if lease_id is not None:
        body["lease_id"] = _s(lease_id)
    return post(f"/workflow/uow/{_s(uow_id)}/intervention", _model(m.Intervention), body)


def get_intervention(request_id: uuid.UUID | str, wait: float | None) -> Spec[m.Intervention]:
    spec = get(f"/api/interventions/{_s(request_id)}", _model(m.Intervention), wait=wait)
    if wait:
        return Spec(
            spec.method,
            spec.path,
            spec.parse,
            params=spec.params,
            resend_safe=True,
            extra_timeout=float(wait),
        )
    return spec


def kill_switch(instance_id: uuid.UUID | str, reason: str) -> Spec[dict[str, Any]]:
    body = {"instance_id": _s(instance_id), "reason": reason}
    return post("/pilot/kill-switch", _dict, body)


def resume_instance(instance_id: uuid.UUID | str, reason: str) -> Spec[dict[str, Any]]:
    return post(f"/pilot/instances/{_s(instance_id)}/resume", _dict, {"reason": reason})


def page(
    path: str, params: Mapping[str, Any], cursor: str | None, limit: int | None
) -> Spec[m.Page]:
    return get(path, _model(m.Page), **params, cursor=cursor, limit=limit)


def as_dict(body: Any) -> dict[str, Any]:
    """An answer the API leaves free-form, as a dict."""
    return dict(body)


def as_any(body: Any) -> Any:
    return body


def raw(
    method: str, path: str, json: Any, params: Mapping[str, Any] | None, safe: bool
) -> Spec[Any]:
    method = method.upper()
    resend = safe or method in ("GET", "HEAD")
    return Spec(method, path, as_any, json=json, params=_clean(params or {}), resend_safe=resend)
