"""the pilot: instance kill switch, parked statuses, interventions, waivers, live events

Instances get a status (ACTIVE | PAUSED) with who paused them, when and why; a paused UOW
remembers the status it had (``paused_from``). ``interventions`` holds the requests for a
pilot, ``pilot_waivers`` the one-time waivers of a guard, ``pilot_events`` what the live
stream sends.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.store.types import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Added in place (no batch rebuild on SQLite: see downgrade).
    with op.batch_alter_table("instances", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(20), server_default=sa.text("'ACTIVE'"), nullable=False)
        )
        batch_op.add_column(sa.Column("paused_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("uows", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("paused_from", sa.String(20), nullable=True))

    op.create_table(
        "interventions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("uow_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(20), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("guardian_name", sa.String(200), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("resume_interaction_id", sa.Uuid(), nullable=True),
        sa.Column("on_expiry", sa.String(20), nullable=True),
        sa.Column("details", JSON, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_interventions_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interventions")),
    )
    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interventions_inbox", ["status", "priority_rank", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_interventions_expiry", ["status", "expires_at"], unique=False)
        batch_op.create_index("ix_interventions_uow_id", ["uow_id"], unique=False)

    op.create_table(
        "pilot_waivers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("uow_id", sa.Uuid(), nullable=False),
        sa.Column("guardian_name", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_waivers")),
    )
    with op.batch_alter_table("pilot_waivers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pilot_waivers_uow_guardian", ["uow_id", "guardian_name"], unique=False
        )

    op.create_table(
        "pilot_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=True),
        sa.Column("uow_id", sa.Uuid(), nullable=True),
        sa.Column("intervention_id", sa.Uuid(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_events")),
    )
    with op.batch_alter_table("pilot_events", schema=None) as batch_op:
        batch_op.create_index("ix_pilot_events_at", ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("pilot_events")
    op.drop_table("pilot_waivers")
    op.drop_table("interventions")
    # Plain ALTER TABLE (SQLite 3.35+ drops columns natively): a batch rebuild of these
    # tables would drop them, and with foreign keys on, cascade into every table below them.
    op.execute("ALTER TABLE uows DROP COLUMN paused_from")
    for column in ("pause_reason", "paused_by", "paused_at", "status"):
        op.execute(f"ALTER TABLE instances DROP COLUMN {column}")
