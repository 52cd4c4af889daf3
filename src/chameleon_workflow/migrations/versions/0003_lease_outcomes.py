"""lease outcomes: the recorded answer of each lease's submit or failure, for replays

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import chameleon_workflow.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lease_outcomes",
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("uow_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "outcome",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", chameleon_workflow.store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_lease_outcomes")),
    )
    op.create_index(op.f("ix_lease_outcomes_at"), "lease_outcomes", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_lease_outcomes_at"), table_name="lease_outcomes")
    op.drop_table("lease_outcomes")
