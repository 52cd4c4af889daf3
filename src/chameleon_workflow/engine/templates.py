"""Importing, listing and exporting workflow templates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..domain import export, validation
from ..domain.definition import WorkflowDefinition
from ..domain.errors import UnknownTemplate
from ..domain.parsing import parse_workflow_mapping, parse_workflow_yaml
from ..store import templates as store
from ..store.database import Database
from ..store.templates import TemplateRow
from .clock import Clock, utcnow


@dataclass(frozen=True)
class ImportedTemplate:
    template: TemplateRow
    definition: WorkflowDefinition


def validate_yaml(text: str) -> WorkflowDefinition:
    """Parse and validate; raises DefinitionInvalid listing every violation."""
    defn = parse_workflow_yaml(text)
    validation.check(defn)
    return defn


class TemplateService:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def import_yaml(self, text: str) -> ImportedTemplate:
        """Validate fully, then write a new version of the named template in one transaction."""
        defn = validate_yaml(text)
        canonical = export.to_yaml(defn)
        with self.db.begin() as conn:
            row = store.insert_template(
                conn,
                name=defn.name,
                version=store.next_version(conn, defn.name),
                source_yaml=text,
                canonical_yaml=canonical,
                defn=defn,
                now=self.clock(),
            )
        return ImportedTemplate(row, defn)

    def list(self) -> list[TemplateRow]:
        with self.db.connect() as conn:
            return store.list_templates(conn)

    def get(self, template_id: uuid.UUID) -> TemplateRow:
        with self.db.connect() as conn:
            row = store.get_template(conn, template_id)
        if row is None:
            raise UnknownTemplate(f"template {template_id} does not exist", id=str(template_id))
        return row

    def find(self, name: str, version: int | None = None) -> TemplateRow:
        with self.db.connect() as conn:
            row = store.find_template(conn, name, version)
        if row is None:
            which = f"version {version} of " if version is not None else ""
            raise UnknownTemplate(f"no {which}template named '{name}'", name=name)
        return row

    @staticmethod
    def definition_of(text: str) -> WorkflowDefinition:
        return validate_yaml(text)

    @staticmethod
    def definition(row: TemplateRow) -> WorkflowDefinition:
        """The stored, already parsed definition (JSON), read back without parsing YAML."""
        return parse_workflow_mapping(row.definition)

    def export_yaml(self, row: TemplateRow) -> str:
        return row.canonical_yaml

    def export_dot(self, row: TemplateRow) -> str:
        return export.to_dot(self.definition(row))
