"""Example messages agents propose for an intent the model knows, learned by redistillation once an admin
approved them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "example_proposals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("intent", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Enum("proposed", "approved", "rejected", name="proposal_status", native_enum=False,
                                    create_constraint=True, length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_example_proposals_intent", "example_proposals", ["intent"])


def downgrade() -> None:
    op.drop_table("example_proposals")
