"""The support desk: agents and their tokens, notes, corrections, orders; conversation forms, the agent
on a conversation, CSAT and review; message buttons, feedback and author.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "agent_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_agent_tokens_agent_id", "agent_tokens", ["agent_id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("active_form", sa.String(64)))
        batch.add_column(sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", name="fk_conversations_agent",
                                                                          ondelete="SET NULL")))
        batch.add_column(sa.Column("csat", sa.Integer()))
        batch.add_column(sa.Column("reviewed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_conversations_status", ["status"])
        batch.create_index("ix_conversations_created_at", ["created_at"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("buttons", sa.JSON()))
        batch.add_column(sa.Column("feedback", sa.String(8)))
        batch.add_column(sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", name="fk_messages_agent",
                                                                          ondelete="SET NULL")))
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_notes_conversation_id", "notes", ["conversation_id"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(128), nullable=False),
        sa.Column("predicted_intent", sa.String(128)),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL")),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_corrections_message_id", "corrections", ["message_id"])
    op.create_index("ix_corrections_created_at", "corrections", ["created_at"])
    op.create_table(
        "orders",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("email", sa.String(256), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("carrier", sa.String(64)),
        sa.Column("tracking_code", sa.String(64)),
        sa.Column("placed_at", TZ, nullable=False),
        sa.Column("expected_at", TZ),
        sa.Column("cancelled_at", TZ),
    )


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("corrections")
    op.drop_table("notes")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("agent_id")
        batch.drop_column("feedback")
        batch.drop_column("buttons")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_created_at")
        batch.drop_index("ix_conversations_status")
        batch.drop_column("reviewed")
        batch.drop_column("csat")
        batch.drop_column("agent_id")
        batch.drop_column("active_form")
    op.drop_table("agent_tokens")
    op.drop_table("agents")
