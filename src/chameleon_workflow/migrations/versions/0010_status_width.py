"""a UOW's status fits PENDING_PILOT_APPROVAL (22 characters)

``uows.status`` and ``interaction_log.from_status`` / ``to_status`` were VARCHAR(20); on
PostgreSQL they become VARCHAR(40) (binary-compatible: no rewrite, no index rebuild).
SQLite does not enforce a VARCHAR's length, and changing a declared type there would
rebuild the tables (a rebuild of ``uows`` cascades deletes), so SQLite is left as it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (("uows", "status", False), ("interaction_log", "from_status", True),
           ("interaction_log", "to_status", True))  # fmt: skip


def _width(old: int, new: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.String(new),
            existing_type=sa.String(old),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    _width(20, 40)


def downgrade() -> None:
    _width(40, 20)
