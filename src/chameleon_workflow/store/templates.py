"""Templates: versioned, immutable copies of imported workflow definitions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ..domain.definition import WorkflowDefinition
from .definitions import TEMPLATE_ROWS, DefinitionIds, write_definition
from .pagination import Key, Keyset, Page
from .tables import Template, table

T = table(Template)
# By name, then version: (name, version) is unique and neither is ever updated.
TEMPLATES = Keyset("templates", (T.c.name, T.c.version))


@dataclass(frozen=True)
class TemplateRow:
    id: uuid.UUID
    name: str
    version: int
    description: str | None
    source_yaml: str
    canonical_yaml: str
    definition: dict[str, Any]
    imported_at: datetime


def _row(r: Any) -> TemplateRow:
    return TemplateRow(
        id=r.id,
        name=r.name,
        version=r.version,
        description=r.description,
        source_yaml=r.source_yaml,
        canonical_yaml=r.canonical_yaml,
        definition=r.definition,
        imported_at=r.imported_at,
    )


def next_version(conn: Connection, name: str) -> int:
    current = conn.scalar(select(func.max(T.c.version)).where(T.c.name == name))
    return (current or 0) + 1


def insert_template(
    conn: Connection,
    *,
    name: str,
    version: int,
    source_yaml: str,
    canonical_yaml: str,
    defn: WorkflowDefinition,
    mapping: dict[str, Any],
    now: datetime,
) -> TemplateRow:
    """Write a template and its roles, interactions, components and guardians.

    ``mapping`` is the stored form of ``defn`` (``domain.export.to_mapping``), computed by
    the caller before the transaction opens.
    """
    template_id = uuid.uuid4()
    conn.execute(
        insert(T).values(
            id=template_id,
            name=name,
            version=version,
            description=defn.description,
            source_yaml=source_yaml,
            canonical_yaml=canonical_yaml,
            definition=mapping,
            imported_at=now,
        )
    )
    write_definition(conn, defn, TEMPLATE_ROWS, template_id, DefinitionIds.fresh(defn))
    return TemplateRow(
        template_id, name, version, defn.description, source_yaml, canonical_yaml, mapping, now
    )


def get_template(conn: Connection, template_id: uuid.UUID) -> TemplateRow | None:
    r = conn.execute(select(T).where(T.c.id == template_id)).first()
    return _row(r) if r else None


def find_template(conn: Connection, name: str, version: int | None = None) -> TemplateRow | None:
    """The named template at ``version``, or its latest version."""
    stmt = select(T).where(T.c.name == name)
    stmt = (
        stmt.where(T.c.version == version)
        if version is not None
        else stmt.order_by(T.c.version.desc()).limit(1)
    )
    r = conn.execute(stmt).first()
    return _row(r) if r else None


def list_templates(conn: Connection) -> list[TemplateRow]:
    return [_row(r) for r in conn.execute(select(T).order_by(T.c.name, T.c.version))]


def page_templates(conn: Connection, after: Key | None, limit: int) -> Page[TemplateRow]:
    return TEMPLATES.fetch(conn, select(T), after, limit, _row)
