"""UOW statuses up to 40 characters on PostgreSQL (PENDING_PILOT_APPROVAL has 22)

``uows.status`` and ``interaction_log.from_status`` / ``to_status`` were ``varchar(20)``, so
parking a UOW for a pilot failed on PostgreSQL. Widening a ``varchar`` there changes only
the catalogue (no table rewrite, no index rebuild). SQLite does not enforce the length and
is left as it is (widening would rebuild the tables, and a rebuild of a parent table
cascades deletes).

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

COLUMNS = (("uows", "status"), ("interaction_log", "from_status"), ("interaction_log", "to_status"))


def _resize(length: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length),
            existing_type=sa.String(40 if length == 20 else 20),
        )


def upgrade() -> None:
    _resize(40)


def downgrade() -> None:
    _resize(20)
