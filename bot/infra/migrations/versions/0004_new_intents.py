"""Intents agents add through the API (answer, buttons, example messages) for the next redistillation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "new_intents",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_new_intents_created_at", "new_intents", ["created_at"])


def downgrade() -> None:
    op.drop_table("new_intents")
