"""uow listing: (status, updated_at, id) and (instance_id, status, updated_at, id, ...) indexes

The second ends with the current role and interaction (filters checked inside the index)
and replaces the single-column instance index (it serves the same lookups).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_uows_status_updated", "uows", ["status", "updated_at", "id"], unique=False)
    op.create_index(
        "ix_uows_instance_updated",
        "uows",
        ["instance_id", "status", "updated_at", "id", "current_role_id", "current_interaction_id"],
        unique=False,
    )
    op.drop_index("ix_uows_instance_id", table_name="uows")


def downgrade() -> None:
    op.create_index("ix_uows_instance_id", "uows", ["instance_id"], unique=False)
    op.drop_index("ix_uows_instance_updated", table_name="uows")
    op.drop_index("ix_uows_status_updated", table_name="uows")
