"""memory governance: provenance, versions, archive in place, legal hold, injected keys

Memories carry the current version's provenance (reasoning, written_by, source_actor_id),
their archive state (archived_at/by, archive_reason) and legal hold (held_at/by,
hold_reason). Every version of a memory is kept in ``memory_versions``; each memory written
before this revision gets its current version there (earlier ones were not kept). Rows that
decay moved to ``memory_archive`` come back into ``memories`` as archived, and that table is
dropped. The checkout's lookup index now covers live (unarchived) rows only. Injection rows
record the keys injected (older rows: NULL).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.store.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TEXT_LIST = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")
LIVE = sa.text("archived_at IS NULL")

_OLD = (
    "id, instance_id, role_id, scope, actor_id, key, value, version, confidence, is_toxic, "
    "toxic_reason, toxic_by, toxic_at, source_uow_id, created_at, updated_at, last_accessed_at"
)


def upgrade() -> None:
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reasoning", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("written_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("source_actor_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("archived_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("archived_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("archive_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("held_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("held_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.drop_index("ix_memories_lookup")
        batch_op.create_index(
            "ix_memories_live",
            ["role_id", "scope", "actor_id"],
            unique=False,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )
    # Decay's archive table: its rows come back as archived memories.
    op.execute(
        f"INSERT INTO memories ({_OLD}, archived_at, archived_by, archive_reason) "
        f"SELECT {_OLD}, archived_at, 'engine (memory decay)', "
        "'not injected within the retention period (archived before revision 0008)' "
        "FROM memory_archive WHERE id NOT IN (SELECT id FROM memories)"
    )
    op.drop_table("memory_archive")

    op.create_table(
        "memory_versions",
        sa.Column("memory_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("written_by", sa.String(200), nullable=True),
        sa.Column("source_uow_id", sa.Uuid(), nullable=True),
        sa.Column("source_actor_id", sa.Uuid(), nullable=True),
        sa.Column("written_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memories.id"],
            name=op.f("fk_memory_versions_memory_id_memories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("memory_id", "version", name=op.f("pk_memory_versions")),
    )
    op.execute(
        "INSERT INTO memory_versions (memory_id, version, value, confidence, source_uow_id, "
        "written_at) SELECT id, version, value, confidence, source_uow_id, updated_at "
        "FROM memories"
    )
    with op.batch_alter_table("memory_injections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keys", TEXT_LIST, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memory_injections", schema=None) as batch_op:
        batch_op.drop_column("keys")
    op.drop_table("memory_versions")
    op.create_table(
        "memory_archive",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("is_toxic", sa.Boolean(), nullable=False),
        sa.Column("toxic_reason", sa.Text(), nullable=True),
        sa.Column("toxic_by", sa.String(200), nullable=True),
        sa.Column("toxic_at", UtcDateTime(), nullable=True),
        sa.Column("source_uow_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_accessed_at", UtcDateTime(), nullable=True),
        sa.Column("archived_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_archive")),
    )
    op.execute(
        f"INSERT INTO memory_archive ({_OLD}, archived_at) "
        f"SELECT {_OLD}, archived_at FROM memories WHERE archived_at IS NOT NULL"
    )
    op.execute("DELETE FROM memories WHERE archived_at IS NOT NULL")
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_live")
        batch_op.create_index("ix_memories_lookup", ["role_id", "scope", "actor_id"], unique=False)
        for column in (
            "hold_reason", "held_by", "held_at", "archive_reason", "archived_by", "archived_at",
            "source_actor_id", "written_by", "reasoning",
        ):  # fmt: skip
            batch_op.drop_column(column)
