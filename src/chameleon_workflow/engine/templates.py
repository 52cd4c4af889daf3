"""Importing, listing and exporting workflow templates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..domain import export, validation
from ..domain.definition import WorkflowDefinition
from ..domain.errors import UnknownTemplate
from ..domain.parsing import parse_workflow_mapping, parse_workflow_yaml
from ..domain.validation_dead_ends import DefinitionWarning, dead_ends
from ..domain.yaml_budget import DEFAULT_BUDGET, YamlBudget
from ..settings import Settings
from ..store import templates as store
from ..store.database import Database
from ..store.pagination import DEFAULT_LIMIT, Key, Page
from ..store.templates import TemplateRow
from .clock import Clock, utcnow


@dataclass(frozen=True)
class ImportedTemplate:
    template: TemplateRow
    definition: WorkflowDefinition
    warnings: tuple[DefinitionWarning, ...] = ()


@dataclass(frozen=True)
class Checked:
    """A definition that passed every rule, with the dead ends validation warns about."""

    definition: WorkflowDefinition
    warnings: tuple[DefinitionWarning, ...]


def yaml_budget(settings: Settings) -> YamlBudget:
    return YamlBudget(
        max_nodes=settings.yaml_max_nodes,
        max_expansion=settings.yaml_max_expansion,
        nodes_setting="CHAMELEON_YAML_MAX_NODES",
        expansion_setting="CHAMELEON_YAML_MAX_EXPANSION",
    )


def validate_yaml(text: str, budget: YamlBudget = DEFAULT_BUDGET) -> Checked:
    """Parse and validate; raises DefinitionInvalid listing every violation."""
    defn = parse_workflow_yaml(text, budget)
    validation.check(defn)
    return Checked(defn, tuple(dead_ends(defn)))


class TemplateService:
    def __init__(
        self, db: Database, clock: Clock = utcnow, budget: YamlBudget = DEFAULT_BUDGET
    ) -> None:
        self.db = db
        self.clock = clock
        self.budget = budget

    def import_yaml(self, text: str, checked: Checked | None = None) -> ImportedTemplate:
        """Validate fully, then write a new version of the named template in one transaction.

        Parsing, validation and the canonical export happen before the transaction opens, so
        no slow work holds a write lock.
        """
        checked = checked or validate_yaml(text, self.budget)
        defn = checked.definition
        canonical = export.to_yaml(defn)
        mapping = export.to_mapping(defn)
        with self.db.begin() as conn:
            row = store.insert_template(
                conn,
                name=defn.name,
                version=store.next_version(conn, defn.name),
                source_yaml=text,
                canonical_yaml=canonical,
                defn=defn,
                mapping=mapping,
                now=self.clock(),
            )
        return ImportedTemplate(row, defn, checked.warnings)

    def list(self) -> list[TemplateRow]:
        with self.db.connect() as conn:
            return store.list_templates(conn)

    def page(self, *, after: Key | None = None, limit: int = DEFAULT_LIMIT) -> Page[TemplateRow]:
        """A page of templates by name, then version."""
        with self.db.connect() as conn:
            return store.page_templates(conn, after, limit)

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

    def check(self, text: str) -> Checked:
        """Parse and validate within this service's YAML budget (see :func:`validate_yaml`)."""
        return validate_yaml(text, self.budget)

    @staticmethod
    def definition(row: TemplateRow) -> WorkflowDefinition:
        """The stored, already parsed definition (JSON), read back without parsing YAML."""
        return parse_workflow_mapping(row.definition)

    def export_yaml(self, row: TemplateRow) -> str:
        return row.canonical_yaml

    def export_dot(self, row: TemplateRow) -> str:
        return export.to_dot(self.definition(row))
