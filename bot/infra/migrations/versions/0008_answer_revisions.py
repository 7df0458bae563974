"""Answers managed in the console: every change to an answer template is a revision (content, author, the
revision it replaced, who approved it), laid over the served model's own templates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APPROVED = sa.text("status = 'approved'")


def upgrade() -> None:
    op.create_table(
        "answer_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("answer_id", sa.String(128), nullable=False),
        sa.Column("content", sa.JSON()),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("restored_from", sa.Integer()),
        sa.Column("status", sa.Enum("proposed", "approved", "rejected", name="proposal_status", native_enum=False,
                                    create_constraint=True, length=16), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_answer_revisions_answer_id", "answer_revisions", ["answer_id"])
    op.create_index("ux_answer_revisions_approved_base", "answer_revisions", ["answer_id", "base_id"], unique=True,
                    sqlite_where=APPROVED, postgresql_where=APPROVED)


def downgrade() -> None:
    op.drop_table("answer_revisions")
