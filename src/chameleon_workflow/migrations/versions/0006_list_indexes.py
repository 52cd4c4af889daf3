"""list indexes: every paged list reads its keyset as one index range

Actors and instances page by (created_at, id), a role's memories by (scope, key, id) within
the role, maintenance runs by (started_at, id) newest first, overall or of one job. The
runs' single-column started_at index is replaced by (started_at, id), which serves the
same lookups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_actors_created", "actors", ["created_at", "id"], unique=False)
    op.create_index("ix_instances_created", "instances", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_memories_role_key", "memories", ["role_id", "scope", "key", "id"], unique=False
    )
    op.create_index(
        "ix_maintenance_runs_started", "maintenance_runs", ["started_at", "id"], unique=False
    )
    op.create_index(
        "ix_maintenance_runs_job_started",
        "maintenance_runs",
        ["job", "started_at", "id"],
        unique=False,
    )
    op.drop_index("ix_maintenance_runs_started_at", table_name="maintenance_runs")


def downgrade() -> None:
    op.create_index(
        "ix_maintenance_runs_started_at", "maintenance_runs", ["started_at"], unique=False
    )
    op.drop_index("ix_maintenance_runs_job_started", table_name="maintenance_runs")
    op.drop_index("ix_maintenance_runs_started", table_name="maintenance_runs")
    op.drop_index("ix_memories_role_key", table_name="memories")
    op.drop_index("ix_instances_created", table_name="instances")
    op.drop_index("ix_actors_created", table_name="actors")
