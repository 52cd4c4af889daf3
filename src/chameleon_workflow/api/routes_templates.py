"""Workflow templates: import, list, export."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from ..domain.errors import InvalidInput
from ..domain.security import Right
from ..store.templates import TEMPLATES
from .auth import allow
from .deps import EngineDep
from .encode import plain
from .pagination import PageDep
from .responses import responses
from .views_pages import TemplatePage, TemplateSummary

router = APIRouter(tags=["templates"], responses=responses(400, 404, 413, 422, 503))


def _summary(row: Any) -> dict[str, Any]:
    return {
        "template_id": str(row.id),
        "name": row.name,
        "version": row.version,
        "description": row.description,
        "imported_at": row.imported_at.isoformat(),
    }


_YAML_SCHEMA = {"type": "string", "description": "A workflow definition in YAML."}
_IMPORT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The workflow YAML, as the raw request body (UTF-8).",
        "content": {
            "application/yaml": {"schema": _YAML_SCHEMA},
        },
    }
}
_IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Imported as a new version; `warnings` lists dead ends (W1-W3)."},
    **responses(413, 422),
}
_IMPORT_RESPONSES[422] = _IMPORT_RESPONSES[422] | {
    "description": "Not UTF-8, empty, over the YAML alias budget, or invalid: "
    "`violations` lists every broken rule."
}


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the request body must be UTF-8 encoded YAML") from exc


@router.post(
    "/templates",
    status_code=201,
    openapi_extra=_IMPORT_DOC,
    responses=_IMPORT_RESPONSES,
    dependencies=[allow(Right.ADMIN)],
)
async def import_template(request: Request, engine: EngineDep) -> dict[str, Any]:
    """Import a workflow YAML (the raw request body); 422 lists every violation."""
    text = _decode(await request.body())
    # Parsing and validation run in the thread pool so a large document never holds the
    # event loop: other requests (/health included) are answered meanwhile.
    imported = await run_in_threadpool(engine.templates.import_yaml, text)
    return {
        "template_id": str(imported.template.id),
        "name": imported.template.name,
        "version": imported.template.version,
        "warnings": [w.as_dict() for w in imported.warnings],
    }


@router.get("/templates", dependencies=[allow(Right.READ)])
def list_templates(engine: EngineDep, page: PageDep) -> TemplatePage:
    """Templates by name, then version, one page at a time."""
    cursor = page.bind(TEMPLATES)
    found = engine.templates.page(after=cursor.after, limit=page.limit)
    items = [TemplateSummary.of(t) for t in found.items]
    return TemplatePage(items=items, next_cursor=cursor.next(found.next_key))


@router.get("/templates/{template_id}", dependencies=[allow(Right.READ)])
def get_template(template_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    row = engine.templates.get(template_id)
    defn = engine.templates.definition(row)
    return _summary(row) | plain(
        {
            "roles": [{"name": r.name, "type": r.type, "strategy": r.strategy} for r in defn.roles],
            "interactions": [i.name for i in defn.interactions],
            "components": [
                {
                    "name": c.name,
                    "role": c.role,
                    "interaction": c.interaction,
                    "direction": c.direction,
                    "guardians": [
                        {"name": g.name, "type": g.type, "config": g.config} for g in c.guardians
                    ],
                }
                for c in defn.components
            ],
        }
    )


class YamlResponse(PlainTextResponse):
    media_type = "application/yaml"


class DotResponse(PlainTextResponse):
    media_type = "text/vnd.graphviz"


_YAML_DOCUMENT = {
    "type": "object",
    "description": "The canonical workflow document (re-importable with POST /templates).",
}


@router.get(
    "/templates/{template_id}/yaml",
    response_class=YamlResponse,
    responses={200: {"content": {"application/yaml": {"schema": _YAML_DOCUMENT}}}},
    dependencies=[allow(Right.READ)],
)
def export_yaml(template_id: uuid.UUID, engine: EngineDep) -> YamlResponse:
    row = engine.templates.get(template_id)
    return YamlResponse(engine.templates.export_yaml(row))


@router.get(
    "/templates/{template_id}/graph", response_class=DotResponse, dependencies=[allow(Right.READ)]
)
def export_graph(template_id: uuid.UUID, engine: EngineDep) -> DotResponse:
    row = engine.templates.get(template_id)
    return DotResponse(engine.templates.export_dot(row))
