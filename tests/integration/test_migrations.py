"""The Alembic migrations produce exactly the schema the SQLAlchemy models describe."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from chameleon_workflow.store.database import Database
from chameleon_workflow.store.migrate import alembic_config, upgrade
from chameleon_workflow.store.tables import Base


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db)  # already at head: nothing to do, nothing fails
    with db.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    db.dispose()
    assert version == ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def test_upgrade_from_0001_fills_the_stored_definitions(tmp_path) -> None:
    """Templates and instances imported before 0002 get their parsed definition back-filled."""
    from chameleon_workflow.domain import export
    from chameleon_workflow.domain.parsing import parse_workflow_yaml
    from tests.conftest import example_text

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(db, "0001")
    canonical = export.to_yaml(parse_workflow_yaml(example_text("invoice_processing_workflow.yml")))
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO templates (id, name, version, source_yaml, canonical_yaml,"
                " imported_at) VALUES ('00000000000000000000000000000001', 'T', 1, :y, :y,"
                " '2026-01-01 00:00:00')"
            ),
            {"y": canonical},
        )
    upgrade(db)
    with db.connect() as conn:
        stored = conn.execute(sa.text("SELECT definition FROM templates")).scalar_one()
    db.dispose()
    assert json.loads(stored) == export.to_mapping(parse_workflow_yaml(canonical))
