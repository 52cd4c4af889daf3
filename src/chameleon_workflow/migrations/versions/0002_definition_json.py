"""store each template's and instance's parsed definition as JSON

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Loading a definition used to re-parse its canonical YAML; the parsed document is now stored
next to it (``domain.export.to_mapping``) and read back without YAML parsing.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.domain import export
from chameleon_workflow.domain.parsing import parse_workflow_yaml

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _backfill(table: str, yaml_column: str) -> None:
    conn = op.get_bind()
    t = sa.table(
        table,
        sa.column("id", sa.Uuid()),
        sa.column(yaml_column, sa.Text()),
        sa.column("definition", Json),
    )
    for row_id, text in conn.execute(sa.select(t.c.id, t.c[yaml_column])).all():
        mapping = export.to_mapping(parse_workflow_yaml(text, budget=None))
        conn.execute(sa.update(t).where(t.c.id == row_id).values(definition=mapping))


def upgrade() -> None:
    for table, yaml_column in (("templates", "canonical_yaml"), ("instances", "definition_yaml")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("definition", Json, nullable=True))
        _backfill(table, yaml_column)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("definition", existing_type=Json, nullable=False)


def downgrade() -> None:
    for table in ("instances", "templates"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("definition")
