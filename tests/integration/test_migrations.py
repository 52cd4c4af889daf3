"""The Alembic migrations produce exactly the schema the SQLAlchemy models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chameleon_workflow.store.database import Database
from chameleon_workflow.store.migrate import upgrade
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
    assert version == "0001"
