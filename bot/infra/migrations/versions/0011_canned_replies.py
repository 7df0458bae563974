"""Canned replies: agents' ready-made replies, inserted in the console by typing `/` and a shortcut; shared ones
(kept by admins) and personal ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SHARED, PERSONAL = sa.text("owner_id IS NULL"), sa.text("owner_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("shortcut", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE")),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_canned_replies_shared", "canned_replies", ["shortcut"], unique=True,
                    sqlite_where=SHARED, postgresql_where=SHARED)
    op.create_index("ux_canned_replies_personal", "canned_replies", ["owner_id", "shortcut"], unique=True,
                    sqlite_where=PERSONAL, postgresql_where=PERSONAL)


def downgrade() -> None:
    op.drop_table("canned_replies")
